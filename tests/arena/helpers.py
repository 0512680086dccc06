"""Helpers shared by the arena, votes and end-to-end tests."""

from __future__ import annotations

import json
from functools import cache

from tests.services import ROOT

DEMO_DIR = ROOT / "arena" / "demo"


@cache
def demo_answer_authors() -> dict[str, str]:
    """Each demo answer text → the model that wrote it, read from the demo files.

    Lets a test vote like a person with a fixed taste: it recognises an answer by
    its content, never by asking the server who wrote it.
    """
    authors: dict[str, str] = {}
    for path in sorted((DEMO_DIR / "model_answer").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            text = row["choices"][0]["turns"][0]
            model = row.get("model_id") or path.stem
            assert authors.get(text, model) == model, f"two demo models share an answer text: {text[:60]!r}"
            authors[text] = model
    return authors


@cache
def demo_prompts() -> set[str]:
    return {
        json.loads(line)["turns"][0]
        for line in (DEMO_DIR / "question.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    }


def open_battle(client) -> dict:
    """POST /api/v1/battles/ as this client's session; the 201 body."""
    response = client.post("/api/v1/battles/", data={}, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def vote(client, battle_id: str, winner: str):
    return client.post(f"/api/v1/battles/{battle_id}/vote/", data={"winner": winner}, content_type="application/json")


def preferred_winner(battle: dict, order: list[str]) -> str:
    """The side whose author comes first in ``order``."""
    authors = demo_answer_authors()
    a, b = authors[battle["responses"]["a"]], authors[battle["responses"]["b"]]
    return "a" if order.index(a) < order.index(b) else "b"

"""The API's leaderboards equal `rate_battles` on an export of the same votes.

Votes go in through the import path (features computed there, as for any
imported file), a recompute publishes them, `export_battles` writes them
out, and `manage.py rate_battles` rates the file (for each category, the
exported records of that category) in a separate process with no
database. Every view must agree to the printed precision: ratings and
interval bounds to 4 decimals, ranks, battle counts, style coefficients.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from ratings.services import recompute_publish
from tests.services import ROOT
from votes.importers import import_files

STRENGTH = {"atlas": 1.2, "breeze": 0.7, "cobalt": 0.3, "dune": 0.0, "ember": -0.4, "fjord": -0.9}
LANGUAGES = {
    "English": "What is the capital of",
    "French": "Quelle est la capitale de",
    "German": "Was ist die Hauptstadt von",
}
PRINTED = 1e-4 + 1e-9  # ratings and bounds are printed with 4 decimals

# The category rules, restated from the exported fields (not from ratings.recompute).
CATEGORIES = {
    "overall": lambda r: True,
    "coding": lambda r: r["is_code"],
    "long_prompt": lambda r: r["prompt_tokens"] >= 500,
    "multi_turn": lambda r: r["turn"] > 1,
    "no_ties": lambda r: r["winner"] in ("model_a", "model_b"),
    "lang:en": lambda r: r["language"] == "en",
    "lang:fr": lambda r: r["language"] == "fr",
    "lang:de": lambda r: r["language"] == "de",
}


def chat(*turns: str) -> list[dict]:
    return [{"role": ("user", "assistant")[k % 2], "content": t} for k, t in enumerate(turns)]


def answer(rng, quality: float) -> str:
    """Longer, more structured answers from stronger models (a style effect to find)."""
    parts = ["Here is the answer."] + ["Some more detail follows here."] * int(rng.integers(0, 6 + 4 * quality))
    if rng.random() < 0.3 + 0.2 * quality:
        parts.insert(0, "## Answer")
    if rng.random() < 0.4:
        parts += [f"- point {k}" for k in range(int(rng.integers(1, 5)))]
    if rng.random() < 0.3:
        parts.append("**Important** detail.")
    return "\n".join(parts)


def battles(n: int, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    names = list(STRENGTH)
    out = []
    for i in range(n):
        a, b = (str(x) for x in rng.choice(names, 2, replace=False))
        language = list(LANGUAGES)[i % 3]
        prompt = f"{LANGUAGES[language]} country {i}?"
        if i % 5 == 0:
            prompt = f"def f{i}(x):\n    return x  # fix this python function"
        if i % 7 == 0:
            prompt += " word" * 520  # a long prompt
        reply_a, reply_b = answer(rng, STRENGTH[a]), answer(rng, STRENGTH[b])
        turns_a, turns_b = [prompt, reply_a], [prompt, reply_b]
        if i % 4 == 0:  # a second turn
            turns_a += ["And why?", answer(rng, STRENGTH[a])]
            turns_b += ["And why?", answer(rng, STRENGTH[b])]
        u = rng.random()
        if u < 0.15:
            winner = "tie"
        elif u < 0.2:
            winner = "tie (bothbad)"
        else:
            p = 1 / (1 + np.exp(-(STRENGTH[a] - STRENGTH[b])))
            winner = "model_a" if rng.random() < p else "model_b"
        out.append({
            "question_id": f"q{i}", "model_a": a, "model_b": b, "winner": winner, "judge": f"judge{i % 9}",
            "anony": True, "tstamp": 1_700_000_000 + 60 * i, "language": language,
            "conversation_a": chat(*turns_a), "conversation_b": chat(*turns_b),
        })  # fmt: skip
    out[3]["anony"] = False  # excluded: the models were named
    out[5]["model_b"] = out[5]["model_a"]  # excluded: a self battle
    return out


def rate_battles(path, *extra: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "manage.py", "rate_battles", str(path), *extra], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def assert_same_board(api: dict, cli: dict, label: str) -> None:
    assert api["votes"] == cli["battles_used"], label
    by_name = {m["model"]: m for m in cli["models"]}
    assert [m["model"] for m in api["models"]] == [m["model"] for m in cli["models"]], label
    for row in api["models"]:
        other = by_name[row["model"]]
        assert row["battles"] == other["battles"] and row["rank"] == other["rank"], (label, row, other)
        for key in ("rating", "lower", "upper"):
            assert abs(row[key] - other[key]) <= PRINTED, (label, key, row, other)


@pytest.fixture
def exported(db, tmp_path, settings):
    settings.RATINGS_MIN_CATEGORY_VOTES = 30
    source = tmp_path / "battles.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in battles(900)))
    import_files([source], status="active", progress=False)
    snap = recompute_publish()
    path = tmp_path / "export.jsonl"
    call_command("export_battles", output=str(path))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return snap, records, tmp_path


def test_every_view_equals_rate_battles_on_the_export(exported):
    snap, records, tmp_path = exported
    client = APIClient()
    keys = {c["key"] for c in client.get("/api/v1/categories/").json()["categories"] if not c["style_control"]}
    assert keys == set(CATEGORIES), "the data must exercise every category"
    for key, rule in CATEGORIES.items():
        path = tmp_path / f"{key.replace(':', '_')}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records if rule(r)))
        api = client.get(f"/api/v1/leaderboard/?category={key}&include_deprecated=true").json()
        assert api["snapshot"] == snap.id and api["ci"] == "sandwich"
        assert_same_board(api, rate_battles(path), key)


def test_style_controlled_view_equals_rate_battles_style_control(exported):
    snap, records, tmp_path = exported
    path = tmp_path / "all.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    api = APIClient().get("/api/v1/leaderboard/?style_control=true&include_deprecated=true").json()
    cli = rate_battles(path, "--style-control")
    assert_same_board(api, cli, "style control")
    assert api["style_coefficients"] == pytest.approx(cli["style_coefficients"], abs=1e-6)
    assert abs(api["style_coefficients"]["tokens"]) > 0.01, "the data has a length effect to control for"


BOOT_ROUNDS = 20


@pytest.mark.parametrize("simultaneous", [False, True], ids=["marginal", "simultaneous"])
def test_style_view_equals_rate_battles_for_every_interval_method(exported, simultaneous):
    """One leaderboard function behind both: for each interval method the
    published style-controlled view (and the plain overall view) equals the
    command on the export, labels included; bootstrap with the recompute's
    seed (0) and the same number of rounds."""
    sandwich, records, tmp_path = exported
    path = tmp_path / "all.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    snaps = {"sandwich": sandwich, "bootstrap": recompute_publish(ci="bootstrap", rounds=BOOT_ROUNDS, force=True),
             "none": recompute_publish(ci="none", force=True)}  # fmt: skip
    intervals = "simultaneous" if simultaneous else "marginal"
    client = APIClient()
    for ci, published in snaps.items():
        assert published is not None and published.ci == ci
        extra = ["--ci", ci, "--seed", "0", "--rounds", str(BOOT_ROUNDS)] + (["--simultaneous"] if simultaneous else [])
        for style in (True, False):
            api = client.get(
                f"/api/v1/leaderboard/?style_control={str(style).lower()}&ci={ci}&intervals={intervals}"
                "&include_deprecated=true"
            ).json()
            cli = rate_battles(path, *extra, *(["--style-control"] if style else []))
            label = (ci, intervals, "style" if style else "plain")
            assert api["snapshot"] == published.id, label
            assert (api["ci"], api["intervals"], api["style_control"]) == (
                cli["ci"],
                cli["intervals"],
                cli["style_control"],
            ), label
            assert (cli["ci"], cli["intervals"], cli["style_control"]) == (ci, intervals, style), label
            assert_same_board(api, cli, label)
            if style:
                assert api["style_coefficients"] == pytest.approx(cli["style_coefficients"], abs=1e-6)
            widths = [m["upper"] - m["lower"] for m in api["models"]]
            if ci == "none":
                assert widths == pytest.approx([0.0] * len(widths), abs=PRINTED), label
            else:
                assert min(widths) > 1.0, label

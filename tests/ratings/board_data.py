"""Votes for the leaderboard page tests, arriving the way real votes do: a
clean_battle JSONL file through the vote importer, then a snapshot published
by ratings.services.recompute_publish. Nothing writes snapshot rows by hand,
so the page tests fail when that pipeline breaks.

Needs the demo models in the database (the ``demo_models`` fixture).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from ratings.models import Snapshot
from ratings.services import recompute_publish
from votes.importers import import_files

# Log-strengths of the regular models: best first, and not alphabetical.
STRENGTH = {"ember-20b": 1.4, "cobalt-13b": 0.7, "atlas-7b": 0.1, "breeze-3b": -0.6}
ORDER = list(STRENGTH)
RARE = "dune-1b"  # in a handful of battles only: preliminary
CODE_PROMPT = "Fix this function:\n```python\ndef add(a, b):\n    return a - b\n```"
PLAIN_PROMPT = "What makes the sea look blue on a clear day, and the sky too?"


def _record(k: int, a: str, b: str, winner: str, rng: random.Random, *, code: bool) -> dict:
    prompt = CODE_PROMPT if code else PLAIN_PROMPT
    # Markdown-heavy and plain answers, so the style-controlled view has something to fit.
    rich = "# Answer\n\n- **first** point\n- second point\n\n" + "More words here. " * rng.randint(1, 6)
    plain = "A short plain answer." * rng.randint(1, 3)
    answer_a, answer_b = (rich, plain) if rng.random() < 0.5 else (plain, rich)
    return {
        "question_id": f"q{k}",
        "model_a": a,
        "model_b": b,
        "winner": winner,
        "judge": f"judge-{k % 17}",
        "tstamp": 1_700_000_000 + k,
        "anony": True,
        "conversation_a": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer_a}],
        "conversation_b": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer_b}],
    }


def battles(n: int, *, seed: int = 0, rare: int = 6, start: int = 0) -> list[dict]:
    """``n`` battles among the regular models, decided by Bradley–Terry with
    STRENGTH (every 9th a tie, every 4th about code), plus ``rare`` battles
    of RARE against them (never about code)."""
    rng = random.Random(seed)
    records = []
    for k in range(n):
        a, b = rng.sample(ORDER, 2)
        if k % 9 == 0:
            winner = "tie"
        else:
            p_a = 1 / (1 + math.exp(STRENGTH[b] - STRENGTH[a]))
            winner = "model_a" if rng.random() < p_a else "model_b"
        records.append(_record(start + k, a, b, winner, rng, code=k % 4 == 0))
    for k in range(rare):
        other = ORDER[k % len(ORDER)]
        a, b = (RARE, other) if k % 2 else (other, RARE)
        records.append(_record(start + n + k, a, b, ["model_a", "model_b", "tie"][k % 3], rng, code=False))
    return records


def import_and_publish(tmp_path: Path, n: int, *, seed: int = 0, rare: int = 6, start: int = 0) -> Snapshot:
    """Import ``n`` (+ ``rare``) battles as votes and publish a snapshot of every counted vote."""
    path = tmp_path / f"battles-{seed}-{start}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in battles(n, seed=seed, rare=rare, start=start)))
    stats = import_files([path], status="active", progress=False)
    assert stats.added == n + rare, stats
    snap = recompute_publish()
    assert snap is not None and snap.vote_count >= n + rare
    return snap

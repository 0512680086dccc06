"""Reads for a voter's own leaderboard and their own votes (ratings.personal is the math).

Only ever called with the requesting voter (ratings.personal_api): nothing
here takes a voter from a parameter a client controls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np

from arena.models import ArenaModel, Voter
from votes.models import Vote

from . import engine, personal
from .selectors import newest_snapshot, registry, row_model_id, snapshot_view

SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}


def own_counted_votes(voter: Voter | None):
    if voter is None:
        return Vote.objects.none()
    return Vote.objects.filter(voter=voter, excluded=False)


def personal_leaderboard(voter: Voter | None) -> dict:
    """The voter's shrunk ratings over the models they met, or how many more
    counted votes they need (``needed`` > 0, no models)."""
    rows = list(own_counted_votes(voter).values_list("model_a_id", "model_b_id", "winner"))
    out = {
        "votes": len(rows),
        "min_votes": personal.MIN_VOTES,
        "needed": max(0, personal.MIN_VOTES - len(rows)),
        "snapshot": None,
        "prior_sd": round(personal.prior_sd_points(), 4),
        "models": [],
        "most_different": [],
    }
    if out["needed"]:
        return out
    table = np.array([(a, b, SCORE[w]) for a, b, w in rows], dtype=float)
    ids = np.union1d(table[:, 0], table[:, 1]).astype(np.int64)
    index = {int(m): k for k, m in enumerate(ids)}
    names_by_id = dict(ArenaModel.objects.filter(id__in=ids.tolist()).values_list("id", "name"))
    names = [names_by_id[int(m)] for m in ids]
    # The crowd's strengths from the newest snapshot's overall view; a model
    # it does not rate yet (too new) sits at the centre, theta = 0.
    prior = np.zeros(len(ids))
    global_rating = np.full(len(ids), engine.INIT_RATING)
    snap = newest_snapshot()
    view = snapshot_view(snap, "overall", False) if snap is not None else None
    if view is not None:
        out["snapshot"] = snap.id
        # Stored rows name models by id (older snapshots by name).
        reg = registry()
        by_id = {row_model_id(r, reg): r for r in view.rows}
        for k, mid in enumerate(ids):
            r = by_id.get(int(mid))
            if r is not None:
                prior[k] = r.get("theta", 0.0)
                global_rating[k] = r["rating"]
        missing = [k for k, mid in enumerate(ids) if int(mid) not in by_id]
        if missing:  # the same points as the rated models: their shift applied to theta = 0
            rated = [k for k in range(len(names)) if k not in set(missing)]
            shift = float(np.mean(global_rating[rated] - engine.theta_to_points(prior[rated]))) if rated else 0.0
            global_rating[missing] = engine.INIT_RATING + shift
    a = np.array([index[int(x)] for x in table[:, 0]])
    b = np.array([index[int(x)] for x in table[:, 1]])
    fit = personal.fit_personal(a, b, table[:, 2], prior)
    out["models"], out["most_different"] = personal.board(fit, global_rating, names)
    return out


def own_votes_jsonl(voter: Voter | None) -> Iterator[bytes]:
    """The voter's own votes, oldest first, one JSON object per line."""
    qs = (
        (Vote.objects.filter(voter=voter) if voter is not None else Vote.objects.none())
        .order_by("created_at", "id")
        .values_list("id", "created_at", "model_a__name", "model_b__name", "winner", "source", "language", "turns")
    )
    for vid, created, a, b, winner, source, language, turns in qs.iterator(chunk_size=2000):
        yield (
            json.dumps(
                {
                    "id": vid,
                    "created_at": created.isoformat(),
                    "model_a": a,
                    "model_b": b,
                    "winner": winner,
                    "source": source,
                    "language": language,
                    "turns": turns,
                }
            )
            + "\n"
        ).encode()

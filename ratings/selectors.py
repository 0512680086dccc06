"""Reads for the ratings: votes aggregated in SQL, and published snapshots."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Max

from arena.models import ArenaModel
from votes.models import Vote

from . import engine
from .models import Snapshot

WINNER_SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}


@dataclass
class VoteCounts:
    counts: engine.PairCounts
    names: list[str]
    model_ids: list[int]
    vote_count: int
    last_vote_id: int
    fingerprint: str


def counted_votes():
    return Vote.objects.filter(excluded=False)


def vote_counts() -> VoteCounts:
    """GROUP BY (model_a, model_b, winner) over the counted votes."""
    qs = counted_votes()
    rows = list(qs.values_list("model_a_id", "model_b_id", "winner").annotate(n=Count("id")).order_by())
    last = qs.aggregate(m=Max("id"))["m"] or 0
    ids = sorted({r[0] for r in rows} | {r[1] for r in rows})
    names_by_id = dict(ArenaModel.objects.filter(id__in=ids).values_list("id", "name"))
    index = {mid: i for i, mid in enumerate(ids)}
    a = np.array([index[r[0]] for r in rows], dtype=np.int64)
    b = np.array([index[r[1]] for r in rows], dtype=np.int64)
    y = np.array([WINNER_SCORE[r[2]] for r in rows], dtype=float)
    n = np.array([r[3] for r in rows], dtype=float)
    pc = engine.aggregate(a, b, y, len(ids), count=n)
    names = [names_by_id[i] for i in ids]
    # The fingerprint covers exactly what the fit sees: the sorted count table by model name.
    table = sorted(f"{names[int(i)]}\t{names[int(j)]}\t{yy}\t{int(c)}" for i, j, yy, c in zip(pc.a, pc.b, pc.y, pc.count))
    fingerprint = hashlib.sha256("\n".join(table).encode()).hexdigest()
    return VoteCounts(pc, names, ids, int(n.sum()), int(last), fingerprint)


def latest_snapshot() -> Snapshot | None:
    return Snapshot.objects.order_by("-created_at", "-id").first()

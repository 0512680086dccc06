"""Reads for the ratings: votes aggregated in SQL, and published snapshots."""

from __future__ import annotations

import numpy as np
from django.conf import settings

from votes.models import Vote

from . import engine
from .models import Snapshot, SnapshotView

WINNER_SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}


def counted_votes():
    return Vote.objects.filter(excluded=False)


def latest_snapshot(ci: str | None = None) -> Snapshot | None:
    """The newest snapshot's header (its big row list is deferred)."""
    qs = Snapshot.objects.order_by("-created_at", "-id").defer("rows", "warnings")
    if ci:
        qs = qs.filter(ci=ci)
    return qs.first()


def snapshot_head(ci: str | None = None) -> Snapshot | None:
    """The newest snapshot with only id, created_at and ci loaded (other
    fields load on access), in raw SQL: on the hot leaderboard path,
    compiling the ORM query cost as much as running it."""
    where, params = ("WHERE ci = %s ", [ci]) if ci else ("", [])
    sql = f"SELECT id, created_at, ci FROM {Snapshot._meta.db_table} {where}ORDER BY created_at DESC, id DESC LIMIT 1"
    return next(iter(Snapshot.objects.raw(sql, params)), None)


def snapshot_view(
    snap: Snapshot, key: str, style_control: bool, *, with_pairs: bool = False
) -> SnapshotView | None:
    qs = SnapshotView.objects.filter(snapshot=snap, key=key, style_control=style_control)
    if not with_pairs:
        qs = qs.defer("pairs")
    return qs.first()


def min_votes() -> int:
    return int(getattr(settings, "RATINGS_MIN_VOTES", 30))


def leaderboard_rows(view: SnapshotView, *, include_deprecated: bool = False) -> list[dict]:
    """The view's rows, deprecated ones dropped unless asked for; rank (UB)
    recomputed among the listed models; ``preliminary`` under the vote minimum."""
    rows = [dict(r) for r in view.rows if include_deprecated or r.get("status") != "deprecated"]
    lower = np.array([r["lower"] for r in rows])
    upper = np.array([r["upper"] for r in rows])
    ranks = engine.rank_ub(lower, upper) if rows else []
    floor = min_votes()
    for r, rank in zip(rows, ranks, strict=True):
        r["rank"] = int(rank)
        r["preliminary"] = r["battles"] < floor
    rows.sort(key=lambda r: (r["rank"], -r["rating"], r["model"]))
    return rows


def model_history(name: str, key: str, style_control: bool) -> list[dict]:
    points = []
    views = (
        SnapshotView.objects.filter(key=key, style_control=style_control)
        .select_related("snapshot")
        .order_by("-snapshot__created_at", "-snapshot_id")
    )
    for v in views.iterator(chunk_size=200):
        for r in v.rows:
            if r["model"] == name:
                points.append({
                    "snapshot": v.snapshot_id, "created_at": v.snapshot.created_at, "rating": r["rating"],
                    "lower": r["lower"], "upper": r["upper"], "rank": r["rank"], "battles": r["battles"],
                })
                break
    return points


def model_ratings(snap: Snapshot, name: str) -> list[dict]:
    out = []
    for v in snap.views.order_by("style_control", "key"):
        for r in v.rows:
            if r["model"] == name:
                out.append({"category": v.key, "label": v.label, "style_control": v.style_control,
                            "rating": r["rating"], "lower": r["lower"], "upper": r["upper"], "rank": r["rank"],
                            "battles": r["battles"], "wins": r["wins"], "losses": r["losses"], "ties": r["ties"]})
    return out


def model_opponents(snap: Snapshot, name: str) -> list[dict]:
    view = snapshot_view(snap, "overall", False, with_pairs=True)
    if view is None:
        return []
    names = [r["model"] for r in view.rows]
    if name not in names:
        return []
    me = names.index(name)
    out = []
    for i, j, battles, points_i in view.pair_table().tolist():
        i, j = int(i), int(j)
        if me not in (i, j):
            continue
        other = j if i == me else i
        points = points_i if i == me else battles - points_i
        out.append({"opponent": names[other], "battles": int(battles), "win_rate": round(points / battles, 6)})
    out.sort(key=lambda o: (-o["battles"], o["opponent"]))
    return out


def matrix(view: SnapshotView, kind: str) -> tuple[list[str], list[list]]:
    """Rows and columns in leaderboard order. winrate[i][j]: share of points i
    scored against j (a tie is half); count: battles; predicted: sigma(theta_i - theta_j)."""
    names = [r["model"] for r in view.rows]
    n = len(names)
    if kind == "predicted":
        theta = np.array([r.get("theta", 0.0) for r in view.rows])
        return names, np.round(engine.predicted_winrate(theta), 6).tolist()
    m: list[list] = [[None] * n for _ in range(n)]
    for i, j, battles, points_i in view.pair_table().tolist():
        i, j = int(i), int(j)
        if kind == "count":
            m[i][j] = m[j][i] = int(battles)
        else:
            m[i][j] = round(points_i / battles, 6)
            m[j][i] = round((battles - points_i) / battles, 6)
    if kind == "count":
        for i in range(n):
            m[i][i] = 0
    return names, m

"""Which 95% intervals a leaderboard shows: marginal (each model's own, as
LMArena) or simultaneous (all models at once; docs/RATINGS.md).

A snapshot stores both in every row: ``lower``/``upper`` (marginal) and
``lower_sim``/``upper_sim`` (simultaneous, snapshots from before them have
none). The API and the page pick one here, before rank (UB) is computed from
the picked bounds.
"""

from __future__ import annotations

import copy

from django.conf import settings

CHOICES = ("marginal", "simultaneous")


def default() -> str:
    value = settings.ARENA_LEADERBOARD_INTERVALS
    return value if value in CHOICES else "marginal"


def parse(raw: str | None) -> str:
    """The ``intervals`` query parameter (empty: the site default); ValueError when unknown."""
    if raw in (None, ""):
        return default()
    if raw not in CHOICES:
        raise ValueError(f"must be one of {', '.join(CHOICES)}")
    return raw


def rows_with(rows: list[dict], intervals: str) -> list[dict] | None:
    """The rows with ``lower``/``upper`` set to the chosen bounds; None when
    simultaneous ones were asked for and the snapshot predates them."""
    if intervals == "marginal":
        return rows
    if any("lower_sim" not in r for r in rows):
        return None
    return [{**r, "lower": r["lower_sim"], "upper": r["upper_sim"]} for r in rows]


def view_with(view, intervals: str):
    """A copy of the snapshot view whose rows carry the chosen bounds (the
    stored view is left alone), or None as in ``rows_with``."""
    if intervals == "marginal":
        return view
    rows = rows_with(view.rows, intervals)
    if rows is None:
        return None
    picked = copy.copy(view)
    picked.rows = rows
    return picked


def missing_detail(snapshot_id: int) -> str:
    return (
        f"snapshot {snapshot_id} has no simultaneous intervals (published before they existed); "
        "the next recompute adds them"
    )

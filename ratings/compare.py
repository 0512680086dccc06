"""Two snapshots side by side: each model's rating and rank in both, and the
change. Pure functions over rows already joined with the registry and
ranked (ratings.selectors.standings); no Django."""

from __future__ import annotations


def compare_rows(old_rows: list[dict], new_rows: list[dict]) -> list[dict]:
    """One entry per model in either row list, in the newer ranking's order,
    then the models only the older one had.

    ``rating_change`` is new − old in rating points; ``rank_change`` is
    old rank − new rank, so positive means the model moved up. ``state`` is
    ``new`` (only in the newer), ``gone`` (only in the older) or ``both``.
    An unranked (preliminary) row has rank None and no rank change.
    """
    old = {r["model"]: r for r in old_rows}
    new = {r["model"]: r for r in new_rows}
    order = sorted(new_rows, key=_order)
    order += sorted((r for r in old_rows if r["model"] not in new), key=_order)
    out = []
    for row in order:
        name = row["model"]
        o, n = old.get(name), new.get(name)
        out.append({
            "model": name,
            "state": "both" if o and n else ("new" if n else "gone"),
            "old_rating": o["rating"] if o else None,
            "new_rating": n["rating"] if n else None,
            "rating_change": n["rating"] - o["rating"] if o and n else None,
            "old_rank": o["rank"] if o else None,
            "new_rank": n["rank"] if n else None,
            "rank_change": o["rank"] - n["rank"] if o and n and o["rank"] is not None and n["rank"] is not None else None,
            "old_battles": o["battles"] if o else 0,
            "new_battles": n["battles"] if n else 0,
        })  # fmt: skip
    return out


def _order(r: dict) -> tuple:
    """Ranked rows by rank, then the unranked ones by rating."""
    return (r["rank"] is None, r["rank"] or 0, -r["rating"], r["model"])

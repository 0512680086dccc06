"""Recompute and publish rating snapshots."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

from arena.models import ArenaModel

from . import engine
from .models import Snapshot
from .selectors import counted_votes, latest_snapshot, vote_counts

log = logging.getLogger(__name__)

LOCK_KEY = "ratings:recompute-lock"
LOCK_SECONDS = 600  # a crashed worker's lock expires; the next run proceeds


def snapshot_is_stale() -> bool:
    snap = latest_snapshot()
    qs = counted_votes()
    if snap is None:
        return qs.exists()
    # Count and newest id catch new votes; exclusion changes alter the count.
    return qs.count() != snap.vote_count or (qs.order_by("-id").values_list("id", flat=True).first() or 0) != (
        snap.last_vote_id
    )


def recompute_publish(*, ci: str | None = None) -> Snapshot | None:
    """Aggregate the counted votes, fit, and publish one snapshot.

    Single flight: a second concurrent call returns None without work.
    """
    try:
        got_lock = cache.add(LOCK_KEY, 1, timeout=LOCK_SECONDS)
    except Exception:  # noqa: BLE001 - no cache: run unlocked rather than never
        got_lock = True
    if not got_lock:
        log.info("recompute already running; skipped")
        return None
    try:
        return _recompute(ci or settings.ARENA_LEADERBOARD_CI)
    finally:
        try:
            cache.delete(LOCK_KEY)
        except Exception:  # noqa: BLE001
            pass


def _recompute(ci: str) -> Snapshot:
    started = time.perf_counter()
    vc = vote_counts()
    rows = []
    warnings: list[str] = []
    if vc.counts.n_models:
        lb = engine.leaderboard(vc.counts, names=vc.names, ci=ci, seed=0)
        warnings = lb.warnings
        orgs = dict(ArenaModel.objects.filter(id__in=vc.model_ids).values_list("id", "organization"))
        for i, name in enumerate(vc.names):
            if not lb.active[i]:
                continue
            rows.append(
                {
                    "model": name,
                    "organization": orgs.get(vc.model_ids[i], ""),
                    "rating": round(float(lb.rating[i]), 4),
                    "lower": round(float(lb.lower[i]), 4),
                    "upper": round(float(lb.upper[i]), 4),
                    "rank": int(lb.rank[i]),
                    "battles": int(lb.battles[i]),
                    "wins": int(lb.wins[i]),
                    "losses": int(lb.losses[i]),
                    "ties": int(lb.ties[i]),
                    "flags": lb.flags.get(i, []),
                }
            )
        rows.sort(key=lambda r: (r["rank"], -r["rating"], r["model"]))
    return Snapshot.objects.create(
        method="bt",
        ci=ci,
        params={"scale": engine.SCALE, "base": engine.BASE, "init": engine.INIT_RATING, "l2": 0.0},
        vote_count=vc.vote_count,
        last_vote_id=vc.last_vote_id,
        fingerprint=vc.fingerprint,
        duration=time.perf_counter() - started,
        rows=rows,
        warnings=warnings,
    )

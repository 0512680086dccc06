"""Recompute and publish rating snapshots."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import transaction

from arena.locks import recompute_lock

from . import engine
from .models import Snapshot, SnapshotView
from .recompute import (
    compute_views,
    consistent_reads,
    counted_ids_and_style,
    rating_points,
    vote_set_from,
    vote_set_summary,
    vote_table,
    write_rating_points,
)
from .selectors import newest_snapshot

log = logging.getLogger(__name__)


def _test_pause() -> None:
    """Test hook: RATINGS_TEST_PAUSE_SECONDS (default 0) holds the finished
    snapshot uncommitted, so tests/test_e2e_recompute_crash.py can kill the
    worker mid-publish. Never set it in production."""
    pause = float(settings.RATINGS_TEST_PAUSE_SECONDS)
    if pause > 0:
        log.warning("RATINGS_TEST_PAUSE_SECONDS: holding snapshot uncommitted for %.1f s", pause)
        time.sleep(pause)


def snapshot_is_stale() -> bool:
    """Has the set of counted votes changed since the newest snapshot?

    (count, max id, sum of ids) changes with any new, excluded or reinstated vote.
    """
    snap = newest_snapshot()
    count, last, total = vote_set_summary()
    if snap is None:
        return count > 0
    return (count, last, total) != (snap.vote_count, snap.last_vote_id, snap.vote_id_sum)


def recompute_publish(*, ci: str | None = None, rounds: int = 100, force: bool = False) -> Snapshot | None:
    """Compute every leaderboard view and publish them as one snapshot.

    Single flight: returns None at once when another run holds the lock.
    Idempotent: when nothing changed since the newest snapshot (same vote set,
    same interval method) it returns that snapshot instead of a duplicate,
    so a redelivered task is harmless. ``force`` publishes anyway.
    """
    ci = ci or settings.ARENA_LEADERBOARD_CI
    min_category_votes = settings.RATINGS_MIN_CATEGORY_VOTES
    with recompute_lock() as got:
        if not got:
            log.info("recompute already running elsewhere; skipped")
            return None
        started = time.perf_counter()
        with consistent_reads():
            newest = newest_snapshot()
            ids, style = counted_ids_and_style()
            votes = vote_set_from(ids)
            if (
                not force
                and newest is not None
                and newest.ci == ci
                and (ci != "bootstrap" or newest.params.get("rounds") == rounds)
                and newest.params.get("ties", "half") == settings.RATINGS_TIES
                and newest.fingerprint == votes.fingerprint
            ):
                return newest
            table = vote_table(min_category_votes)
        read_s = time.perf_counter() - started
        views = compute_views(table, style, ci=ci, rounds=rounds, seed=0)
        compute_s = time.perf_counter() - started - read_s
        overall = next((v for v in views if v.key == "overall" and not v.style_control), None)
        with transaction.atomic():
            snap = Snapshot.objects.create(
                method="bt",
                ci=ci,
                params={
                    "scale": engine.SCALE,
                    "base": engine.BASE,
                    "init": engine.INIT_RATING,
                    "l2": 0.0,
                    "rounds": rounds if ci == "bootstrap" else None,
                    "seed": 0,
                    "style_beta_l2": settings.RATINGS_STYLE_L2,
                    "min_category_votes": min_category_votes,
                    "ties": settings.RATINGS_TIES,
                    "tie_param": overall.tie_param if overall else None,
                    "intervals": ["marginal", "simultaneous"],
                    "views": [(v.key, v.style_control) for v in views],
                },
                vote_count=votes.count,
                last_vote_id=votes.last_id,
                vote_id_sum=votes.id_sum,
                fingerprint=votes.fingerprint,
                rows=overall.rows if overall else [],
                warnings=overall.warnings if overall else [],
                duration=0.0,
            )
            SnapshotView.objects.bulk_create(
                [
                    SnapshotView(
                        snapshot=snap,
                        key=v.key,
                        label=v.label,
                        style_control=v.style_control,
                        vote_count=v.vote_count,
                        counts_fingerprint=v.counts_fingerprint,
                        rows=v.rows,
                        pairs=v.pairs.astype("<f8").tobytes(),
                        style_coefficients=v.style_coefficients,
                        warnings=v.warnings,
                    )
                    for v in views
                ]
            )
            write_rating_points(snap, rating_points(snap, views))
            snap.duration = time.perf_counter() - started
            Snapshot.objects.filter(id=snap.id).update(duration=snap.duration)
            _test_pause()
        log.info(
            "published snapshot %s: %s votes, %s views, %.2f s (read %.2f, compute %.2f, write %.2f)",
            snap.id,
            votes.count,
            len(views),
            snap.duration,
            read_s,
            compute_s,
            snap.duration - read_s - compute_s,
        )
        return snap

"""Celery tasks: thin wrappers that own the retry and debounce policy.

No task here ever asks Celery for a countdown or an ETA: the worker should
hold as few messages unacknowledged as possible, since kombu 5.7's redis
transport with ack emulation dies restoring them after a Redis restart
(``AttributeError: 'NoneType' object has no attribute 'hostname'`` in
``_connparams``, issue #12; settings turn ack emulation off). So the debounce
waits inside the task, an operator's run waits for a busy lock inside the
task, and failures are left to beat's periodic ``recompute_if_stale`` instead
of Celery's retry backoff (every retry would be a countdown message).
"""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from votes.services import RECOMPUTE_QUEUED_KEY, opening_flag_end

from . import judge_tasks, runs, services

log = logging.getLogger(__name__)

# An operator's run that finds another recompute holding the lock waits for it:
# it tries again every BUSY_RETRY_SECONDS, at most BUSY_RETRIES times, then fails.
BUSY_RETRY_SECONDS = 2
BUSY_RETRIES = 150
# A recompute that finds the lock held leaves this flag; the holder, after
# releasing the lock, runs once more for it (no lost wake-up, issue #12 item 6).
RERUN_KEY = "ratings:recompute-rerun"
RERUN_FLAG_SECONDS = 3600
MAX_RERUNS = 5


def _cache_call(what: str, fn, default=None):
    """The worker's cache calls: a failure is logged and ignored (beat catches up)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a sick cache must not fail the recompute
        log.warning("%s: cache unavailable (%s)", what, exc)
        return default


MAX_DEBOUNCE_WAIT_SECONDS = 60
_UNREADABLE = object()


def wait_out_debounce() -> None:
    """Let the burst that queued this task finish, then clear the flag, so
    votes committed after this point queue the next task. The flag's value
    is when the window ends, as the voting process's RATINGS_DEBOUNCE_SECONDS
    set it (capped, in case a clock is far off)."""
    due = _cache_call("debounce flag", lambda: cache.get(RECOMPUTE_QUEUED_KEY), default=_UNREADABLE)
    if due is _UNREADABLE:
        # Web processes may be trusting a window this task cannot see: wait
        # a whole one (as this process's setting has it).
        time.sleep(min(MAX_DEBOUNCE_WAIT_SECONDS, settings.RATINGS_DEBOUNCE_SECONDS))
    else:
        # A window's end, or "opening <end>" while its publisher had not yet
        # written the end (this task was quicker): either way, until then.
        end = due if isinstance(due, int | float) else opening_flag_end(due)
        if end is not None:
            time.sleep(min(MAX_DEBOUNCE_WAIT_SECONDS, max(0.0, end - time.time())))
    _cache_call("debounce flag", lambda: cache.delete(RECOMPUTE_QUEUED_KEY))


def _mark_rerun() -> None:
    _cache_call("rerun flag", lambda: cache.set(RERUN_KEY, 1, timeout=RERUN_FLAG_SECONDS))


def _take_rerun() -> bool:
    return bool(_cache_call("rerun flag", lambda: cache.delete(RERUN_KEY), default=False))


def publish_settled(**kwargs):
    """``services.recompute_publish`` without lost wake-ups.

    A run that finds the lock held marks a rerun, then tries the lock once
    more: either the holder released it meanwhile (this run goes ahead), or
    the holder has not released yet and will find the mark when it does.
    The run that held the lock checks the mark after releasing it and runs
    again, so votes that arrived during its run are counted without waiting
    for beat. Returns the first snapshot this call published (or returned
    as unchanged), None when another run took over.
    """
    first = None
    for _ in range(MAX_RERUNS + 1):
        snap = services.recompute_publish(**kwargs)
        if snap is None:
            _mark_rerun()
            snap = services.recompute_publish(**kwargs)
            if snap is None:
                log.info("recompute already running elsewhere; it will run again for this request")
                return first
        first = first or snap
        if not _take_rerun():
            return first
        kwargs = {}  # the rerun is an ordinary recompute, whoever asked for it
    return first


@shared_task(name="ratings.recompute", bind=True, acks_late=True)
def recompute(
    self, ci: str | None = None, rounds: int = 100, force: bool = False, run_id: int | None = None
) -> int | None:
    """Publish a snapshot. With ``run_id`` (an operator's "Recompute now"), record
    progress and result in that RecomputeRun and wait out a concurrent recompute."""
    if run_id is None:
        wait_out_debounce()
        snap = publish_settled(ci=ci, rounds=rounds, force=force)
        judge_tasks.refresh_boards()  # the judges' boards beside it (agreement, rank correlation)
        return snap.id if snap else None
    for _attempt in range(BUSY_RETRIES + 1):
        run = runs.claim(run_id)
        if run is None:  # done already (a redelivered task) or deleted
            return None
        snapshot_id = runs.execute(run)
        if snapshot_id is not None:
            if _take_rerun():
                publish_settled()
            return snapshot_id
        time.sleep(BUSY_RETRY_SECONDS)
    runs.finish(run_id, error="another recompute held the lock for too long; try again")
    return None


@shared_task(name="ratings.recompute_if_stale", acks_late=True)
def recompute_if_stale() -> int | None:
    if services.snapshot_is_stale():
        snap = publish_settled()
        return snap.id if snap else None
    return None


@shared_task(name="ratings.prune", acks_late=True)
def prune() -> dict:
    """Retention (ratings.retention): old snapshots down to one a day, expired idempotency records."""
    from dataclasses import asdict

    from . import retention

    return asdict(retention.prune())

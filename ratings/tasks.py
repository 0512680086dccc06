"""Celery tasks: thin wrappers that own the retry policy."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from votes.services import RECOMPUTE_QUEUED_KEY

from . import runs, services

# An operator's run that finds another recompute holding the lock waits for it:
# retried every BUSY_RETRY_SECONDS, at most BUSY_RETRIES times, then failed.
BUSY_RETRY_SECONDS = 2
BUSY_RETRIES = 150


@shared_task(
    name="ratings.recompute", bind=True, acks_late=True, autoretry_for=(OSError,), max_retries=3, retry_backoff=True
)
def recompute(
    self, ci: str | None = None, rounds: int = 100, force: bool = False, run_id: int | None = None
) -> int | None:
    """Publish a snapshot. With ``run_id`` (an operator's "Recompute now"), record
    progress and result in that RecomputeRun and wait out a concurrent recompute."""
    # Clear the debounce flag first: votes that arrive during this run queue the next one.
    try:
        cache.delete(RECOMPUTE_QUEUED_KEY)
    except Exception:  # noqa: BLE001
        pass
    if run_id is None:
        snap = services.recompute_publish(ci=ci, rounds=rounds, force=force)
        return snap.id if snap else None
    run = runs.claim(run_id)
    if run is None:  # done already (a redelivered task) or deleted
        return None
    snapshot_id = runs.execute(run)
    if snapshot_id is None:
        if self.request.retries >= BUSY_RETRIES:
            runs.finish(run_id, error="another recompute held the lock for too long; try again")
            return None
        raise self.retry(countdown=BUSY_RETRY_SECONDS, max_retries=BUSY_RETRIES)
    return snapshot_id


@shared_task(name="ratings.recompute_if_stale", acks_late=True)
def recompute_if_stale() -> int | None:
    if services.snapshot_is_stale():
        snap = services.recompute_publish()
        return snap.id if snap else None
    return None


@shared_task(name="ratings.prune", acks_late=True)
def prune() -> dict:
    """Retention (ratings.retention): old snapshots down to one a day, expired idempotency records."""
    from dataclasses import asdict

    from . import retention

    return asdict(retention.prune())

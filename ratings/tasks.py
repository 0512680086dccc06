"""Celery tasks: thin wrappers that own the retry policy."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache

from votes.services import RECOMPUTE_QUEUED_KEY

from . import services


@shared_task(name="ratings.recompute", acks_late=True, autoretry_for=(OSError,), max_retries=3, retry_backoff=True)
def recompute(ci: str | None = None, rounds: int = 100, force: bool = False) -> int | None:
    # Clear the debounce flag first: votes that arrive during this run queue the next one.
    try:
        cache.delete(RECOMPUTE_QUEUED_KEY)
    except Exception:  # noqa: BLE001
        pass
    snap = services.recompute_publish(ci=ci, rounds=rounds, force=force)
    return snap.id if snap else None


@shared_task(name="ratings.recompute_if_stale", acks_late=True)
def recompute_if_stale() -> int | None:
    if services.snapshot_is_stale():
        snap = services.recompute_publish()
        return snap.id if snap else None
    return None

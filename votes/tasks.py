"""Celery tasks of the votes app: thin wrappers that own the retry policy."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache

from . import anomaly

log = logging.getLogger(__name__)

DETECT_LOCK_KEY = "votes:detect-anomalies-lock"
DETECT_LOCK_SECONDS = 3600  # a crashed worker's lock expires before the next hourly run


# No autoretry with backoff: a retry is a countdown message parked in the
# worker, which kombu cannot restore after a Redis restart (ratings/tasks.py).
# A failed run is simply repeated by beat within the hour.
@shared_task(name="votes.detect_anomalies", acks_late=True)
def detect_anomalies() -> dict | None:
    """Score every voter, flag anomalous ones, exclude their votes (reversibly).

    Single flight: a run that finds another one in progress does nothing.
    Running twice is harmless (the result depends only on the votes).
    """
    try:
        got_lock = cache.add(DETECT_LOCK_KEY, 1, timeout=DETECT_LOCK_SECONDS)
    except Exception:  # noqa: BLE001 - no cache: run unlocked rather than never
        got_lock = True
    if not got_lock:
        log.info("anomaly detection already running; skipped")
        return None
    try:
        report = anomaly.run_detection().as_dict()
        log.info("anomaly detection: %s", report)
        return report
    finally:
        try:
            cache.delete(DETECT_LOCK_KEY)
        except Exception:  # noqa: BLE001
            pass


from . import judge_tasks  # noqa: E402,F401 - registers the judges' tasks with the worker

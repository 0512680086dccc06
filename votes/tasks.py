"""Celery tasks of the votes app: thin wrappers that own the retry policy."""

from __future__ import annotations

import logging

from celery import shared_task

from arena.locks import DETECT_ANOMALIES, single_flight

from . import anomaly

log = logging.getLogger(__name__)


# No autoretry with backoff: a retry is a countdown message parked in the
# worker, which kombu cannot restore after a Redis restart (ratings/tasks.py).
# A failed run is simply repeated by beat within the hour.
@shared_task(name="votes.detect_anomalies", acks_late=True)
def detect_anomalies() -> dict | None:
    """Score every voter, flag anomalous ones, exclude their votes (reversibly).

    Single flight: a run that finds another one in progress does nothing.
    Running twice is harmless (the result depends only on the votes).
    """
    # The project's one lock (arena/locks.py): it dies with a crashed holder,
    # so the next hourly run is never blocked by a lock left behind.
    with single_flight(DETECT_ANOMALIES) as got_lock:
        if not got_lock:
            log.info("anomaly detection already running; skipped")
            return None
        report = anomaly.run_detection().as_dict()
        log.info("anomaly detection: %s", report)
        return report


from . import judge_tasks  # noqa: E402,F401 - registers the judges' tasks with the worker

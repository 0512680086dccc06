"""The judges' leaderboards as a Celery task (ratings/judges.py): queued by
a finished judging (debounced), run after each human recompute, and by beat."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import cache

from votes.judge_tasks import JUDGE_BOARDS_QUEUED_KEY

from . import judges

log = logging.getLogger(__name__)


def refresh_boards() -> int:
    """Publish the boards whose inputs changed; never raises (the human
    snapshot is already published when this runs after it)."""
    try:
        return judges.publish_boards()
    except Exception:
        log.exception("judge boards failed; the next run tries again")
        return 0


@shared_task(name="ratings.recompute_judges", acks_late=True)
def recompute_judges() -> int:
    try:
        cache.delete(JUDGE_BOARDS_QUEUED_KEY)  # judgings finished from now on queue the next run
    except Exception as exc:  # noqa: BLE001 - no cache: the run goes on; the next debounce is only later
        log.warning("could not clear the judge boards' queued flag (%s)", exc)
    return refresh_boards()

"""Celery tasks of the judges (votes/judging.py): thin, by id, harmless twice.

No countdowns (ratings/tasks.py explains why): a judging that meets its
judge's concurrency cap waits inside the task for a slot, at most
ARENA_JUDGE_SLOT_WAIT_SECONDS, then stays pending for the periodic sweep;
one that meets the daily budget stays pending until the budget resets.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from . import judging

log = logging.getLogger(__name__)

JUDGE_BOARDS_TASK = "ratings.recompute_judges"
JUDGE_BOARDS_QUEUED_KEY = "ratings:judge-boards-queued"
SLOT_POLL_SECONDS = 0.5
SWEEP_BATCH = 200


def _judge_waiting_for_slot(judge_vote_id: int) -> str:
    deadline = time.monotonic() + settings.ARENA_JUDGE_SLOT_WAIT_SECONDS
    while True:
        state = judging.judge_one(judge_vote_id)
        if state != "busy" or time.monotonic() >= deadline:
            return state
        time.sleep(SLOT_POLL_SECONDS)


def request_judge_boards() -> None:
    """Ask for the judges' leaderboards to be recomputed, debounced like
    the human recompute; a cache or broker failure only delays them (the
    human recompute and beat also refresh them)."""
    try:
        if not cache.add(JUDGE_BOARDS_QUEUED_KEY, 1, timeout=max(1, int(settings.RATINGS_DEBOUNCE_SECONDS)) + 10):
            return
        from celery import current_app as app  # the project's app (arena/project/celery.py)

        app.send_task(JUDGE_BOARDS_TASK)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not queue the judge leaderboards (%s); the periodic run will catch up", exc)


@shared_task(name="votes.judge_battle", acks_late=True)
def judge_battle(battle_id: str) -> dict:
    """Every active judge's verdict on one human-voted battle (both orders)."""
    results = {jid: _judge_waiting_for_slot(jid) for jid in judging.judgings_for_battle(battle_id)}
    if "done" in results.values():
        request_judge_boards()
    return results


@shared_task(name="votes.judge", acks_late=True)
def judge(judge_vote_id: int) -> str:
    """One judge vote (a pair queued by ``manage.py judge_battles``, or a
    retry from the sweep)."""
    state = _judge_waiting_for_slot(judge_vote_id)
    if state == "done":
        request_judge_boards()
    return state


@shared_task(name="votes.judge_sweep", acks_late=True)
def judge_sweep() -> int:
    """Queue again the judgings left pending (cap, budget, a lost message)
    or running on a dead worker."""
    ids = judging.stale_or_waiting(SWEEP_BATCH)
    for jid in ids:
        judge.delay(jid)
    return len(ids)

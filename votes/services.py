"""Writes of votes. The database enforces one vote per battle; this layer
checks ownership and state and turns violations into clear errors."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction

from arena.models import Battle, Voter
from arena.services import ArenaError

from . import features
from .models import Vote

log = logging.getLogger(__name__)

RECOMPUTE_TASK = "ratings.recompute"
RECOMPUTE_QUEUED_KEY = "ratings:recompute-queued"


class VoteRejected(ArenaError):
    status = 400
    code = "vote_rejected"


class BattleNotFound(ArenaError):
    status = 404
    code = "battle_not_found"


class AlreadyVoted(ArenaError):
    status = 409
    code = "already_voted"


def vote_record(*, battle_id: uuid.UUID | str, voter: Voter, winner: str) -> Vote:
    """Store the voter's verdict on their own battle, once.

    Raises BattleNotFound (also for someone else's battle, so battle ids of
    other voters can't be probed), AlreadyVoted, VoteRejected.
    """
    try:
        battle_id = uuid.UUID(str(battle_id))
    except ValueError:
        raise BattleNotFound("no such battle for this voter") from None
    if winner not in Vote.Winner.values:
        raise VoteRejected(f"winner must be one of {', '.join(Vote.Winner.values)}")
    try:
        with transaction.atomic():
            battle = Battle.objects.select_for_update().filter(id=battle_id, voter=voter).first()
            if battle is None:
                raise BattleNotFound("no such battle for this voter")
            if battle.status == Battle.Status.VOTED or Vote.objects.filter(battle=battle).exists():
                raise AlreadyVoted("this battle already has a vote")
            if battle.status != Battle.Status.READY:
                raise VoteRejected("this battle cannot be voted on")
            if voter.banned:
                raise VoteRejected("this voter may not vote")
            vote = Vote.objects.create(
                battle=battle,
                voter=voter,
                model_a_id=battle.model_a_id,
                model_b_id=battle.model_b_id,
                winner=winner,
                **text_features(battle.prompt, [battle.response_a], [battle.response_b]),
            )
            Battle.objects.filter(id=battle.id).update(status=Battle.Status.VOTED)
            transaction.on_commit(request_recompute)
    except IntegrityError as exc:  # a concurrent submit won the unique index
        raise AlreadyVoted("this battle already has a vote") from exc
    return vote


def text_features(prompt: str, turns_a: list[str], turns_b: list[str], n_turns: int = 1) -> dict:
    """The per-vote columns the leaderboard views need, computed once at write time."""
    return {
        "language": features.language(prompt),
        "is_code": features.has_code(prompt, *turns_a, *turns_b),
        "prompt_tokens": features.token_count(prompt),
        "turns": max(1, n_turns),
        "style": [*features.conversation_counts(turns_a), *features.conversation_counts(turns_b)],
    }


def request_recompute() -> bool:
    """Ask the worker for a ratings recompute, debounced.

    Many votes inside the debounce window queue one task. A dead broker or
    cache never fails the vote: the periodic recompute catches up. Returns
    whether a task was queued.
    """
    from arena.celery import app

    debounce = settings.RATINGS_DEBOUNCE_SECONDS
    try:
        if not cache.add(RECOMPUTE_QUEUED_KEY, 1, timeout=debounce + 60):
            return False
    except Exception:  # noqa: BLE001 - cache down: still try to queue
        log.warning("cache unavailable; queueing a recompute without debounce")
    try:
        app.send_task(RECOMPUTE_TASK, countdown=debounce)
        return True
    except Exception as exc:  # noqa: BLE001 - broker down must not lose the vote
        log.warning("could not queue a ratings recompute (%s); the periodic run will catch up", exc)
        try:
            cache.delete(RECOMPUTE_QUEUED_KEY)
        except Exception:  # noqa: BLE001
            pass
        return False

"""Writes of votes. The database enforces one vote per battle; this layer
checks ownership and state and turns violations into clear errors."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from arena.models import Battle, Voter
from arena.services import ArenaError, BattleSkipped

from . import features
from .models import ExclusionReason, Vote

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


class BattleExpired(ArenaError):
    status = 410
    code = "battle_expired"


class DailyCapReached(ArenaError):
    status = 429
    code = "daily_cap_reached"


def vote_record(*, battle_id: uuid.UUID | str, voter: Voter, winner: str) -> Vote:
    """Store the voter's verdict on their own battle, once.

    Accepted only for a battle this voter opened, whose answers are complete,
    within ARENA_VOTE_WINDOW_SECONDS of their completion, under the voter's
    daily cap. Raises BattleNotFound (also for someone else's battle, so
    battle ids of other voters can't be probed), AlreadyVoted, BattleExpired,
    DailyCapReached, VoteRejected.
    """
    try:
        battle_id = uuid.UUID(str(battle_id))
    except ValueError:
        raise BattleNotFound("no such battle for this voter") from None
    if winner not in Vote.Winner.values:
        raise VoteRejected(f"winner must be one of {', '.join(Vote.Winner.values)}")
    try:
        with transaction.atomic():
            # The voter row is this voter's mutex: every per-voter rule below
            # (banned, the daily cap) is read-then-insert, and two simultaneous
            # votes must not both pass a count that each would push over the cap.
            locked = Voter.objects.select_for_update().filter(pk=voter.pk).values("banned").first()
            if locked is None:
                raise BattleNotFound("no such battle for this voter")
            # The models come with the battle: the reveal is read inside this
            # transaction, so nothing after the commit touches the database.
            battle = (
                Battle.objects.select_for_update(of=("self",))
                .select_related("model_a", "model_b")
                .filter(id=battle_id, voter=voter)
                .first()
            )
            if battle is None:
                raise BattleNotFound("no such battle for this voter")
            if battle.status == Battle.Status.VOTED or Vote.objects.filter(battle=battle).exists():
                raise AlreadyVoted("this battle already has a vote")
            if battle.status == Battle.Status.SKIPPED:
                raise BattleSkipped("this battle was skipped; open a new one")
            if battle.status == Battle.Status.PENDING:
                raise VoteRejected("the answers are not complete yet; vote when both have finished")
            if battle.status != Battle.Status.READY:
                raise VoteRejected("this battle cannot be voted on: one of the answers failed")
            if locked["banned"]:
                raise VoteRejected("this voter may not vote")
            now = timezone.now()
            window = settings.ARENA_VOTE_WINDOW_SECONDS
            if window and now - (battle.ready_at or battle.created_at) > timedelta(seconds=window):
                raise BattleExpired("this battle is too old to vote on; open a new one")
            cap = settings.ARENA_DAILY_VOTE_CAP
            if cap and Vote.objects.filter(voter=voter, created_at__gte=now - timedelta(days=1)).count() >= cap:
                raise DailyCapReached(f"this voter has cast {cap} votes in the last 24 hours, the daily cap")
            conversation = battle.turns or [{"prompt": battle.prompt, "a": battle.response_a, "b": battle.response_b}]
            vote = Vote.objects.create(
                battle=battle,
                voter=voter,
                model_a=battle.model_a,
                model_b=battle.model_b,
                winner=winner,
                created_at=now,
                **text_features(
                    battle.prompt,
                    [t["a"] for t in conversation],
                    [t["b"] for t in conversation],
                    n_turns=len(conversation),
                ),
                **leak_exclusion(battle, now),
            )
            Battle.objects.filter(id=battle.id).update(status=Battle.Status.VOTED)
            transaction.on_commit(request_recompute)
    except IntegrityError as exc:  # a concurrent submit won the unique index
        raise AlreadyVoted("this battle already has a vote") from exc
    return vote


def leak_exclusion(battle: Battle, now) -> dict:
    """A battle whose answers named a model or maker is stored but excluded."""
    if not battle.identity_leak:
        return {}
    return {"excluded": True, "exclusion_reason": ExclusionReason.IDENTITY_LEAK, "excluded_at": now}


def text_features(prompt: str, turns_a: list[str], turns_b: list[str], n_turns: int = 1) -> dict:
    """The per-vote columns the leaderboard views need, computed once at write time."""
    from .models import style_columns

    return {
        "language": features.language(prompt),
        "is_code": features.has_code(prompt, *turns_a, *turns_b),
        "prompt_tokens": features.token_count(prompt),
        "turns": max(1, n_turns),
        **style_columns([*features.conversation_counts(turns_a), *features.conversation_counts(turns_b)]),
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

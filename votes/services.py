"""Writes of votes. The database enforces one vote per battle; this layer
checks ownership and state and turns violations into clear errors."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from arena.models import Battle, Voter

# The battle errors are the battle domain's; re-exported here for callers of vote_record.
from arena.services import AlreadyVoted, ArenaError, BattleNotFound, BattleSkipped

from . import features
from .judging import request_judging
from .models import ExclusionReason, Vote

log = logging.getLogger(__name__)

RECOMPUTE_TASK = "ratings.recompute"
RECOMPUTE_QUEUED_KEY = "ratings:recompute-queued"
# The debounce flag outlives its window by this much: if its task is lost
# (a worker SIGKILLed holding it), the next vote after that queues another.
RECOMPUTE_FLAG_GRACE_SECONDS = 10


class VoteRejected(ArenaError):
    status = 400
    code = "vote_rejected"


class BattleExpired(ArenaError):
    status = 410
    code = "battle_expired"


class DailyCapReached(ArenaError):
    status = 429
    code = "daily_cap_reached"


# What the vote reads of the battle and its two models (the reveal needs
# the names only; the registry's JSON columns are left unread).
BATTLE_COLUMNS = (
    "id", "voter_id", "status", "prompt", "response_a", "response_b", "turns", "identity_leak", "ready_at",
    "created_at", "model_a__id", "model_a__name", "model_b__id", "model_b__name",
)  # fmt: skip


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
                .only(*BATTLE_COLUMNS)
                .filter(id=battle_id, voter=voter)
                .first()
            )
            if battle is None:
                raise BattleNotFound("no such battle for this voter")
            # A vote stored for a battle not marked voted (none is, but the
            # database is the judge) fails the unique index below: AlreadyVoted.
            if battle.status == Battle.Status.VOTED:
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
            transaction.on_commit(lambda: request_judging(battle_id))  # judges, if any (votes/judging.py)
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
    """Ask the worker for a ratings recompute, debounced; never blocks the vote.

    The first vote of a burst sets the debounce flag (its value: when the
    window ends) and
    publishes a plain ``ratings.recompute`` message, with no countdown: the
    task itself waits out the debounce window (ratings/tasks.py), so the
    worker never holds an ETA message that a Redis restart would make it
    restore (kombu crashes on that, issue #12). Later votes find the flag and
    publish nothing: the queued task will count them.

    Each Redis call waits at most ARENA_REDIS_TIMEOUT and goes through the
    circuit breaker (arena/redis_guard.py): a sick Redis costs one vote one
    short timeout, then votes skip it. A dead broker or cache never fails the
    vote: beat's periodic recompute catches up. Returns whether a task was queued.
    """
    from arena import redis_guard

    debounce = settings.RATINGS_DEBOUNCE_SECONDS
    flagged = redis_guard.call(
        redis_guard.cache_server(),
        lambda: cache.add(
            RECOMPUTE_QUEUED_KEY, time.time() + debounce, timeout=debounce + RECOMPUTE_FLAG_GRACE_SECONDS
        ),
        lambda: None,
        "recompute debounce flag",
    )
    if flagged is False:
        return False  # a queued (or lost, until the flag expires) task will count this vote
    sent = redis_guard.call(redis_guard.broker_server(), _publish_recompute, lambda: False, "recompute publish")
    if not sent:
        log.warning("could not queue a ratings recompute; the periodic run will catch up")
        if flagged:
            redis_guard.call(
                redis_guard.cache_server(), lambda: cache.delete(RECOMPUTE_QUEUED_KEY), lambda: None, "flag delete"
            )
    return sent


def _publish_recompute() -> bool:
    """Publish on a connection of its own with the short request-path
    timeouts and no retry (the worker's own connections keep theirs)."""
    from celery import current_app as app  # the project's app (arena/project/celery.py)

    options = {}
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        timeout = settings.ARENA_REDIS_TIMEOUT
        options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    with app.connection_for_write(transport_options=options) as conn:
        app.send_task(RECOMPUTE_TASK, connection=conn, retry=False)
    return True

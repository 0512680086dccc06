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

from arena import sql
from arena.models import ArenaModel, Battle, Judge, Voter

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
# The flag's value while its task is being published: "opening <window end>".
# A web process that reads it learns nothing (and keeps asking), so none
# trusts a window whose task was never queued (a failed publish deletes the
# flag); the task, which may well read it first, waits until the end it names.
# Once the task is queued the value becomes the window's end, a number.
RECOMPUTE_FLAG_OPENING = "opening"


def opening_flag(window_end: float) -> str:
    return f"{RECOMPUTE_FLAG_OPENING} {window_end:.3f}"


def opening_flag_end(value) -> float | None:
    """The window's end named by an opening flag's value, else None."""
    if isinstance(value, str) and value.startswith(RECOMPUTE_FLAG_OPENING + " "):
        try:
            return float(value.split(" ", 1)[1])
        except ValueError:
            return None
    return None


class VoteRejected(ArenaError):
    status = 400
    code = "vote_rejected"


class BattleExpired(ArenaError):
    status = 410
    code = "battle_expired"


class DailyCapReached(ArenaError):
    status = 429
    code = "daily_cap_reached"


def _vote_statements(db: sql.Block) -> dict:
    """The vote's reads and writes as fixed SQL (arena/sql.py): the ORM's
    build-and-compile of the same five statements was most of a vote's CPU
    (issue #14). Table names come from the models."""
    voter, battle, model, judge, vote = (m._meta.db_table for m in (Voter, Battle, ArenaModel, Judge, Vote))
    return {
        # The voter's row (this voter's mutex) and the battle with its models'
        # names (the reveal), both locked, in that order (the order of FOR
        # UPDATE OF), in one round trip; whether any judge is active rides
        # along (request_judging needs it after the commit). No row: no such
        # voter, or no such battle of theirs.
        "battle": f"SELECT b.status, b.prompt, b.response_a, b.response_b, b.turns, b.identity_leak, "
        f"b.ready_at, b.created_at, b.model_a_id, ma.name, b.model_b_id, mb.name, v.banned, "
        f"EXISTS (SELECT 1 FROM {judge} j WHERE j.status = %s) "
        f"FROM {voter} v JOIN {battle} b ON b.voter_id = v.id "
        f"JOIN {model} ma ON ma.id = b.model_a_id JOIN {model} mb ON mb.id = b.model_b_id "
        f"WHERE v.id = %s AND b.id = %s{db.for_update('v, b')}",
        "under_cap": f"(SELECT COUNT(*) FROM {vote} WHERE voter_id = %s AND created_at >= %s) < %s",
        "voted": f"UPDATE {battle} SET status = %s WHERE id = %s",
    }


BATTLE_READER = (None, None, None, None, (Battle, "turns"), (Battle, "identity_leak"), (Battle, "ready_at"),
                 (Battle, "created_at"), None, None, None, None, (Voter, "banned"), None)  # fmt: skip


def vote_record(*, battle_id: uuid.UUID | str, voter: Voter, winner: str) -> Vote:
    """Store the voter's verdict on their own battle, once.

    Accepted only for a battle this voter opened, whose answers are complete,
    within ARENA_VOTE_WINDOW_SECONDS of their completion, under the voter's
    daily cap. Raises BattleNotFound (also for someone else's battle, so
    battle ids of other voters can't be probed), AlreadyVoted, BattleExpired,
    DailyCapReached, VoteRejected. The returned vote's model_a and model_b
    carry the models' ids and names (the reveal).
    """
    try:
        battle_id = uuid.UUID(str(battle_id))
    except ValueError:
        raise BattleNotFound("no such battle for this voter") from None
    if winner not in Vote.Winner.values:
        raise VoteRejected(f"winner must be one of {', '.join(Vote.Winner.values)}")
    try:
        # Refusals (ArenaError) are raised before anything is written (the
        # cap's is an insert that wrote nothing): they commit (sql.atomic_block).
        with sql.atomic_block(refusing=(ArenaError,)) as db:
            statements = _vote_statements(db)
            battle_key = db.param(Battle, "id", battle_id)
            # The voter row is this voter's mutex: every per-voter rule below
            # (banned, the daily cap) is read-then-insert, and two simultaneous
            # votes must not both pass a count that each would push over the cap.
            # The models come with the battle: the reveal is read inside this
            # transaction, so nothing after the commit touches the database.
            row = db.one(statements["battle"], [Judge.Status.ACTIVE, voter.pk, battle_key])
            if row is None:
                raise BattleNotFound("no such battle for this voter")
            (status, prompt, response_a, response_b, turns, identity_leak, ready_at, created_at,
             model_a_id, model_a_name, model_b_id, model_b_name, banned, judges_active) = db.reader(
                *BATTLE_READER)(row)  # fmt: skip
            # A vote stored for a battle not marked voted (none is, but the
            # database is the judge) fails the unique index below: AlreadyVoted.
            if status == Battle.Status.VOTED:
                raise AlreadyVoted("this battle already has a vote")
            if status == Battle.Status.SKIPPED:
                raise BattleSkipped("this battle was skipped; open a new one")
            if status == Battle.Status.PENDING:
                raise VoteRejected("the answers are not complete yet; vote when both have finished")
            if status != Battle.Status.READY:
                raise VoteRejected("this battle cannot be voted on: one of the answers failed")
            if banned:
                raise VoteRejected("this voter may not vote")
            now = timezone.now()
            window = settings.ARENA_VOTE_WINDOW_SECONDS
            if window and now - (ready_at or created_at) > timedelta(seconds=window):
                raise BattleExpired("this battle is too old to vote on; open a new one")
            # The daily cap: counted in the insert's own statement where the
            # database can (PostgreSQL; after the voter's lock, so a vote of
            # theirs committed meanwhile is counted), just before it elsewhere.
            cap = settings.ARENA_DAILY_VOTE_CAP
            under_cap = None
            if cap:
                since = db.param(Vote, "created_at", now - timedelta(days=1))
                under_cap = (statements["under_cap"], [voter.pk, since, cap])
            conversation = turns or [{"prompt": prompt, "a": response_a, "b": response_b}]
            model_a = ArenaModel.from_db("default", ["id", "name"], [model_a_id, model_a_name])
            model_b = ArenaModel.from_db("default", ["id", "name"], [model_b_id, model_b_name])
            vote = Vote(
                battle_id=battle_id,
                voter=voter,
                model_a=model_a,
                model_b=model_b,
                winner=winner,
                created_at=now,
                **text_features(
                    prompt,
                    [t["a"] for t in conversation],
                    [t["b"] for t in conversation],
                    n_turns=len(conversation),
                ),
                **leak_exclusion(identity_leak, now),
            )
            if (
                db.insert(vote, also=(statements["voted"], [Battle.Status.VOTED, battle_key]), only_if=under_cap)
                is None
            ):
                raise DailyCapReached(f"this voter has cast {cap} votes in the last 24 hours, the daily cap")
            transaction.on_commit(request_recompute)
            if judges_active:  # judges, if any (votes/judging.py)
                transaction.on_commit(lambda: request_judging(battle_id, checked=True))
    except IntegrityError as exc:  # a concurrent submit won the unique index
        raise AlreadyVoted("this battle already has a vote") from exc
    return vote


def leak_exclusion(identity_leak: bool, now) -> dict:
    """A battle whose answers named a model or maker is stored but excluded."""
    if not identity_leak:
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


# What this process last learned of the debounce flag: when the window of
# the task it announces ends. Until shortly before then, that task is known
# to be waiting and will count this process's votes, so they ask Redis
# nothing (a round trip per vote saved, issue #14). The margin covers clocks
# of web and worker hosts that disagree by less than it. Kept on the
# monotonic clock (a wall clock set back must not stretch a window), and
# never longer than RATINGS_DEBOUNCE_SECONDS.
_debounce = {"window_end": 0.0, "next_read": 0.0}
DEBOUNCE_MARGIN_SECONDS = 0.25


def forget_debounce() -> None:
    """Forget what this process knows of the debounce flag (tests)."""
    _debounce.update(window_end=0.0, next_read=0.0)


def _learn_window(remaining: float, now: float) -> None:
    remaining = min(remaining, settings.RATINGS_DEBOUNCE_SECONDS)
    if remaining > 0:
        _debounce["window_end"] = now + remaining


def request_recompute() -> bool:
    """Ask the worker for a ratings recompute, debounced; never blocks the vote.

    The first vote of a burst sets the debounce flag, publishes a plain
    ``ratings.recompute`` message, then writes when the window ends as the
    flag's value (``opening <end>`` until then). No countdown: the
    task itself waits out the debounce window (ratings/tasks.py), so the
    worker never holds an ETA message that a Redis restart would make it
    restore (kombu crashes on that, issue #12). Later votes find the flag and
    publish nothing: the queued task will count them. A process that knows
    the flag's window (it set the flag, or read it) skips Redis until just
    before that window ends: the task clears the flag and reads the votes
    only once it has, so those votes, committed earlier, are counted.

    Each Redis call waits at most ARENA_REDIS_TIMEOUT and goes through the
    circuit breaker (arena/redis_guard.py): a sick Redis costs one vote one
    short timeout, then votes skip it. A dead broker or cache never fails the
    vote: beat's periodic recompute catches up. Returns whether a task was queued.
    """
    from arena import redis_guard

    now, ticks = time.time(), time.monotonic()
    if ticks < _debounce["window_end"] - DEBOUNCE_MARGIN_SECONDS:
        return False  # the known window's task will count this vote
    debounce = settings.RATINGS_DEBOUNCE_SECONDS
    flagged = redis_guard.call(
        redis_guard.cache_server(),
        lambda: cache.add(
            RECOMPUTE_QUEUED_KEY, opening_flag(now + debounce), timeout=debounce + RECOMPUTE_FLAG_GRACE_SECONDS
        ),
        lambda: None,
        "recompute debounce flag",
    )
    if flagged is False:
        if ticks >= _debounce["window_end"] and ticks >= _debounce["next_read"]:
            # A window another process opened: learn when it ends (at most
            # once per margin while a window that is over still has its
            # flag: its task has not cleared it yet, or was lost).
            _debounce["next_read"] = ticks + DEBOUNCE_MARGIN_SECONDS
            due = redis_guard.call(
                redis_guard.cache_server(), lambda: cache.get(RECOMPUTE_QUEUED_KEY), lambda: None, "flag read"
            )
            if isinstance(due, int | float):
                _learn_window(due - now, ticks)
        return False  # a queued (or lost, until the flag expires) task will count this vote
    sent = redis_guard.call(redis_guard.broker_server(), _publish_recompute, lambda: False, "recompute publish")
    if not sent:
        log.warning("could not queue a ratings recompute; the periodic run will catch up")
        if flagged:
            redis_guard.call(
                redis_guard.cache_server(), lambda: cache.delete(RECOMPUTE_QUEUED_KEY), lambda: None, "flag delete"
            )
    elif flagged:
        # The task is queued: the window's end, for the task and the other processes.
        redis_guard.call(
            redis_guard.cache_server(),
            lambda: cache.set(RECOMPUTE_QUEUED_KEY, now + debounce, timeout=debounce + RECOMPUTE_FLAG_GRACE_SECONDS),
            lambda: None,
            "flag window",
        )
        _learn_window(debounce, ticks)
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

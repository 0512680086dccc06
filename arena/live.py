"""Live battles: two OpenAI-compatible endpoints answer the voter's own
prompt, both streamed to the browser at once, over as many turns as the
arena allows.

A live battle is ``pending`` while a turn is being answered and ``ready``
once both sides finished it; only then can it be voted on (or continued).
A side that fails (timeout, refused connection, 4xx/5xx, a stream cut half
way) makes the battle ``failed``: it can't be voted on, the voter is told in
words that name no model, and may retry the turn or open a new battle. The
failed turn's partial text is kept for operators but never counted.

Each model has a cap on answers in flight (``max_concurrency``): the turns
being streamed right now (``Battle.streaming_since``), checked under a row
lock (FOR NO KEY UPDATE, in id order) on the two models when a stream starts. Opening a battle takes no slot. A model whose
answers fail ARENA_AUTO_PAUSE_FAILURES times in a row is paused, with the
reason shown in the admin; one success resets the count.

A stream is a coroutine (served under ASGI, arena.streaming): both sides are
tasks reading the providers through one shared ``httpx.AsyncClient``, and
the stream's few database steps (claim, store, release) run on a small
thread pool, outside any transaction that waits on the network.

Anonymity: the stream carries only the side letters, answer text and public
error messages; the battle's models are revealed by the vote response alone.
An answer that names its own model or maker marks the battle
``identity_leak`` (arena.leaks): the voter still sees the reveal, the vote
is excluded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, connections, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from . import live_sql
from .leaks import battle_leaks
from .metrics import observe_astream
from .models import ArenaModel, Battle, Voter
from .provider_http import StreamClient
from .providers import OpenAICompatible, ProviderError
from .rendering import render_markdown
from .services import ArenaError, BattleNotFound, NoBattleAvailable, VoterBanned, choose_pair

log = logging.getLogger(__name__)

# Provider failures that count against a model (a full model is not its fault).
MODEL_FAULTS = {"timeout", "connection", "http", "stream", "config"}


class BattleBusy(ArenaError):
    status = 409
    code = "battle_busy"


class ModelsBusy(NoBattleAvailable):
    """Every free slot is taken by answers being streamed right now."""

    def __init__(self):
        super().__init__("the models are busy; try again in a moment")
        self.headers = {"Retry-After": "5"}


class TurnRefused(ArenaError):
    status = 400
    code = "turn_refused"


# --- registry -------------------------------------------------------------------


def live_models():
    """Models that answer live: active, drawable, behind an OpenAI-compatible endpoint."""
    return ArenaModel.objects.filter(
        status=ArenaModel.Status.ACTIVE, weight__gt=0, provider_kind=ArenaModel.Provider.OPENAI
    ).order_by("name")


def live_enabled() -> bool:
    return live_models().count() >= 2


def _own_battle(battle_id, voter: Voter, battles) -> Battle:
    """The voter's battle from ``battles``; someone else's is as unknown as a missing one."""
    # get(), not first(): first() orders by id, and compiling that ORDER BY
    # (hashing its expressions) was the costliest step of a stream's claim.
    try:
        return battles.get(id=battle_id, voter=voter)
    except Battle.DoesNotExist:
        raise BattleNotFound("no such battle for this voter") from None


# --- opening and continuing battles ----------------------------------------------


def _in_flight(models: list[ArenaModel]) -> dict[int, int]:
    """Answers in flight per capped model: battles whose turn is streaming
    now (started less than ARENA_PENDING_STALE_SECONDS ago; an older mark is
    a stream whose process died). Counted in the database, one query; a
    model without a cap is not counted at all (hundreds of streams would
    otherwise be read back for every claim)."""
    capped = [m.id for m in models if m.max_concurrency]
    if not capped:
        return {}
    horizon = timezone.now() - timedelta(seconds=settings.ARENA_PENDING_STALE_SECONDS)
    counts = Battle.objects.filter(streaming_since__gte=horizon).aggregate(
        **{f"m{mid}": Count("id", filter=Q(model_a_id=mid) | Q(model_b_id=mid)) for mid in capped}
    )
    return {mid: counts[f"m{mid}"] for mid in capped}


def _has_slot(model: ArenaModel, busy: dict[int, int]) -> bool:
    return not model.max_concurrency or busy[model.id] < model.max_concurrency


def check_prompt(prompt: str) -> str:
    prompt = (prompt or "").strip()
    if not prompt:
        raise TurnRefused("write a prompt first")
    limit = settings.ARENA_MAX_PROMPT_CHARS
    if len(prompt) > limit:
        raise TurnRefused(f"the prompt is {len(prompt)} characters; the limit is {limit}")
    return prompt


def live_battle_create(*, voter: Voter, prompt: str, client_hash: str = "", rng: random.Random | None = None) -> Battle:
    """Open a pending live battle on two models with a free answer slot."""
    if voter.banned:
        raise VoterBanned("this voter may not open battles")
    prompt = check_prompt(prompt)
    rng = rng or random.SystemRandom()
    # Opening takes no slot (a stream does, under its own lock in
    # claim_stream), so models at their cap are only left out of the draw.
    models = list(live_models())
    busy = _in_flight(models)
    free = [m for m in models if _has_slot(m, busy)]
    if len(models) >= 2 and len(free) < 2:
        raise ModelsBusy()
    if len(free) < 2:
        raise NoBattleAvailable("fewer than two live models are active")
    model_a, model_b = choose_pair(free, rng)
    return Battle.objects.create(
        voter=voter,
        model_a=model_a,
        model_b=model_b,
        prompt=prompt,
        turns=[{"prompt": prompt, "a": "", "b": ""}],
        status=Battle.Status.PENDING,
        client_hash=client_hash,
    )


def battle_continue(*, battle_id, voter: Voter, prompt: str) -> Battle:
    """Add the voter's next prompt to a ready, unvoted live battle."""
    prompt = check_prompt(prompt)
    with transaction.atomic():
        battle = _own_battle(battle_id, voter, Battle.objects.select_for_update())
        if battle.model_a.provider_kind != ArenaModel.Provider.OPENAI:
            raise TurnRefused("this battle's answers were written in advance; it has one turn")
        if battle.status == Battle.Status.VOTED:
            raise TurnRefused("this battle is already voted on; open a new one")
        if battle.status != Battle.Status.READY:
            raise TurnRefused("finish (or retry) the current turn first")
        _check_still_open(battle, voter)
        if len(battle.turns) >= settings.ARENA_MAX_TURNS:
            raise TurnRefused(f"a battle has at most {settings.ARENA_MAX_TURNS} turns; vote now")
        battle.turns = [*battle.turns, {"prompt": prompt, "a": "", "b": ""}]
        battle.status = Battle.Status.PENDING
        battle.save(update_fields=["turns", "status"])
    return battle


# --- streaming a turn ---------------------------------------------------------------


def _check_still_open(battle: Battle, voter: Voter) -> None:
    """More answers only from models still active, for voters not banned."""
    if voter.banned:
        raise VoterBanned("this voter may not open battles")
    if battle.model_a.status != ArenaModel.Status.ACTIVE or battle.model_b.status != ArenaModel.Status.ACTIVE:
        raise TurnRefused("one of the models is no longer available; start a new battle")


def _messages(turns: list[dict], side: str) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    for turn in turns[:-1]:
        messages += [{"role": "user", "content": turn["prompt"]}, {"role": "assistant", "content": turn[side]}]
    messages.append({"role": "user", "content": turns[-1]["prompt"]})
    return messages


class _Inbox:
    """What the two sides of a stream send it: a list and, while the stream
    waits, one future. Cheaper than an asyncio.Queue and a timeout context
    per wait (both showed in the web process's profile under 500 streams):
    a wait makes one future, and a timer only when a coalesced delta is due."""

    __slots__ = ("items", "loop", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.items: list[tuple] = []
        self.loop = loop
        self.waiter: asyncio.Future | None = None

    def put_nowait(self, item: tuple) -> None:
        self.items.append(item)
        self.wake()

    def wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self) -> list[tuple]:
        items, self.items = self.items, []
        return items

    async def wait(self, until: float) -> None:
        """Until something arrives, ``wake`` is called, or the loop's clock reaches ``until``."""
        if self.items:
            return
        waiter = self.waiter = self.loop.create_future()
        timer = self.loop.call_at(until, self.wake) if until != math.inf else None
        try:
            await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()


async def _answer(model: ArenaModel, side: str, messages: list[dict], out: _Inbox, client: StreamClient) -> None:
    """One side, as a task: stream its deltas into ``out``, never raise.
    Cancelling the task (the voter left, or the turn's deadline passed)
    closes the provider's connection, so no answer runs on unseen."""
    try:
        provider = OpenAICompatible.from_settings(model.provider_settings or {})
        # arena/metrics.py observes time to the first piece, to the end, and errors
        async for delta in observe_astream(model.name, provider.astream(messages, client)):
            out.put_nowait((side, "delta", delta))
        out.put_nowait((side, "done", None))
    except ProviderError as exc:
        out.put_nowait((side, "error", exc))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug in one side must still end the stream cleanly
        log.exception("side %s of a live battle crashed", side)
        out.put_nowait((side, "error", ProviderError("stream", f"{type(exc).__name__}: {exc}")))


# One HTTP client per event loop, shared by every side of every stream
# (arena.provider_http: keep-alive connections per provider, far cheaper per
# request and per read than httpx). Keyed weakly, so a loop that ends (a
# test's) takes its client with it.
_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def provider_client() -> StreamClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        # No pool cap: the per-model cap is max_concurrency, checked at the claim.
        client = StreamClient()
        _clients[loop] = client
    return client


# Database work of the stream runs on this pool, off the event loop, so a
# waiting stream holds no thread. A pool of its own (not the loop's default)
# bounds the database connections a web process opens for streams.
_db_pool: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _db_pool
    if _db_pool is None:
        _db_pool = ThreadPoolExecutor(max_workers=settings.ARENA_STREAM_DB_THREADS, thread_name_prefix="stream-db")
    return _db_pool


_pool_connections: set = set()  # the pool threads' connection wrappers, to close them


def reset_db_pool() -> None:
    """Stop the pool's threads and close their connections; tests call this
    before the test database is dropped."""
    global _db_pool
    pool, _db_pool = _db_pool, None
    if pool is not None:
        pool.shutdown(wait=True)
    for wrapper in list(_pool_connections):
        _pool_connections.discard(wrapper)
        if wrapper.connection is not None:
            wrapper.connection.close()  # its thread has ended: close the raw connection
            wrapper.connection = None


def _with_connection(fn, *args):
    # What Django does around each request: drop a connection that is broken
    # or past CONN_MAX_AGE before using it, and after.
    _pool_connections.update(connections.all(initialized_only=True))
    close_old_connections()
    try:
        return fn(*args)
    finally:
        close_old_connections()
        _pool_connections.update(connections.all(initialized_only=True))


async def in_db_thread(fn, *args):
    """Run ``fn`` (database work, in its own transactions) on the stream pool.
    A plain executor call: no context copied in and out (sync_to_async's),
    which nothing here reads."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), _with_connection, fn, *args)


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def claim_stream(battle_id, voter: Voter) -> Battle:
    """Take the right to answer the battle's current turn: it must be this
    voter's, pending (or failed, to retry), not streaming in another tab, and
    both models must have a free slot (``max_concurrency``). Opening a battle
    takes no slot, so battles opened and never streamed block nobody."""
    now = timezone.now()
    horizon = now - timedelta(seconds=settings.ARENA_PENDING_STALE_SECONDS)
    if connection.vendor == "postgresql":
        # The common case in one statement (arena.live_sql.quick_claim); any
        # other (a cap to count, a refusal to explain) takes the path below.
        battle = live_sql.quick_claim(battle_id, voter.id, now, horizon)
        if battle is not None:
            voter.banned = False  # as the claim read it
            return battle
    with transaction.atomic():
        # FOR NO KEY UPDATE (here and on the models below): it does not
        # conflict with the FOR KEY SHARE locks that inserting a battle or a
        # vote takes on the rows it references, so opening battles and voting
        # never wait on (or deadlock with) a claim. Rows of one table are
        # always locked in id order, everywhere in this module.
        # One statement, composed once (arena.live_sql): the ORM's compiling
        # of this select_related query was most of a claim's CPU.
        battle = live_sql.claim_battle(battle_id, voter.id)
        if battle is None:
            raise BattleNotFound("no such battle for this voter")
        if battle.status not in (Battle.Status.PENDING, Battle.Status.FAILED):
            raise TurnRefused("this turn is already answered")
        if battle.model_a.provider_kind != ArenaModel.Provider.OPENAI:
            raise TurnRefused("this battle's answers were written in advance")
        _check_still_open(battle, voter)
        if battle.streaming_since and battle.streaming_since >= horizon:
            raise BattleBusy("this battle is already being answered in another tab")
        if battle.model_a.max_concurrency or battle.model_b.max_concurrency:
            # Lock the two model rows so two streams can't take one last slot.
            # Models without a cap are not locked: every stream on a popular
            # pair would otherwise queue on the same two rows.
            models = list(
                ArenaModel.objects.select_for_update(no_key=True)
                .filter(id__in=[battle.model_a_id, battle.model_b_id])
                .order_by("id")
            )
            busy = _in_flight(models)
            if not all(_has_slot(m, busy) for m in models):
                raise ModelsBusy()
        live_sql.mark_streaming(battle.id, now)
        battle.status, battle.failure, battle.streaming_since = Battle.Status.PENDING, "", now
    return battle


def _release(battle: Battle, turns: list[dict]) -> None:
    """The voter closed the tab mid-turn: keep what they saw (for the
    operators, and for the leak rule), free the slots; the battle stays
    pending and the page streams the turn afresh on return. A stream that
    lost its claim matches no row and writes nothing."""
    live_sql.update_claimed(
        battle,
        {"turns": turns, "identity_leak": battle.identity_leak or battle_leaks(turns, battle.model_a, battle.model_b)},
    )


# Cleanups still running after their stream was cancelled (kept referenced
# so the loop does not drop them half way).
_cleanups: set[asyncio.Task] = set()


async def stream_turn(battle: Battle) -> AsyncIterator[bytes]:
    """Server-sent events for the battle's current turn, both sides at once:
    ``start`` {turn, prompt_html}, ``delta`` {side, text}, ``side_done``
    {side, html: the whole answer rendered}, ``side_error`` {side,
    message}, then one ``end`` {status, turn, turns_left} once the outcome is
    stored. Run under a claim from claim_stream().

    Deltas are coalesced: at most one ``delta`` per side per
    ARENA_STREAM_COALESCE_MS, carrying the text that arrived meanwhile (the
    first piece goes out at once), so a provider sending one token per chunk
    does not cost one event, one write and one browser repaint per token.
    The concatenated text is exactly the provider's."""
    loop = asyncio.get_running_loop()
    turns = [dict(t) for t in battle.turns]
    current = turns[-1]
    current["a"] = current["b"] = ""
    sides = {"a": battle.model_a, "b": battle.model_b}
    out = _Inbox(loop)
    errors: dict[str, ProviderError] = {}
    interval = max(0, settings.ARENA_STREAM_COALESCE_MS) / 1000
    unsent = {"a": "", "b": ""}
    sent_at = {"a": -math.inf, "b": -math.inf}
    # A turn ends before its streaming mark would count as stale, so no other
    # tab can claim it while this one still writes.
    deadline = loop.time() + max(1, settings.ARENA_PENDING_STALE_SECONDS - 10)
    stored = False
    tasks: list[asyncio.Task] = []
    deadline_timer: asyncio.TimerHandle | None = None

    def flush(side: str) -> bytes:
        text, unsent[side] = unsent[side], ""
        sent_at[side] = loop.time()
        return sse("delta", {"side": side, "text": text})

    try:
        client = provider_client()
        for side, model in sides.items():
            tasks.append(asyncio.create_task(_answer(model, side, _messages(turns, side), out, client)))
        yield sse("start", {"turn": len(turns), "prompt_html": render_markdown(current.get("prompt", ""))})
        pending = set(sides)
        # One timer for the turn's deadline, not one per wait.
        deadline_timer = loop.call_at(deadline, out.wake)
        while pending:
            due = min((sent_at[s] + interval for s in sides if unsent[s]), default=math.inf)
            if loop.time() < deadline:
                await out.wait(due)  # or until the deadline's timer wakes it
            items = out.take()
            if not items:  # woken by the clock: a coalesced delta is due, or the deadline passed
                now = loop.time()
                # (a timer may fire up to a clock tick early)
                events = [flush(s) for s in sides if unsent[s] and sent_at[s] + interval <= now + 0.001]
                if now < deadline:
                    if events:
                        yield b"".join(events)
                    continue
                for side in sorted(pending):
                    if unsent[side]:
                        events.append(flush(side))
                    errors[side] = ProviderError("timeout", "the turn ran past its deadline")
                    events.append(sse("side_error", {"side": side, "message": f"Model {side.upper()} failed: "
                                                     f"{errors[side].public}"}))  # fmt: skip
                yield b"".join(events)
                break
            # Whatever has arrived meanwhile goes out in the same write:
            # under load one socket write per event was a large share of the
            # web process's CPU (docs/LIVE.md "Measured").
            events = []
            for side, kind, payload in items:
                if kind == "delta":
                    current[side] += payload
                    unsent[side] += payload
                    if loop.time() - sent_at[side] >= interval:
                        events.append(flush(side))
                    continue
                if unsent[side]:
                    events.append(flush(side))
                pending.discard(side)
                if kind == "done":
                    # The page shows the streamed text plainly, then swaps in this.
                    events.append(sse("side_done", {"side": side, "html": render_markdown(current[side])}))
                else:
                    errors[side] = payload
                    events.append(sse("side_error", {"side": side, "message": f"Model {side.upper()} failed: "
                                                     f"{payload.public}"}))  # fmt: skip
            if events:
                yield b"".join(events)
        for task in tasks:
            task.cancel()
        status = await in_db_thread(_store_turn, battle, turns, errors)
        stored = True
        yield sse(
            "end",
            {
                "status": status,
                "turn": len(turns),
                "turns_left": max(0, settings.ARENA_MAX_TURNS - len(turns)) if status == "ready" else 0,
            },
        )
    finally:
        if deadline_timer is not None:
            deadline_timer.cancel()
        for task in tasks:
            task.cancel()
        if not stored:
            # Shielded: the voter's disconnect cancels this stream, and the
            # slots must still be freed.
            cleanup = asyncio.ensure_future(in_db_thread(_release, battle, turns))
            _cleanups.add(cleanup)
            cleanup.add_done_callback(_cleanups.discard)
            try:
                await asyncio.shield(cleanup)
            except asyncio.CancelledError:
                pass


def _store_turn(battle: Battle, turns: list[dict], errors: dict[str, ProviderError]) -> str:
    """Write the turn's outcome, then each model's health, unless the battle
    moved on meanwhile (then return its current status).

    A failed turn writes both in one transaction (a failure may pause a
    model). A successful one, the bulk of them, writes each as a statement
    of its own (autocommit: three round trips instead of five, each a wait
    for the GIL on a busy web process): a success only resets a model's
    failure count, and a statement that locks one row at most and commits at
    once can wait on no one crosswise.

    What the voter saw counts for the leak rule even when the turn failed,
    and a leak once seen is never forgotten by a retry."""
    now = timezone.now()
    fields: dict = {"turns": turns, "failure": "", "streaming_since": None}
    fields["identity_leak"] = battle.identity_leak or battle_leaks(turns, battle.model_a, battle.model_b)
    if len(turns) == 1:
        fields |= {"response_a": turns[0]["a"], "response_b": turns[0]["b"]}
    if errors:
        fields["status"] = Battle.Status.FAILED
        fields["failure"] = "; ".join(f"{side}: {exc.kind}: {exc.detail}" for side, exc in sorted(errors.items()))[:500]
    else:
        fields["status"] = Battle.Status.READY
        fields["ready_at"] = now
    with transaction.atomic() if errors else nullcontext():
        written = live_sql.update_claimed(battle, fields)
        if not written:
            log.warning("battle %s moved on while its turn streamed; this stream's answers are dropped", battle.id)
            return Battle.objects.filter(id=battle.id).values_list("status", flat=True).first() or "failed"
        # In id order, as claim_stream locks them: two turns of the same pair
        # finishing at once (sides swapped) must not lock crosswise.
        for side, model in sorted((("a", battle.model_a), ("b", battle.model_b)), key=lambda sm: sm[1].id):
            _model_health(model, errors.get(side), now)
    battle.identity_leak = fields["identity_leak"]
    return fields["status"]


def _model_health(model: ArenaModel, error: ProviderError | None, now) -> None:
    if error is None:
        live_sql.reset_failures(model.id)
        return
    if error.kind not in MODEL_FAULTS:
        return
    ArenaModel.objects.filter(id=model.id).update(consecutive_failures=F("consecutive_failures") + 1)
    limit = settings.ARENA_AUTO_PAUSE_FAILURES
    if limit <= 0:
        return
    paused = ArenaModel.objects.filter(
        id=model.id, status=ArenaModel.Status.ACTIVE, consecutive_failures__gte=limit
    ).update(
        status=ArenaModel.Status.PAUSED,
        paused_at=now,
        paused_reason=f"paused automatically after {limit} failed answers in a row; last: {error.kind}: {error.detail}"[
            :300
        ],
    )
    if paused:
        log.warning("model %s paused after %d consecutive failures (%s)", model.name, limit, error.detail)

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
lock on the two models when a stream starts. Opening a battle takes no slot. A model whose
answers fail ARENA_AUTO_PAUSE_FAILURES times in a row is paused, with the
reason shown in the admin; one success resets the count.

Anonymity: the stream carries only the side letters, answer text and public
error messages; the battle's models are revealed by the vote response alone.
An answer that names its own model or maker marks the battle
``identity_leak`` (arena.leaks): the voter still sees the reveal, the vote
is excluded.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .leaks import battle_leaks
from .metrics import observe_stream
from .models import ArenaModel, Battle, Voter
from .providers import OpenAICompatible, ProviderError
from .rendering import render_markdown
from .services import ArenaError, NoBattleAvailable, VoterBanned, choose_pair

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
    from votes.services import BattleNotFound

    battle = battles.filter(id=battle_id, voter=voter).first()
    if battle is None:
        raise BattleNotFound("no such battle for this voter")
    return battle


# --- opening and continuing battles ----------------------------------------------


def _in_flight(model_ids: list[int]) -> dict[int, int]:
    """Answers in flight per model: battles whose turn is streaming now
    (started less than ARENA_PENDING_STALE_SECONDS ago; an older mark is a
    stream whose process died)."""
    horizon = timezone.now() - timedelta(seconds=settings.ARENA_PENDING_STALE_SECONDS)
    streaming = Battle.objects.filter(streaming_since__gte=horizon).filter(
        Q(model_a_id__in=model_ids) | Q(model_b_id__in=model_ids)
    )
    counts = dict.fromkeys(model_ids, 0)
    for a, b in streaming.values_list("model_a_id", "model_b_id"):
        for m in (a, b):
            if m in counts:
                counts[m] += 1
    return counts


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


def live_battle_create(
    *, voter: Voter, prompt: str, client_hash: str = "", rng: random.Random | None = None
) -> Battle:
    """Open a pending live battle on two models with a free answer slot."""
    if voter.banned:
        raise VoterBanned("this voter may not open battles")
    prompt = check_prompt(prompt)
    rng = rng or random.SystemRandom()
    # Opening takes no slot (a stream does, under its own lock in
    # claim_stream), so models at their cap are only left out of the draw.
    models = list(live_models())
    busy = _in_flight([m.id for m in models])
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


def _answer(model: ArenaModel, side: str, messages: list[dict], out: queue.Queue, stop: threading.Event) -> None:
    """Runs in its own thread: stream one side into ``out``, never raise.
    ``stop`` set (the voter left, or the turn's deadline passed) closes the
    provider's connection at the next chunk, so no answer runs on unseen."""
    try:
        provider = OpenAICompatible.from_settings(model.provider_settings or {})
        chunks = observe_stream(model.name, provider.stream(messages))  # arena/metrics.py
        try:
            for delta in chunks:
                if stop.is_set():
                    return
                out.put((side, "delta", delta))
        finally:
            chunks.close()
        out.put((side, "done", None))
    except ProviderError as exc:
        out.put((side, "error", exc))
    except Exception as exc:  # noqa: BLE001 - a bug in one side must still end the stream cleanly
        log.exception("side %s of a live battle crashed", side)
        out.put((side, "error", ProviderError("stream", f"{type(exc).__name__}: {exc}")))


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def claim_stream(battle_id, voter: Voter) -> Battle:
    """Take the right to answer the battle's current turn: it must be this
    voter's, pending (or failed, to retry), not streaming in another tab, and
    both models must have a free slot (``max_concurrency``). Opening a battle
    takes no slot, so battles opened and never streamed block nobody."""
    now = timezone.now()
    with transaction.atomic():
        battle = _own_battle(
            battle_id, voter, Battle.objects.select_for_update(of=("self",)).select_related("model_a", "model_b")
        )
        if battle.status not in (Battle.Status.PENDING, Battle.Status.FAILED):
            raise TurnRefused("this turn is already answered")
        if battle.model_a.provider_kind != ArenaModel.Provider.OPENAI:
            raise TurnRefused("this battle's answers were written in advance")
        _check_still_open(battle, voter)
        horizon = now - timedelta(seconds=settings.ARENA_PENDING_STALE_SECONDS)
        if battle.streaming_since and battle.streaming_since >= horizon:
            raise BattleBusy("this battle is already being answered in another tab")
        # Lock the two model rows so two streams can't take one last slot.
        models = list(ArenaModel.objects.select_for_update().filter(id__in=[battle.model_a_id, battle.model_b_id]))
        busy = _in_flight([m.id for m in models])
        if not all(_has_slot(m, busy) for m in models):
            raise ModelsBusy()
        Battle.objects.filter(id=battle.id).update(status=Battle.Status.PENDING, failure="", streaming_since=now)
        battle.status, battle.failure, battle.streaming_since = Battle.Status.PENDING, "", now
    return battle


def stream_turn(battle: Battle) -> Iterator[bytes]:
    """Server-sent events for the battle's current turn, both sides at once:
    ``start`` {turn, prompt_html}, ``delta`` {side, text}, ``side_done``
    {side, html: the whole answer rendered}, ``side_error`` {side,
    message}, then one ``end`` {status, turn, turns_left} once the outcome is
    stored. Run under a claim from claim_stream()."""
    turns = [dict(t) for t in battle.turns]
    current = turns[-1]
    current["a"] = current["b"] = ""
    sides = {"a": battle.model_a, "b": battle.model_b}
    out: queue.Queue = queue.Queue()
    stop = threading.Event()
    errors: dict[str, ProviderError] = {}
    # A turn ends before its streaming mark would count as stale, so no other
    # tab can claim it while this one still writes.
    deadline = time.monotonic() + max(1, settings.ARENA_PENDING_STALE_SECONDS - 10)
    stored = False
    try:
        for side, model in sides.items():
            threading.Thread(
                target=_answer,
                args=(model, side, _messages(turns, side), out, stop),
                daemon=True,
                name=f"battle-{side}",
            ).start()
        yield sse("start", {"turn": len(turns), "prompt_html": render_markdown(current.get("prompt", ""))})
        pending = set(sides)
        while pending:
            try:
                side, kind, payload = out.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                for side in sorted(pending):
                    errors[side] = ProviderError("timeout", "the turn ran past its deadline")
                    yield sse("side_error", {"side": side, "message": f"Model {side.upper()} failed: "
                                             f"{errors[side].public}"})  # fmt: skip
                break
            if kind == "delta":
                current[side] += payload
                yield sse("delta", {"side": side, "text": payload})
            elif kind == "done":
                pending.discard(side)
                # The page shows the streamed text plainly, then swaps in this.
                yield sse("side_done", {"side": side, "html": render_markdown(current[side])})
            else:
                pending.discard(side)
                errors[side] = payload
                yield sse("side_error", {"side": side, "message": f"Model {side.upper()} failed: {payload.public}"})
        status = _store_turn(battle, turns, errors)
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
        stop.set()
        if not stored:
            # The voter closed the tab mid-turn: keep what they saw (for the
            # operators, and for the leak rule), free the slots; the battle
            # stays pending and the page streams the turn afresh on return.
            Battle.objects.filter(
                id=battle.id, status=Battle.Status.PENDING, streaming_since=battle.streaming_since
            ).update(
                turns=turns,
                identity_leak=battle.identity_leak or battle_leaks(turns, battle.model_a, battle.model_b),
                streaming_since=None,
            )


def _store_turn(battle: Battle, turns: list[dict], errors: dict[str, ProviderError]) -> str:
    """Write the turn's outcome and each model's health in one transaction,
    unless the battle moved on meanwhile (then return its current status).

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
    with transaction.atomic():
        written = Battle.objects.filter(
            id=battle.id, status=Battle.Status.PENDING, streaming_since=battle.streaming_since
        ).update(**fields)
        if not written:
            log.warning("battle %s moved on while its turn streamed; this stream's answers are dropped", battle.id)
            return Battle.objects.filter(id=battle.id).values_list("status", flat=True).first() or "failed"
        for side, model in (("a", battle.model_a), ("b", battle.model_b)):
            _model_health(model, errors.get(side), now)
    battle.identity_leak = fields["identity_leak"]
    return fields["status"]


def _model_health(model: ArenaModel, error: ProviderError | None, now) -> None:
    if error is None:
        ArenaModel.objects.filter(id=model.id, consecutive_failures__gt=0).update(consecutive_failures=0)
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
        paused_reason=f"paused automatically after {limit} failed answers in a row; last: {error.kind}: "
        f"{error.detail}"[:300],
    )
    if paused:
        log.warning("model %s paused after %d consecutive failures (%s)", model.name, limit, error.detail)

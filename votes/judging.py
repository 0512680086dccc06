"""LLM-as-judge: an automatic judge's verdict on a conversation, in both orders.

A judge (arena.Judge) sees the conversation with the two answers as
"Assistant A" and "Assistant B" (MT-bench's pairwise convention), then again
with the answers swapped. Each order is one call to its OpenAI-compatible
endpoint (arena.providers, the live models' client); each order's verdict
is mapped back to the models, and the judge vote's verdict is theirs when
the two agree and a tie when they do not, which cancels position bias.

An output without a verdict ``[[A]]``, ``[[B]]`` or ``[[C]]`` is an error,
like an HTTP error: retried (ARENA_JUDGE_RETRIES more attempts per order),
never guessed. A judging whose retries all fail is ``failed``; a judge with
ARENA_AUTO_PAUSE_FAILURES failed judgings in a row is paused, as a live
model is, and one success resets the count.

Calls are plain (non-streamed) chat completions over httpx with the live
models' settings, key and error kinds; a server that streams anyway is read
as a stream.

Limits, claimed under the judge's row lock so that concurrent workers agree:
at most ``max_concurrency`` judgings running at once (a judging that stays
``running`` longer than ARENA_JUDGE_STALE_SECONDS belongs to a dead worker
and may be taken again), and at most ``daily_budget`` calls per UTC day,
each attempt of each order counted. A judging that meets either limit goes
back to ``pending`` with what it has done so far (an order already judged is
not asked again); votes.judge_tasks sweeps pending judgings up later.

Nothing here runs in a voter's request: the vote only queues a task
(``request_judging``), after its commit, and the judge's verdict is never
shown to a voter.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from arena.models import Answer, ArenaModel, Battle, Judge, Question
from arena.providers import OpenAICompatible, ProviderError

from .models import JudgeVote

log = logging.getLogger(__name__)

VERDICT_RE = re.compile(r"\[\[([ABC])\]\]")
PLACEHOLDER_RE = re.compile(r"\{(question|answer_a|answer_b)\}")
REASON_MAX_CHARS = 4000
RAW_MAX_CHARS = 20000


class NoVerdict(Exception):
    """The judge answered without [[A]], [[B]] or [[C]]."""


# --- the prompt and the verdict ------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """Prompts and the two models' answers, turn by turn (``answers_x[k]``
    answers ``prompts[k]``)."""

    prompts: list[str]
    answers_a: list[str]
    answers_b: list[str]

    def swapped(self) -> Conversation:
        return Conversation(self.prompts, self.answers_b, self.answers_a)


def _side(prompts: list[str], answers: list[str], label: str) -> str:
    if len(prompts) == 1:
        return answers[0]
    parts = []
    for prompt, answer in zip(prompts, answers, strict=True):
        parts.append(f"### User:\n{prompt}\n\n### Assistant {label}:\n{answer}")
    return "\n\n".join(parts)


def render_prompt(template: str, conv: Conversation) -> str:
    """The template with {question}, {answer_a} and {answer_b} filled in, in
    one pass (a brace in an answer is left as written). A multi-turn
    conversation lists every user turn as the question and each side's
    whole conversation as its answer."""
    if len(conv.prompts) == 1:
        question = conv.prompts[0]
    else:
        question = "\n\n".join(f"Turn {k}: {p}" for k, p in enumerate(conv.prompts, start=1))
    values = {
        "question": question,
        "answer_a": _side(conv.prompts, conv.answers_a, "A"),
        "answer_b": _side(conv.prompts, conv.answers_b, "B"),
    }
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)


def parse_verdict(output: str) -> tuple[str, str]:
    """(verdict as shown: "A", "B" or "C", the reason before it). The last
    verdict in the output counts (a judge may quote the format first).
    Raises NoVerdict when there is none."""
    found = list(VERDICT_RE.finditer(output or ""))
    if not found:
        raise NoVerdict(f"no [[A]], [[B]] or [[C]] in the judge's output: {(output or '')[:200]!r}")
    last = found[-1]
    reason = output[: last.start()].strip() or output[last.end() :].strip()
    return last.group(1), reason[:REASON_MAX_CHARS]


# "A"/"B"/"C" as shown -> the model's side, for the first order and the swapped one.
SHOWN_TO_MODEL = {False: {"A": "a", "B": "b", "C": "tie"}, True: {"A": "b", "B": "a", "C": "tie"}}


def combine(verdict_ab: str, verdict_ba: str) -> str:
    """The two orders' verdicts (mapped to the models): theirs when they
    agree, a tie when they do not."""
    return verdict_ab if verdict_ab == verdict_ba else JudgeVote.Verdict.TIE


# --- conversations ---------------------------------------------------------------------


def battle_conversation(battle: Battle) -> Conversation:
    turns = battle.turns or [{"prompt": battle.prompt, "a": battle.response_a, "b": battle.response_b}]
    return Conversation([t["prompt"] for t in turns], [t["a"] for t in turns], [t["b"] for t in turns])


def pair_conversation(question: Question, model_a_id: int, model_b_id: int, turns: int) -> Conversation:
    answers = dict(
        Answer.objects.filter(question=question, model_id__in=[model_a_id, model_b_id]).values_list("model_id", "turns")
    )
    if model_a_id not in answers or model_b_id not in answers:
        raise ValueError(f"question {question.pk} has no answer of one of the two models")
    prompts = list(question.turns[:turns])
    return Conversation(prompts, list(answers[model_a_id][:turns]), list(answers[model_b_id][:turns]))


def conversation_of(jv: JudgeVote) -> Conversation:
    if jv.battle_id is not None:
        battle = Battle.objects.get(id=jv.battle_id)
        conv = battle_conversation(battle)
        # The judge vote's model_a is the battle's: same orientation.
        return conv
    return pair_conversation(jv.question, jv.model_a_id, jv.model_b_id, jv.turns)


# --- the limits ---------------------------------------------------------------------------


def _today():
    return timezone.now().date()


def spend_call(judge_id: int) -> bool:
    """Count one call against the judge's daily budget, atomically; False
    when today's budget is spent (nothing counted)."""
    today = _today()
    with transaction.atomic():
        judge = Judge.objects.select_for_update().filter(id=judge_id).first()
        if judge is None:
            return False
        used = judge.calls_today if judge.calls_day == today else 0
        if judge.daily_budget and used >= judge.daily_budget:
            return False
        Judge.objects.filter(id=judge_id).update(calls_day=today, calls_today=used + 1)
    return True


def budget_left(judge: Judge) -> int | None:
    """Calls left today (None: no budget)."""
    if not judge.daily_budget:
        return None
    used = judge.calls_today if judge.calls_day == _today() else 0
    return max(0, judge.daily_budget - used)


def _stale_horizon():
    return timezone.now() - timedelta(seconds=settings.ARENA_JUDGE_STALE_SECONDS)


def claim(judge_vote_id: int) -> tuple[str, JudgeVote | None]:
    """Take a pending judging (or one a dead worker left running) if the
    judge is active and under its concurrency cap and budget.

    Returns (state, judge vote): "claimed", or why not: "gone" (no such
    row, or done/failed/running elsewhere), "paused", "busy" (cap), "budget".
    """
    with transaction.atomic():
        row = JudgeVote.objects.filter(id=judge_vote_id).values("judge_id").first()
        if row is None:
            return "gone", None
        # The judge row is the mutex of its cap and budget.
        judge = Judge.objects.select_for_update().get(id=row["judge_id"])
        horizon = _stale_horizon()
        jv = (
            JudgeVote.objects.select_for_update()
            .filter(Q(status=JudgeVote.Status.PENDING) | Q(status=JudgeVote.Status.RUNNING, started_at__lt=horizon))
            .filter(id=judge_vote_id)
            .first()
        )
        if jv is None:
            return "gone", None
        if judge.status != Judge.Status.ACTIVE:
            return "paused", jv
        if budget_left(judge) == 0:
            return "budget", jv
        if judge.max_concurrency:
            running = JudgeVote.objects.filter(
                judge=judge, status=JudgeVote.Status.RUNNING, started_at__gte=horizon
            ).count()
            if running >= judge.max_concurrency:
                return "busy", jv
        jv.status = JudgeVote.Status.RUNNING
        jv.started_at = timezone.now()
        jv.save(update_fields=["status", "started_at"])
        jv.judge = judge
    return "claimed", jv


# --- one judging ----------------------------------------------------------------------------


def provider_for(judge: Judge) -> OpenAICompatible:
    # A judge should answer the same way each time: temperature 0 unless set.
    return OpenAICompatible.from_settings({"temperature": 0.0, "max_tokens": 1024, **(judge.provider_settings or {})})


def complete(provider: OpenAICompatible, messages: list[dict[str, str]]) -> str:
    """One chat completion, not streamed (a judge's answer is read whole):
    ``choices[0].message.content`` of the JSON answer. A server that streams
    anyway (server-sent events) is read as the live models read it. Errors
    are the live models' ProviderError kinds."""
    url = provider.url
    headers = {**provider.headers(), "Accept": "application/json, text/event-stream"}
    body = {**provider.body(messages), "stream": False}
    try:
        with httpx.Client(timeout=provider.http_timeout()) as client:
            resp = client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise provider._http_error(exc) from exc
    if resp.status_code >= 400:
        raise ProviderError("http", f"{url} answered {resp.status_code}: {resp.text[:300]}")
    if resp.headers.get("content-type", "").startswith("text/event-stream"):
        parts, finished = [], False
        for line in resp.text.splitlines():
            deltas, done = provider._parse_line(line)
            parts += deltas
            finished = finished or done
        if not finished:
            raise ProviderError("stream", f"{url}: the stream ended before [DONE]")
        return "".join(parts)
    try:
        data = resp.json()
        choice = data["choices"][0]
        content = (choice.get("message") or {}).get("content")
        if content is None:
            content = choice.get("text")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ProviderError("stream", f"{url} sent no completion: {resp.text[:200]!r}") from exc
    if not isinstance(content, str):
        raise ProviderError("stream", f"{url} sent a completion without text: {resp.text[:200]!r}")
    return content


def ask(judge: Judge, conv: Conversation) -> tuple[str, str, str, float]:
    """One call: (verdict as shown, reason, raw output, latency in seconds).
    Raises ProviderError or NoVerdict."""
    provider = provider_for(judge)
    messages = []
    if judge.system_prompt:
        messages.append({"role": "system", "content": judge.system_prompt})
    messages.append({"role": "user", "content": render_prompt(judge.prompt_template, conv)})
    started = time.perf_counter()
    output = complete(provider, messages)
    latency = time.perf_counter() - started
    shown, reason = parse_verdict(output)
    return shown, reason, output, latency


class BudgetSpent(Exception):
    pass


def _judge_order(judge: Judge, jv: JudgeVote, conv: Conversation, swapped: bool) -> None:
    """Fill one order's verdict, reason, raw output and latency on ``jv``,
    with retries; raises BudgetSpent, or the last error when every attempt failed."""
    suffix = "ba" if swapped else "ab"
    shown_conv = conv.swapped() if swapped else conv
    last: Exception | None = None
    for _attempt in range(1 + max(0, settings.ARENA_JUDGE_RETRIES)):
        if not spend_call(judge.id):
            raise BudgetSpent()
        jv.calls += 1
        try:
            shown, reason, raw, latency = ask(judge, shown_conv)
        except NoVerdict as exc:
            last = exc
            setattr(jv, f"raw_{suffix}", str(exc)[:RAW_MAX_CHARS])
            continue
        except ProviderError as exc:
            last = exc
            continue
        setattr(jv, f"verdict_{suffix}", SHOWN_TO_MODEL[swapped][shown])
        setattr(jv, f"reason_{suffix}", reason)
        setattr(jv, f"raw_{suffix}", raw[:RAW_MAX_CHARS])
        setattr(jv, f"latency_{suffix}", round(latency, 4))
        return
    raise last  # type: ignore[misc]


def _error_text(exc: Exception) -> str:
    return exc.detail if isinstance(exc, ProviderError) else str(exc)


def _record_failure(judge_id: int, error: str) -> None:
    """One more failed judging in a row; pause the judge at the limit."""
    with transaction.atomic():
        judge = Judge.objects.select_for_update().get(id=judge_id)
        judge.consecutive_failures += 1
        fields = ["consecutive_failures"]
        limit = settings.ARENA_AUTO_PAUSE_FAILURES
        if limit and judge.consecutive_failures >= limit and judge.status == Judge.Status.ACTIVE:
            judge.status = Judge.Status.PAUSED
            judge.paused_reason = f"{judge.consecutive_failures} failed judgings in a row; last: {error}"[:300]
            judge.paused_at = timezone.now()
            fields += ["status", "paused_reason", "paused_at"]
            log.warning("judge %s paused: %s", judge.name, judge.paused_reason)
        judge.save(update_fields=fields)


JUDGED_FIELDS = [
    "status", "verdict", "verdict_ab", "verdict_ba", "reason_ab", "reason_ba", "raw_ab", "raw_ba",
    "latency_ab", "latency_ba", "calls", "error", "judged_at",
]  # fmt: skip


def judge_one(judge_vote_id: int) -> str:
    """Claim and judge one judge vote. Returns "done", "failed", or why it
    was left for later ("busy", "budget", "paused") or not touched ("gone")."""
    state, jv = claim(judge_vote_id)
    if state != "claimed":
        return state
    judge = jv.judge
    try:
        conv = conversation_of(jv)
    except (ValueError, Battle.DoesNotExist, Question.DoesNotExist) as exc:
        jv.status, jv.error = JudgeVote.Status.FAILED, f"conversation unavailable: {exc}"
        jv.save(update_fields=JUDGED_FIELDS)
        return "failed"
    try:
        # Network I/O outside any transaction; each order is kept on the row as it completes.
        for swapped in (False, True):
            if getattr(jv, "verdict_ba" if swapped else "verdict_ab"):
                continue  # judged before the budget ran out last time
            _judge_order(judge, jv, conv, swapped)
    except BudgetSpent:
        jv.status, jv.error = JudgeVote.Status.PENDING, "the judge's daily budget is spent; waiting for tomorrow"
        jv.save(update_fields=JUDGED_FIELDS)
        log.info("judge %s: daily budget spent; judging %s waits", judge.name, jv.id)
        return "budget"
    except (ProviderError, NoVerdict) as exc:
        jv.status, jv.error, jv.judged_at = JudgeVote.Status.FAILED, _error_text(exc)[:2000], timezone.now()
        jv.save(update_fields=JUDGED_FIELDS)
        _record_failure(judge.id, _error_text(exc)[:200])
        return "failed"
    jv.verdict = combine(jv.verdict_ab, jv.verdict_ba)
    jv.status, jv.error, jv.judged_at = JudgeVote.Status.DONE, "", timezone.now()
    jv.save(update_fields=JUDGED_FIELDS)
    Judge.objects.filter(id=judge.id, consecutive_failures__gt=0).update(consecutive_failures=0)
    return "done"


# --- what to judge -------------------------------------------------------------------------------


def active_judges():
    return Judge.objects.filter(status=Judge.Status.ACTIVE).order_by("name")


def already_judged_pair(judge_id: int, question_id: int, a: int, b: int, turns: int) -> bool:
    """A judge vote on the same answers (either order) made before anyone voted."""
    return JudgeVote.objects.filter(
        Q(model_a_id=a, model_b_id=b) | Q(model_a_id=b, model_b_id=a),
        judge_id=judge_id, question_id=question_id, turns=turns, battle__isnull=True,
    ).exists()  # fmt: skip


def judgings_for_battle(battle_id: uuid.UUID | str) -> list[int]:
    """A pending judge vote for each active judge on this voted battle
    (existing ones reused), skipping judges that already judged the same
    pre-generated answers before the vote. Returns the ids to judge."""
    battle = Battle.objects.filter(id=battle_id).first()
    if battle is None or battle.status != Battle.Status.VOTED:
        return []
    n_turns = len(battle.turns) or 1
    ids = []
    for judge in active_judges():
        if battle.question_id is not None and already_judged_pair(
            judge.id, battle.question_id, battle.model_a_id, battle.model_b_id, n_turns
        ):
            continue
        try:
            with transaction.atomic():
                jv, _ = JudgeVote.objects.get_or_create(
                    judge=judge, battle=battle,
                    defaults={"question_id": battle.question_id, "turns": n_turns,
                              "model_a_id": battle.model_a_id, "model_b_id": battle.model_b_id},
                )  # fmt: skip
        except IntegrityError:  # a concurrent run created it
            jv = JudgeVote.objects.get(judge=judge, battle=battle)
        if jv.status == JudgeVote.Status.PENDING:
            ids.append(jv.id)
    return ids


def new_pairs(judge: Judge, *, answer_set: str | None = None, limit: int | None = None) -> list[int]:
    """Pending judge votes on pairs of an answer set's answers that this
    judge has not judged yet and nobody voted on: for each question, every
    pair of active models that both answered it (lower model id as A), in
    question order. Returns the new ids (at most ``limit``)."""
    questions = Question.objects.order_by("answer_set_id", "id")
    if answer_set:
        questions = questions.filter(answer_set__name=answer_set)
    active = set(ArenaModel.objects.filter(status=ArenaModel.Status.ACTIVE).values_list("id", flat=True))
    judged = set(
        JudgeVote.objects.filter(judge=judge, battle__isnull=True).values_list(
            "question_id", "model_a_id", "model_b_id"
        )
    )
    voted = set()
    for q, a, b in Battle.objects.filter(status=Battle.Status.VOTED, question__isnull=False).values_list(
        "question_id", "model_a_id", "model_b_id"
    ):
        voted.add((q, min(a, b), max(a, b)))
    created: list[int] = []
    for question in questions.iterator():
        models = sorted(
            m for m in Answer.objects.filter(question=question).values_list("model_id", flat=True) if m in active
        )
        for i, a in enumerate(models):
            for b in models[i + 1 :]:
                key = (question.id, a, b)
                if key in judged or key in voted:
                    continue
                jv, made = JudgeVote.objects.get_or_create(
                    judge=judge, battle=None, question=question, model_a_id=a, model_b_id=b,
                    turns=max(1, len(question.turns)),
                )  # fmt: skip
                if made:
                    created.append(jv.id)
                if limit is not None and len(created) >= limit:
                    return created
    return created


def request_judging(battle_id, checked: bool = False) -> bool:
    """Queue the judging of a just-voted battle, after the vote's commit.

    Never fails or slows the vote beyond one small query: no active judge,
    no message; a sick broker costs at most ARENA_REDIS_TIMEOUT (the same
    guarded publish as the recompute request) and the sweep never sees such
    a battle, which is acceptable: agreement is measured on the battles
    judged. ``checked``: the caller already saw an active judge (the vote
    reads it with the voter's row, so a vote without judges costs nothing
    here). Returns whether a task was queued.
    """
    try:
        if not checked and not Judge.objects.filter(status=Judge.Status.ACTIVE).exists():
            return False
    except Exception:  # noqa: BLE001 - the vote is stored; judging is optional
        log.warning("could not check for active judges; battle %s not queued for judging", battle_id)
        return False
    from arena import redis_guard

    sent = redis_guard.call(
        redis_guard.broker_server(), lambda: _publish_judging(str(battle_id)), lambda: False, "judging publish"
    )
    if not sent:
        log.warning("could not queue judging of battle %s", battle_id)
    return bool(sent)


def _publish_judging(battle_id: str) -> bool:
    from celery import current_app as app  # the project's app (arena/project/celery.py)

    from .judge_tasks import judge_battle

    options = {}
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        timeout = settings.ARENA_REDIS_TIMEOUT
        options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    with app.connection_for_write(transport_options=options) as conn:
        judge_battle.apply_async(args=[battle_id], connection=conn, retry=False)
    return True


def stale_or_waiting(limit: int) -> list[int]:
    """Judge votes the sweep should try again: pending for a minute (their
    task is lost, or met the cap or the budget) or running past the stale
    horizon (a dead worker), of active judges with budget left."""
    judges = [j.id for j in active_judges() if budget_left(j) != 0]
    if not judges:
        return []
    minute_ago = timezone.now() - timedelta(seconds=60)
    return list(
        JudgeVote.objects.filter(judge_id__in=judges)
        .filter(
            Q(status=JudgeVote.Status.PENDING, created_at__lt=minute_ago)
            | Q(status=JudgeVote.Status.RUNNING, started_at__lt=_stale_horizon())
        )
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )

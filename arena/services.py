"""Writes of the battle domain: voters and battles."""

from __future__ import annotations

import random
import secrets
import threading
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from . import sampling, sql, standings
from .leaks import battle_leaks
from .models import Answer, ArenaModel, Battle, Question, Voter


class ArenaError(Exception):
    """A business-rule failure with an HTTP status and a message for the client."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NoBattleAvailable(ArenaError):
    status = 503
    code = "no_battle_available"


def voter_for_session(session) -> Voter:
    """The voter bound to a browser session (created on first use).

    The session holds the voter's key and id, so a request needs no query to
    know its voter: the instance carries id and key, and ``banned`` loads on
    first access (the vote and the open read it under the voter's row lock
    anyway). Sessions from before the id was kept look the key up once.
    """
    key, voter_id = session.get("voter_key"), session.get("voter_id")
    if key and isinstance(voter_id, int):
        return Voter.from_db("default", ["id", "key"], [voter_id, key])
    if key:
        voter = Voter.objects.filter(key=key).first()
        if voter:
            session["voter_id"] = voter.pk
            return voter
    if session.session_key is None:
        session.save()
    voter = Voter.objects.create(key=secrets.token_hex(16))
    session["voter_key"] = voter.key
    session["voter_id"] = voter.pk
    return voter


def voter_for_user(user) -> Voter:
    voter, _ = Voter.objects.get_or_create(key=f"user:{user.pk}", defaults={"user": user})
    return voter


@dataclass(frozen=True)
class Candidates:
    """The active answer-set models that answered anything, which questions
    each answered, and for each question the positions in ``models`` of its
    answerers (only questions at least two of them answered)."""

    models: list[ArenaModel]
    questions: dict[int, set[int]]
    shared: dict[int, list[int]]


# Which questions each model answered, kept per process: reading every
# (model, question) pair on each open cost more than the rest of the open
# (80 × 31 rows for MT-bench). Checked on every open against the table's
# highest id (read backwards from the primary key: no scan), so an import is
# seen on the next open. A deleted answer is seen when it would be shown: the
# open finds it gone, indexes afresh and picks again (_StaleAnswerIndex); a
# deleted or paused model leaves the candidates at once (their rows are read
# on every open). (Counting the rows as well cost PostgreSQL a scan of the
# whole answers table per open.) Derived per set of active models.
_index_lock = threading.Lock()
_answer_index: dict = {"fingerprint": None, "pairs": None, "derived": {}}


def reset_caches() -> None:
    """Forget the per-process caches of the open path (tests: ids repeat
    after a rolled-back transaction on SQLite)."""
    with _index_lock:
        _answer_index.update(fingerprint=None, pairs=None, derived={})
        _candidate_models.update(rows=None, models=None)
    standings.reset()


def _answer_pairs(fingerprint: tuple) -> dict[int, set[int]]:
    with _index_lock:
        if _answer_index["fingerprint"] == fingerprint:
            return _answer_index["pairs"]
    pairs: dict[int, set[int]] = defaultdict(set)
    # Every (model, question) pair: the database reads them from the
    # (question, model) unique index alone, never the answers' text.
    for model_id, question_id in Answer.objects.order_by().values_list("model_id", "question_id"):
        pairs[model_id].add(question_id)
    with _index_lock:
        _answer_index.update(fingerprint=fingerprint, pairs=pairs, derived={})
    return pairs


# The candidate models' columns that sampling and the leak check read, and
# the answer index's fingerprint, in one raw round trip per open: building
# the queryset and 31 model instances through the ORM on every open cost more
# than the rest of the open's reads. The instances are rebuilt from the rows
# only when they change; equal rows mean equal instances.
# In the model's field order, as Model.from_db takes them.
_CANDIDATE_COLUMNS = tuple(
    f.attname
    for f in ArenaModel._meta.concrete_fields
    if f.attname in {"id", "name", "display_name", "organization", "identity_words", "weight"}
)
_candidate_models: dict = {"rows": None, "models": None}


def _candidate_rows() -> tuple:
    models, answers = ArenaModel._meta.db_table, Answer._meta.db_table
    return tuple(
        sql.fetchall(
            f"SELECT {', '.join(_CANDIDATE_COLUMNS)}, "
            f"(SELECT MAX(id) FROM {answers}) "
            f"FROM {models} WHERE status = %s AND weight > 0 AND provider_kind = %s ORDER BY id",
            [ArenaModel.Status.ACTIVE, ArenaModel.Provider.ANSWER_SET],
        )
    )


def _answer_set_candidates() -> Candidates:
    rows = _candidate_rows()
    if not rows:
        return Candidates([], {}, {})
    with _index_lock:
        cached = _candidate_models["models"] if _candidate_models["rows"] == rows else None
    if cached is None:
        read = sql.reader(*((ArenaModel, name) for name in _CANDIDATE_COLUMNS))
        cached = [
            ArenaModel.from_db("default", _CANDIDATE_COLUMNS, read(row[: len(_CANDIDATE_COLUMNS)])) for row in rows
        ]
        cached.sort(key=lambda m: (m.name.lower(), m.name))  # the registry's order (ArenaModel.Meta)
        with _index_lock:
            _candidate_models.update(rows=rows, models=cached)
    models = cached
    fingerprint = (rows[0][-1],)
    pairs = _answer_pairs(fingerprint)
    key = (fingerprint, tuple(m.id for m in models))
    derived = _answer_index["derived"].get(key)
    if derived is None:
        questions = {m.id: pairs[m.id] for m in models if pairs.get(m.id)}
        answering = [m for m in models if m.id in questions]
        answerers: dict[int, list[int]] = defaultdict(list)
        for k, m in enumerate(answering):
            for question_id in questions[m.id]:
                answerers[question_id].append(k)
        shared = {q: ks for q, ks in answerers.items() if len(ks) >= 2}
        derived = (answering, questions, shared)
        with _index_lock:
            if _answer_index["fingerprint"] == fingerprint:
                _answer_index["derived"] = {key: derived}  # one active set at a time
    answering, questions, shared = derived
    # The model instances of this query (current weights and details), in the cached order.
    by_id = {m.id: m for m in models}
    return Candidates([by_id[m.id] for m in answering], questions, shared)


def _voted_battles(model_ids: list[int]) -> Counter:
    """Battles each model was voted on in this arena, counted or excluded
    (one indexed look-up per side, over the given models' battles only)."""
    voted: Counter = Counter()
    if not model_ids:
        return voted
    for side in ("model_a_id", "model_b_id"):
        rows = (
            Battle.objects.filter(status=Battle.Status.VOTED, **{f"{side}__in": model_ids})
            .order_by()
            .values_list(side)
            .annotate(n=Count("*"))  # not "id": COUNT(*) is answered from the index alone
        )
        for model_id, n in rows:
            voted[model_id] += n
    return voted


def sampling_inputs(models: list[ArenaModel]) -> dict:
    """What the configured policy needs: FastChat's weights with the boost
    for models still collecting their first RATINGS_MIN_VOTES battles
    (sampling.boosted_weights), or (active) strengths and pair counts from
    the newest published snapshot."""
    policy = settings.ARENA_SAMPLING_POLICY
    if policy == "uniform":
        return {}
    newest = standings.for_sampling(with_pairs=policy != "weighted")
    if policy == "weighted":
        established = settings.RATINGS_MIN_VOTES
        counted = [int(newest.battles.get(m.id, 0)) if newest else 0 for m in models]
        # The snapshot only knows counted votes: a model whose votes are all
        # excluded (its answers name it) would stay "new" there for ever, so
        # the arena's own voted battles are counted too, excluded or not.
        # Only models the snapshot doesn't already settle are looked up.
        voted = _voted_battles([m.id for m, c in zip(models, counted) if c < established])
        return {
            "weights": sampling.boosted_weights(
                [m.weight for m in models], counted, [voted[m.id] for m in models], established
            )
        }
    if newest is None:
        return {}
    index = {m.id: k for k, m in enumerate(models)}
    theta = [newest.theta.get(m.id, 0.0) for m in models]
    counts: dict[tuple[int, int], float] = {}
    for (a_id, b_id), battles in newest.pair_battles.items():
        a, b = index.get(a_id), index.get(b_id)
        if a is not None and b is not None:
            counts[(min(a, b), max(a, b))] = battles
    return {"theta": theta, "counts": counts}


def _restrict_inputs(inputs: dict, keep: list[int]) -> dict:
    """The policy's inputs for the models at positions ``keep`` (ascending)."""
    out: dict = {}
    if "weights" in inputs:
        out["weights"] = [inputs["weights"][k] for k in keep]
    if "theta" in inputs:
        out["theta"] = [inputs["theta"][k] for k in keep]
    if "counts" in inputs:
        pos = {k: n for n, k in enumerate(keep)}
        out["counts"] = {(pos[a], pos[b]): c for (a, b), c in inputs["counts"].items() if a in pos and b in pos}
    return out


def choose_pair(
    models: list[ArenaModel], rng: random.Random, inputs: dict | None = None
) -> tuple[ArenaModel, ArenaModel]:
    """Two models by ARENA_SAMPLING_POLICY (arena.sampling), sides shuffled.
    ``inputs``: sampling_inputs(models), when the caller already has them."""
    if inputs is None:
        inputs = sampling_inputs(models)
    if settings.ARENA_SAMPLING_POLICY == "weighted" and sum(1 for w in inputs["weights"] if w > 0) < 2:
        raise NoBattleAvailable("fewer than two models have a positive sampling weight")
    i, j = sampling.pick_pair(settings.ARENA_SAMPLING_POLICY, len(models), rng, **inputs)
    pair = [models[i], models[j]]
    rng.shuffle(pair)
    return pair[0], pair[1]


class VoterBanned(ArenaError):
    status = 403
    code = "voter_banned"


class NothingLeftToShow(ArenaError):
    """Every answer this voter could still be shown was written by a model
    already revealed to them on that question: showing one would make the
    vote not anonymous, so no battle is opened."""

    status = 409
    code = "nothing_left_to_show"


def voter_history(voter: Voter) -> tuple[Counter, dict[int, set[int]]]:
    """For each question: how many battles were opened for this voter on it
    (voted, skipped or abandoned), and the models whose answer to it were
    revealed to them (by a vote: the reveal names both models).

    One query over the voter's battles, through the battle's voter index
    (the open reads the same rows with the voter's row lock).
    """
    return _history(
        sql.fetchall(
            f"SELECT question_id, model_a_id, model_b_id, status FROM {Battle._meta.db_table} "
            "WHERE voter_id = %s AND question_id IS NOT NULL",
            [voter.pk],
        )
    )


def _history(rows) -> tuple[Counter, dict[int, set[int]]]:
    """voter_history from the rows (question, model a, model b, status) of the voter's battles."""
    seen: Counter = Counter()
    revealed: dict[int, set[int]] = defaultdict(set)
    for question_id, model_a, model_b, status in rows:
        seen[question_id] += 1
        if status == Battle.Status.VOTED:
            revealed[question_id].update((model_a, model_b))
    return seen, revealed


def next_question(
    models: list[ArenaModel],
    questions: dict[int, set[int]],
    seen: Counter,
    revealed: dict[int, set[int]],
    rng: random.Random,
    shared: dict[int, list[int]] | None = None,
) -> tuple[int, list[int]]:
    """The voter's next question and the positions in ``models`` of the
    models whose answers to it may be shown.

    Rotation: among the questions at least two active models answered and
    whose answers from at least two of them were never revealed to the voter, one of
    those opened for this voter the fewest times. So every such question
    comes once before any comes twice, and so on.
    """
    if shared is None:  # ``shared``: the same, already derived (Candidates.shared)
        answerers: dict[int, list[int]] = defaultdict(list)
        for k, m in enumerate(models):
            for question_id in questions[m.id]:
                answerers[question_id].append(k)
        shared = {q: ks for q, ks in answerers.items() if len(ks) >= 2}
    if not shared:
        raise NoBattleAvailable("no two active models share an answered question; load an answer set first")
    showable = {}
    for q, ks in shared.items():
        known = revealed.get(q)
        hidden = [k for k in ks if models[k].id not in known] if known else ks
        if len(hidden) >= 2:
            showable[q] = hidden
    if not showable:
        raise NothingLeftToShow(
            "you have voted on every answer you could be shown: any further battle would show you an "
            "answer whose model you already know; come back when new models or questions are added"
        )
    fewest = min(seen[q] for q in showable)
    question_id = rng.choice(sorted(q for q in showable if seen[q] == fewest))
    return question_id, showable[question_id]


def conversation(question: Question, answer_a: Answer, answer_b: Answer) -> list[dict]:
    """Every turn both models answered, as {"prompt", "a", "b"}: a question
    with several turns is one conversation (MT-bench's follow-ups)."""
    n = min(len(question.turns), len(answer_a.turns), len(answer_b.turns))
    if n == 0:
        return [{"prompt": question.prompt, "a": answer_a.text, "b": answer_b.text}]
    return [{"prompt": question.turns[t], "a": answer_a.turns[t], "b": answer_b.turns[t]} for t in range(n)]


class _StaleAnswerIndex(Exception):
    """The process's answer index named an answer that is gone."""


def battle_create(*, voter: Voter, client_hash: str = "", rng: random.Random | None = None) -> Battle:
    """Open a battle on the pre-generated answer sets for this voter: the
    next question of their rotation, two models by the sampling policy among
    those whose answers to it the voter doesn't know (docs/VOTES.md#rotation)."""
    rng = rng or random.SystemRandom()
    try:
        return _battle_create(voter, client_hash, rng)
    except _StaleAnswerIndex:  # rebuilt from the table: once more
        return _battle_create(voter, client_hash, rng)


def _battle_create(voter: Voter, client_hash: str, rng: random.Random) -> Battle:
    candidates = _answer_set_candidates()
    models, questions = candidates.models, candidates.questions
    if len(models) < 2:
        raise NoBattleAvailable("no two active models share an answered question; load an answer set first")
    inputs = sampling_inputs(models)
    with sql.atomic_block(refusing=(ArenaError, _StaleAnswerIndex)) as db:
        # One open at a time per voter, so two concurrent opens read each
        # other's battle and keep the rotation. The ban is read here too.
        # The voter's row, locked, with their history in the same round trip
        # (one row per battle; a voter without one still gets their row).
        rows = db.all(
            f"SELECT v.banned, b.question_id, b.model_a_id, b.model_b_id, b.status FROM {Voter._meta.db_table} v "
            f"LEFT JOIN {Battle._meta.db_table} b ON b.voter_id = v.id AND b.question_id IS NOT NULL "
            f"WHERE v.id = %s{db.for_update('v')}",
            [voter.pk],
        )
        if not rows or rows[0][0]:
            raise VoterBanned("this voter may not open battles")
        seen, revealed = _history([row[1:] for row in rows if row[1] is not None])
        question_id, positions = next_question(models, questions, seen, revealed, rng, candidates.shared)
        model_a, model_b = choose_pair([models[k] for k in positions], rng, _restrict_inputs(inputs, positions))
        read = db.reader(None, (Answer, "turns"), (Question, "turns"))
        rows = db.all(
            f"SELECT a.model_id, a.turns, q.turns FROM {Answer._meta.db_table} a "
            f"JOIN {Question._meta.db_table} q ON q.id = a.question_id "
            "WHERE a.question_id = %s AND a.model_id IN (%s, %s)",
            [question_id, model_a.id, model_b.id],
        )
        answers = {
            model_id: (answer_turns, question_turns) for model_id, answer_turns, question_turns in map(read, rows)
        }
        if len(answers) < 2:
            # An answer deleted since this process indexed them: index afresh, pick again.
            reset_caches()
            raise _StaleAnswerIndex
        question = Question(id=question_id, turns=answers[model_a.id][1])
        turns = conversation(question, Answer(turns=answers[model_a.id][0]), Answer(turns=answers[model_b.id][0]))
        return db.insert(
            Battle(
                voter=voter,
                model_a=model_a,
                model_b=model_b,
                question=question,
                prompt=turns[0]["prompt"],
                response_a=turns[0]["a"],
                response_b=turns[0]["b"],
                turns=turns,
                identity_leak=battle_leaks(turns, model_a, model_b),
                client_hash=client_hash,
                ready_at=timezone.now(),
            )
        )


class BattleNotFound(ArenaError):
    """Also for another voter's battle, so battle ids can't be probed."""

    status = 404
    code = "battle_not_found"


class AlreadyVoted(ArenaError):
    status = 409
    code = "already_voted"


class BattleSkipped(ArenaError):
    status = 409
    code = "already_skipped"


class SkipRefused(ArenaError):
    status = 409
    code = "battle_streaming"


def battle_skip(*, battle_id: uuid.UUID | str, voter: Voter) -> Battle:
    """End the voter's unvoted battle without a vote (status skipped).

    Nothing is counted and nothing revealed; the next open gives another
    battle. Raises BattleNotFound (also for another voter's battle),
    AlreadyVoted, BattleSkipped, and SkipRefused while a live turn streams.
    """
    try:
        battle_id = uuid.UUID(str(battle_id))
    except ValueError:
        raise BattleNotFound("no such battle for this voter") from None
    with transaction.atomic():
        battle = Battle.objects.select_for_update().filter(id=battle_id, voter=voter).first()
        if battle is None:
            raise BattleNotFound("no such battle for this voter")
        if battle.status == Battle.Status.VOTED:
            raise AlreadyVoted("this battle already has a vote")
        if battle.status == Battle.Status.SKIPPED:
            raise BattleSkipped("this battle was already skipped")
        stale = timezone.now() - timedelta(seconds=settings.ARENA_PENDING_STALE_SECONDS)
        if battle.streaming_since and battle.streaming_since >= stale:
            raise SkipRefused("the answers are still streaming; skip when they have finished")
        Battle.objects.filter(id=battle.id).update(status=Battle.Status.SKIPPED)
        battle.status = Battle.Status.SKIPPED
    return battle

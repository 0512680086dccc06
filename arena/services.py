"""Writes of the battle domain: voters and battles."""

from __future__ import annotations

import random
import secrets
from collections import defaultdict

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ratings.engine import POINTS_PER_THETA

from . import sampling
from .leaks import battle_leaks
from .models import Answer, ArenaModel, Battle, Voter


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
    """The voter bound to a browser session (created on first use)."""
    key = session.get("voter_key")
    if key:
        voter = Voter.objects.filter(key=key).first()
        if voter:
            return voter
    if session.session_key is None:
        session.save()
    voter = Voter.objects.create(key=secrets.token_hex(16))
    session["voter_key"] = voter.key
    return voter


def voter_for_user(user) -> Voter:
    voter, _ = Voter.objects.get_or_create(key=f"user:{user.pk}", defaults={"user": user})
    return voter


def _answer_set_candidates() -> tuple[list[ArenaModel], dict[int, set[int]]]:
    models = list(
        ArenaModel.objects.filter(
            status=ArenaModel.Status.ACTIVE, weight__gt=0, provider_kind=ArenaModel.Provider.ANSWER_SET
        )
    )
    questions: dict[int, set[int]] = defaultdict(set)
    for model_id, question_id in Answer.objects.filter(model__in=models).values_list("model_id", "question_id"):
        questions[model_id].add(question_id)
    return [m for m in models if questions[m.id]], questions


def sampling_inputs(models: list[ArenaModel]) -> dict:
    """What the configured policy needs from the newest published snapshot:
    FastChat's weights with the boost for models still collecting their
    first RATINGS_MIN_VOTES battles, or (active) strengths and pair counts."""
    from ratings.selectors import joined, newest_snapshot, registry, snapshot_view

    policy = settings.ARENA_SAMPLING_POLICY
    if policy == "uniform":
        return {}
    snapshot = newest_snapshot()
    view = snapshot_view(snapshot, "overall", False, with_pairs=policy != "weighted") if snapshot else None
    # Stored rows name models by id (older snapshots by name): joined() reads both.
    stored = joined(view.rows, registry()) if view is not None else []
    rows = {r["model_id"]: r for r in stored}
    if policy == "weighted":
        established = settings.RATINGS_MIN_VOTES
        return {
            "weights": [
                m.weight * (1.0 if rows.get(m.id, {}).get("battles", 0) >= established else sampling.NEW_MODEL_BOOST)
                for m in models
            ]
        }
    if snapshot is None:
        return {}
    index = {m.id: k for k, m in enumerate(models)}
    theta = [(rows[m.id]["rating"] - 1000.0) / POINTS_PER_THETA if m.id in rows else 0.0 for m in models]
    counts: dict[tuple[int, int], float] = {}
    if view is not None:
        ids = [r["model_id"] for r in stored]
        for i, j, battles, _points in view.pair_table():
            a, b = index.get(ids[int(i)]), index.get(ids[int(j)])
            if a is not None and b is not None:
                counts[(min(a, b), max(a, b))] = float(battles)
    return {"theta": theta, "counts": counts}


def choose_pair(models: list[ArenaModel], rng: random.Random) -> tuple[ArenaModel, ArenaModel]:
    """Two models by ARENA_SAMPLING_POLICY (arena.sampling), sides shuffled."""
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


def battle_create(*, voter: Voter, client_hash: str = "", rng: random.Random | None = None) -> Battle:
    """Open a battle on the pre-generated answer sets for this voter."""
    if voter.banned:
        raise VoterBanned("this voter may not open battles")
    rng = rng or random.SystemRandom()
    models, questions = _answer_set_candidates()
    for _ in range(20):
        if len(models) < 2:
            break
        model_a, model_b = choose_pair(models, rng)
        shared = questions[model_a.id] & questions[model_b.id]
        if not shared:
            continue
        question_id = rng.choice(sorted(shared))
        answers = {
            a.model_id: a
            for a in Answer.objects.filter(question_id=question_id, model__in=[model_a, model_b]).select_related(
                "question"
            )
        }
        question = answers[model_a.id].question
        response_a, response_b = answers[model_a.id].text, answers[model_b.id].text
        turns = [{"prompt": question.prompt, "a": response_a, "b": response_b}]
        with transaction.atomic():
            return Battle.objects.create(
                voter=voter,
                model_a=model_a,
                model_b=model_b,
                question=question,
                prompt=question.prompt,
                response_a=response_a,
                response_b=response_b,
                turns=turns,
                identity_leak=battle_leaks(turns, model_a, model_b),
                client_hash=client_hash,
                ready_at=timezone.now(),
            )
    raise NoBattleAvailable("no two active models share an answered question; load an answer set first")

"""Opening battles: which models meet, on which question, on which side."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.db import IntegrityError, transaction

from arena.models import Answer, ArenaModel, Battle
from arena.services import NoBattleAvailable, battle_create

from .factories import AnswerFactory, AnswerSetFactory, ArenaModelFactory, BattleFactory, QuestionFactory, VoterFactory

pytestmark = pytest.mark.django_db


def open_many(n: int, seed: int = 7) -> list[Battle]:
    voter = VoterFactory()
    rng = random.Random(seed)
    return [battle_create(voter=voter, rng=rng) for _ in range(n)]


def answered_by_all(models: list[ArenaModel], n_questions: int = 3):
    aset = AnswerSetFactory()
    for q in range(n_questions):
        question = QuestionFactory(answer_set=aset, turns=[f"Prompt {q}"])
        for m in models:
            AnswerFactory(question=question, model=m, turns=[f"{m.name} answers prompt {q}"])


def test_battle_uses_a_question_both_models_answered():
    # Each pair of m1, m2, m3 shares exactly one question; loner shares none.
    m1, m2, m3, loner = (ArenaModelFactory(name=n) for n in ("m-one", "m-two", "m-three", "m-loner"))
    aset = AnswerSetFactory()
    q12, q23, q13, q4 = (QuestionFactory(answer_set=aset, turns=[f"prompt {i}"]) for i in range(4))
    for question, models in ((q12, (m1, m2)), (q23, (m2, m3)), (q13, (m1, m3)), (q4, (loner,))):
        for m in models:
            AnswerFactory(question=question, model=m, turns=[f"{m.name} on {question.turns[0]}"])
    shared = {frozenset((m1.id, m2.id)): q12, frozenset((m2.id, m3.id)): q23, frozenset((m1.id, m3.id)): q13}

    battles = open_many(60)

    for b in battles:
        assert b.question == shared[frozenset((b.model_a_id, b.model_b_id))]
        assert b.prompt == b.question.prompt
        assert b.response_a == Answer.objects.get(question=b.question, model=b.model_a).text
        assert b.response_b == Answer.objects.get(question=b.question, model=b.model_b).text
    assert loner.id not in {b.model_a_id for b in battles} | {b.model_b_id for b in battles}
    assert len({frozenset((b.model_a_id, b.model_b_id)) for b in battles}) == 3


def test_a_model_never_meets_itself():
    models = [ArenaModelFactory() for _ in range(3)]
    answered_by_all(models)
    assert all(b.model_a_id != b.model_b_id for b in open_many(150))


def test_database_refuses_a_battle_of_a_model_against_itself():
    m = ArenaModelFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        BattleFactory(model_a=m, model_b=m)


def test_paused_deprecated_and_zero_weight_models_are_never_sampled():
    active = [ArenaModelFactory(name=f"active-{i}") for i in range(3)]
    benched = [
        ArenaModelFactory(name="paused", status=ArenaModel.Status.PAUSED),
        ArenaModelFactory(name="deprecated", status=ArenaModel.Status.DEPRECATED),
        ArenaModelFactory(name="weightless", weight=0.0),
    ]
    answered_by_all(active + benched)

    battles = open_many(200)

    seen = Counter(m for b in battles for m in (b.model_a.name, b.model_b.name))
    assert set(seen) == {m.name for m in active}
    assert len({frozenset((b.model_a_id, b.model_b_id)) for b in battles}) == 3


def test_sides_are_shuffled():
    first, second = ArenaModelFactory(name="first"), ArenaModelFactory(name="second")
    answered_by_all([first, second])

    orders = Counter((b.model_a.name, b.model_b.name) for b in open_many(100))

    assert set(orders) == {("first", "second"), ("second", "first")}
    # Fair shuffling: both orders are common (P(fewer than 25 of 100) < 1e-6 for a fair coin).
    assert min(orders.values()) >= 25


def test_sides_are_shuffled_for_every_pair():
    models = [ArenaModelFactory() for _ in range(4)]
    answered_by_all(models)

    orders = {(b.model_a_id, b.model_b_id) for b in open_many(150)}

    for a in models:
        for b in models:
            if a != b:
                assert (a.id, b.id) in orders


def test_sampling_follows_the_weights():
    heavy, light, other = (
        ArenaModelFactory(name=n, weight=w) for n, w in (("heavy", 8.0), ("light", 1.0), ("other", 1.0))
    )
    answered_by_all([heavy, light, other])

    seen = Counter(m for b in open_many(200) for m in (b.model_a.name, b.model_b.name))

    # heavy is in almost every battle; light and other share the rest.
    assert seen["heavy"] > 170 and seen["light"] > 20 and seen["other"] > 20


def test_no_battle_without_two_models_sharing_a_question():
    m1, m2 = ArenaModelFactory(), ArenaModelFactory()
    aset = AnswerSetFactory()
    AnswerFactory(question=QuestionFactory(answer_set=aset), model=m1)
    AnswerFactory(question=QuestionFactory(answer_set=aset), model=m2)
    with pytest.raises(NoBattleAvailable):
        battle_create(voter=VoterFactory(), rng=random.Random(1))
    assert Battle.objects.count() == 0


def test_battle_is_bound_to_the_voter_who_opened_it():
    models = [ArenaModelFactory() for _ in range(2)]
    answered_by_all(models)
    voter = VoterFactory()
    assert battle_create(voter=voter).voter == voter

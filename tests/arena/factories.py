"""factory_boy factories for the battle domain and votes."""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from arena.models import Answer, AnswerSet, ArenaModel, Battle, Question, Voter
from votes.models import Vote


class ArenaModelFactory(DjangoModelFactory):
    class Meta:
        model = ArenaModel
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"model-{n}")
    display_name = factory.LazyAttribute(lambda o: o.name.replace("-", " ").title())
    organization = factory.Sequence(lambda n: f"Org {n}")


class AnswerSetFactory(DjangoModelFactory):
    class Meta:
        model = AnswerSet

    name = factory.Sequence(lambda n: f"set-{n}")


class QuestionFactory(DjangoModelFactory):
    class Meta:
        model = Question

    answer_set = factory.SubFactory(AnswerSetFactory)
    external_id = factory.Sequence(str)
    category = "writing"
    turns = factory.Sequence(lambda n: [f"Question number {n}?"])


class AnswerFactory(DjangoModelFactory):
    class Meta:
        model = Answer

    question = factory.SubFactory(QuestionFactory)
    model = factory.SubFactory(ArenaModelFactory)
    turns = factory.LazyAttribute(lambda o: [f"Answer to {o.question.external_id} from a model."])


class VoterFactory(DjangoModelFactory):
    class Meta:
        model = Voter

    key = factory.Sequence(lambda n: f"voter-{n:08d}")


class BattleFactory(DjangoModelFactory):
    class Meta:
        model = Battle

    voter = factory.SubFactory(VoterFactory)
    model_a = factory.SubFactory(ArenaModelFactory)
    model_b = factory.SubFactory(ArenaModelFactory)
    prompt = "Which is better?"
    response_a = "first answer"
    response_b = "second answer"


class VoteFactory(DjangoModelFactory):
    """A stored vote on a fresh battle; ``model_a``/``model_b`` follow the battle."""

    class Meta:
        model = Vote

    battle = factory.SubFactory(
        BattleFactory,
        model_a=factory.SelfAttribute("..pair_a"),
        model_b=factory.SelfAttribute("..pair_b"),
        status=Battle.Status.VOTED,
    )
    voter = factory.SelfAttribute("battle.voter")
    model_a = factory.SelfAttribute("battle.model_a")
    model_b = factory.SelfAttribute("battle.model_b")
    winner = Vote.Winner.A

    class Params:
        pair_a = factory.SubFactory(ArenaModelFactory)
        pair_b = factory.SubFactory(ArenaModelFactory)


def answer_set_with(answers: dict[str, dict[str, str]], *, name: str = "custom") -> AnswerSet:
    """An answer set from ``{model_name: {question_text: answer_text}}``."""
    aset = AnswerSetFactory(name=name)
    questions: dict[str, Question] = {}
    for model_name, by_question in answers.items():
        model = ArenaModelFactory(name=model_name)
        for text, answer in by_question.items():
            if text not in questions:
                questions[text] = QuestionFactory(answer_set=aset, turns=[text])
            AnswerFactory(question=questions[text], model=model, turns=[answer])
    return aset

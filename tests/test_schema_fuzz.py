"""Schema fuzzing: schemathesis generates requests for every operation in
/api/schema/ (valid and invalid ones) against a live server with a
published leaderboard and two live models (answering from the local fake
OpenAI-compatible server), anonymously, as a signed-in voter (a non-staff
token) and as staff, and runs every built-in check on each answer: no 5xx,
only documented status codes and content types, bodies that match the
response schema, invalid input refused, valid input accepted, auth enforced
(schemathesis.toml at the root adjusts one check's expected statuses).

Examples are derandomised (the same ones every run) and bounded per
operation, so the test is repeatable and its time bounded.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode

from arena.models import ArenaModel
from ratings.services import recompute_publish
from tests.fake_openai import FakeOpenAI
from tests.services import purge_broker
from votes.models import Vote
from votes.services import text_features

EXAMPLES = 12  # per operation and generation mode: three users stay within ~3 minutes in CI


@pytest.fixture
def provider():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def schema(live_server, demo_models, provider):
    """The live schema, over a database with votes, a published snapshot and live models."""
    from arena.models import Voter

    # No concurrency cap: the fuzzer opens battles it never streams, and with
    # a cap the fifth one is refused (503 no_battle_available, "the models are
    # busy") until the pending ones go stale; that refusal is not judged here.
    for name in ("quartz-9b", "garnet-4b"):
        ArenaModel.objects.create(
            name=name, organization="Fuzz Labs", provider_kind=ArenaModel.Provider.OPENAI, max_concurrency=0,
            provider_settings={"base_url": provider.base_url, "model": name, "timeout": 2},
        )  # fmt: skip

    voter = Voter.objects.create(key="fuzz")
    votes = []
    for k in range(120):
        a, b = demo_models[k % 5], demo_models[(k + 1 + k % 3) % 5]
        features = text_features("def f(): pass" if k % 3 else "Hi", ["**x**"], ["y"])
        votes.append(Vote(voter=voter, model_a=a, model_b=b, winner="ab"[k % 2] if k % 7 else "tie", **features))
    Vote.objects.bulk_create(votes)
    recompute_publish()
    yield schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json")
    purge_broker()  # staff requests queue recomputes; nothing here runs them


def fuzz(schema, headers: dict[str, str]) -> list[str]:
    """Every operation, positive and negative examples; the 5xx failures found."""
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        cases = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @settings(max_examples=2 * EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate, Phase.shrink],
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=cases)
        def check(case) -> None:
            if headers:
                # The credentials are ours, not generated: drop a generated
                # session cookie, and tell the checks which auth was sent.
                case.cookies = {}
            response = case.call(headers=headers, timeout=30)
            # Every built-in check: no 5xx, documented status codes, content
            # types and headers, bodies that match the response schema,
            # invalid input refused, valid input accepted.
            case.validate_response(response, headers=headers)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every operation's failures
            failures.append(f"{operation.label}: {exc}")
    return failures


@pytest.mark.django_db(transaction=True)
def test_every_anonymous_answer_matches_the_schema(schema):
    failures = fuzz(schema, {})
    assert not failures, "\n\n".join(failures)


@pytest.mark.django_db(transaction=True)
def test_every_answer_to_a_signed_in_voter_matches_the_schema(schema, django_user_model):
    user = django_user_model.objects.create_user("fuzz-voter", password="pw")
    token = Token.objects.create(user=user)
    failures = fuzz(schema, {"Authorization": f"Token {token.key}"})
    assert not failures, "\n\n".join(failures)


@pytest.mark.django_db(transaction=True)
def test_every_answer_to_staff_matches_the_schema(schema, django_user_model):
    staff = django_user_model.objects.create_user("fuzz-staff", password="pw", is_staff=True)
    token = Token.objects.create(user=staff)
    failures = fuzz(schema, {"Authorization": f"Token {token.key}"})
    assert not failures, "\n\n".join(failures)

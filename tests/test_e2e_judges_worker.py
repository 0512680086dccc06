"""End to end with a real Celery worker: votes through the API queue the
judging after their commit, the worker asks the (local, fake) judge in both
orders, and publishes the judge's board and agreement beside people's."""

from __future__ import annotations

import pytest
from django.test import Client

from arena.models import Judge
from tests.arena.helpers import open_battle, vote
from tests.fake_judge import FakeJudge
from tests.services import wait_for
from votes.models import JudgeVote, Vote

pytestmark = [pytest.mark.worker]

VOTES = 12


@pytest.fixture
def fake_judge():
    server = FakeJudge().start()
    yield server
    server.stop()


def test_votes_are_judged_by_the_worker_and_the_agreement_is_published(
    demo_models, celery_worker_process, fake_judge, settings
):
    settings.ARENA_RATE_LIMITS = {"vote": {}, "battle": {}}
    Judge.objects.create(name="longer", provider_settings={"base_url": fake_judge.base_url, "model": "longer"})
    voter = Client()
    for _ in range(VOTES):
        battle = open_battle(voter)
        response = vote(voter, battle["id"], "a")
        assert response.status_code == 201 and set(response.json()) == {"winner", "model_a", "model_b"}
    done = wait_for(lambda: JudgeVote.objects.filter(status="done").count() == VOTES, timeout=60)
    assert done, (
        f"judge votes: {list(JudgeVote.objects.values_list('status', 'error'))}; worker log:\n"
        + (celery_worker_process.output()[-3000:])
    )
    assert fake_judge.calls["longer"] == 2 * VOTES
    assert Vote.objects.count() == VOTES  # judge votes never became votes

    def published():
        body = voter.get("/api/v1/judges/").json()["judges"][0]["agreement"]
        return body if body["both_voted"] == VOTES else None

    figures = wait_for(published, timeout=60)
    assert figures, f"no judge board of all {VOTES} votes; worker log:\n{celery_worker_process.output()[-3000:]}"
    # People always chose A; the judge chose the longer answer, so agreement is the share where A was longer.
    longer_a = sum(
        len(jv.battle.response_a) > len(jv.battle.response_b) for jv in JudgeVote.objects.select_related("battle")
    )
    assert figures["three_way_agreement"] == round(longer_a / VOTES, 4)
    board = voter.get("/api/v1/leaderboard/?source=judge:longer").json()
    assert board["source"] == "judge:longer" and board["votes"] == VOTES

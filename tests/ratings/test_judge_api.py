"""Judge boards in the API and on the page: ?source=, /api/v1/judges/, the
judge-rated preliminary rows (cold start), errors."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from arena.models import ArenaModel, Judge
from ratings import judges as judge_boards
from ratings.services import recompute_publish
from tests.arena.factories import ArenaModelFactory, BattleFactory
from votes.models import JudgeVote, Vote

from .test_ratings_api import ORDER, add_votes


@pytest.fixture
def client():
    return APIClient()


def judge_votes(judge: Judge, pairs: list[tuple[ArenaModel, ArenaModel, str]]) -> None:
    for a, b, verdict in pairs:
        battle = BattleFactory(model_a=a, model_b=b, status="voted")
        JudgeVote.objects.create(judge=judge, battle=battle, model_a=a, model_b=b, status="done", verdict=verdict,
                                 verdict_ab=verdict, verdict_ba=verdict)  # fmt: skip


@pytest.fixture
def boards(demo_models):
    """People's board over the demo models, and a judge that ranks them in
    reverse and also rates a newcomer nobody voted on."""
    add_votes(300)
    snap = recompute_publish()
    judge = Judge.objects.create(
        name="rev-judge", provider_settings={"base_url": "http://127.0.0.1:9/v1", "model": "x"}
    )
    models = {m.name: m for m in ArenaModel.objects.filter(name__in=ORDER)}
    newcomer = ArenaModelFactory(name="newcomer-1b", organization="New Org")
    ranked = [models[n] for n in reversed(ORDER)] + [newcomer]  # the judge's order: newcomer weakest
    pairs = []
    for i, better in enumerate(ranked):
        for worse in ranked[i + 1 :]:
            pairs += [(better, worse, "a")] * 4 + [(worse, better, "a")]
    judge_votes(judge, pairs)
    judge_boards.publish_boards()
    return snap, judge, newcomer


def test_default_source_is_people_and_a_judge_board_is_its_own(client, boards):
    human = client.get("/api/v1/leaderboard/").json()
    assert [m["model"] for m in human["models"]] == ORDER
    assert human == client.get("/api/v1/leaderboard/?source=human").json()
    assert "newcomer-1b" not in [m["model"] for m in human["models"]]
    judged = client.get("/api/v1/leaderboard/?source=judge:rev-judge").json()
    assert judged["source"] == "judge:rev-judge"
    assert [m["model"] for m in judged["models"]] == [*reversed(ORDER), "newcomer-1b"]
    assert judged["votes"] == JudgeVote.objects.count() and judged["snapshot"] == boards[0].id
    assert human["votes"] == Vote.objects.count() == 300


def test_a_newcomer_without_human_votes_is_shown_with_its_judge_rating_marked(client, boards):
    body = client.get("/api/v1/leaderboard/").json()
    (row,) = body["judge_preliminary"]
    assert row["model"] == "newcomer-1b" and row["source"] == "judge:rev-judge" and row["judge"] == "rev-judge"
    assert row["human_battles"] == 0 and row["judge_battles"] == 5 * 5  # five opponents, five verdicts each
    assert row["lower"] < row["rating"] < row["upper"]
    page = client.get("/leaderboard/").content.decode()
    assert 'id="judge-preliminary"' in page and "judge rating (rev-judge)" in page


def test_bad_sources_are_clear_errors(client, boards):
    bad = client.get("/api/v1/leaderboard/?source=robots")
    assert bad.status_code == 400 and {"error", "detail"} <= set(bad.json()) and "source" in bad.json()["detail"]
    missing = client.get("/api/v1/leaderboard/?source=judge:nobody")
    assert missing.status_code == 404 and {"error", "detail"} <= set(missing.json())
    assert client.get("/api/v1/leaderboard/?source=").status_code == 400  # the schema's pattern refuses ""
    assert client.get("/leaderboard/?source=").status_code == 200  # a page link with it empty: people's board
    other = client.get("/api/v1/leaderboard/?source=judge:rev-judge&category=coding")
    assert other.status_code == 404
    assert client.get("/leaderboard/?source=robots").status_code == 400
    assert client.get("/leaderboard/?source=judge:nobody").status_code == 404


def test_judges_api_reports_each_judges_figures(client, boards):
    snap, judge, newcomer = boards
    (j,) = client.get("/api/v1/judges/").json()["judges"]
    assert j["name"] == "rev-judge" and j["source"] == "judge:rev-judge" and j["status"] == "active"
    fig = j["agreement"]
    assert fig["battles_judged"] == JudgeVote.objects.count()
    assert fig["both_voted"] == 0 and fig["agreement"] is None and fig["kappa"] is None  # no human vote on its battles
    assert fig["position_bias_rate"] == 0.0
    assert fig["rank_correlation"] == -1.0 and fig["rank_correlation_models"] == 5  # reversed order, over both boards
    assert fig["rank_correlation_method"] == "spearman"


def test_the_page_has_a_source_selector_and_an_agreement_panel(client, boards):
    page = client.get("/leaderboard/").content.decode()
    assert 'data-source="judge:rev-judge"' in page and 'id="judge-agreement"' in page
    judged = client.get("/leaderboard/?source=judge:rev-judge").content.decode()
    assert "Leaderboard: judge rev-judge" in judged and "not from people" in judged


def test_no_judge_no_change(client, demo_models):
    add_votes(100)
    recompute_publish()
    body = client.get("/api/v1/leaderboard/").json()
    assert body["judge_preliminary"] == []
    page = client.get("/leaderboard/").content.decode()
    assert 'id="judge-agreement"' not in page and 'id="sources"' not in page
    assert client.get("/api/v1/judges/").json() == {"judges": []}


def test_before_any_human_vote_the_judges_ratings_are_the_preliminary_table(client, db):
    judge = Judge.objects.create(name="early", provider_settings={"base_url": "http://127.0.0.1:9/v1", "model": "x"})
    one, two = ArenaModelFactory(name="one-7b"), ArenaModelFactory(name="two-7b")
    judge_votes(judge, [(one, two, "a")] * 3 + [(two, one, "a")])
    judge_boards.publish_boards()
    body = client.get("/api/v1/leaderboard/").json()
    assert body["snapshot"] is None and body["models"] == []
    assert [r["model"] for r in body["judge_preliminary"]] == ["one-7b", "two-7b"]
    page = client.get("/leaderboard/").content.decode()
    assert 'id="no-snapshot"' in page and 'id="judge-preliminary"' in page and "judge rating (early)" in page


def test_pausing_the_judge_takes_its_ratings_off_peoples_board(client, boards):
    snap, judge, newcomer = boards
    assert client.get("/api/v1/leaderboard/").json()["judge_preliminary"]
    Judge.objects.filter(id=judge.id).update(status=Judge.Status.PAUSED)
    assert client.get("/api/v1/leaderboard/").json()["judge_preliminary"] == []  # not a stale cached body

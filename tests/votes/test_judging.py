"""Judges against a local fake judge endpoint (tests/fake_judge.py): both
orders, position bias, retries, budget stop, pause, concurrency cap, judge
votes kept out of the human leaderboard, and the agreement figures."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from arena.models import Battle, Judge
from ratings import judges as judge_boards
from ratings.models import JudgeBoard
from ratings.services import recompute_publish
from tests.arena.factories import AnswerFactory, ArenaModelFactory, BattleFactory, QuestionFactory
from tests.fake_judge import FakeJudge
from votes import judge_tasks, judging
from votes.models import JudgeVote, Vote

LONG = "A long and careful answer that explains every step of the way."
SHORT = "Short."


@pytest.fixture(scope="module")
def fake_judge():
    server = FakeJudge().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _judge_settings(settings):
    settings.ARENA_JUDGE_RETRIES = 1
    settings.ARENA_AUTO_PAUSE_FAILURES = 3
    settings.ARENA_JUDGE_SLOT_WAIT_SECONDS = 0


def make_judge(fake_judge, rule: str, **kwargs) -> Judge:
    return Judge.objects.create(
        name=kwargs.pop("name", f"judge-{rule}"),
        provider_settings={"base_url": fake_judge.base_url, "model": rule, "timeout": 10},
        **kwargs,
    )


def voted_battle(winner: str, a=None, b=None, response_a: str = LONG, response_b: str = SHORT) -> Battle:
    a = a or ArenaModelFactory()
    b = b or ArenaModelFactory()
    battle = BattleFactory(
        model_a=a, model_b=b, response_a=response_a, response_b=response_b, status=Battle.Status.VOTED,
        turns=[{"prompt": "Explain it.", "a": response_a, "b": response_b}],
    )  # fmt: skip
    Vote.objects.create(battle=battle, voter=battle.voter, model_a=a, model_b=b, winner=winner)
    return battle


def judge_it(battle: Battle) -> dict:
    return judge_tasks.judge_battle(str(battle.id))


@pytest.mark.django_db
def test_a_consistent_judge_gives_the_same_verdict_in_both_orders(fake_judge):
    judge = make_judge(fake_judge, "longer")
    battle = voted_battle("a")
    before = fake_judge.calls["longer"]
    assert list(judge_it(battle).values()) == ["done"]
    jv = JudgeVote.objects.get(judge=judge, battle=battle)
    assert (jv.verdict, jv.verdict_ab, jv.verdict_ba) == ("a", "a", "a")
    assert jv.raw_ab.endswith("[[A]]") and jv.raw_ba.endswith("[[B]]")  # swapped, the long answer is shown as B
    assert jv.reason_ab and jv.reason_ba and jv.latency_ab > 0 and jv.latency_ba > 0
    assert jv.calls == 2 and fake_judge.calls["longer"] - before == 2
    first, second = [p for m, p in fake_judge.prompts if m == "longer"][-2:]
    assert f"[The Start of Assistant A's Answer]\n{LONG}\n" in first
    assert f"[The Start of Assistant A's Answer]\n{SHORT}\n" in second
    # Running the task again judges nothing twice.
    assert judge_it(battle) == {}
    assert fake_judge.calls["longer"] - before == 2


@pytest.mark.django_db
def test_judges_ask_for_one_plain_completion_and_also_read_a_server_that_streams(fake_judge):
    make_judge(fake_judge, "longer")
    make_judge(fake_judge, "sse-longer")
    battle = voted_battle("a")
    assert judge_it(battle) == {jv.id: "done" for jv in JudgeVote.objects.filter(battle=battle)}
    assert set(JudgeVote.objects.values_list("verdict", flat=True)) == {"a"}
    request = next(b for b in reversed(fake_judge.requests) if b["model"] == "longer")
    assert request["stream"] is False and request["temperature"] == 0.0
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert "[[A]]" in request["messages"][0]["content"]  # the default system prompt asks for the verdict format


@pytest.mark.django_db
def test_a_position_biased_judge_is_caught_and_counted_as_a_tie(fake_judge):
    judge = make_judge(fake_judge, "first")
    judge_it(voted_battle("a"))
    jv = JudgeVote.objects.get(judge=judge)
    assert (jv.verdict_ab, jv.verdict_ba, jv.verdict) == ("a", "b", "tie")
    assert jv.inconsistent
    judge_boards.publish_boards()
    figures = JudgeBoard.objects.get(judge=judge).agreement
    assert figures["position_bias_rate"] == 1.0 and figures["position_bias_battles"] == 1


@pytest.mark.django_db
def test_an_output_without_a_verdict_is_retried_then_failed_never_guessed(fake_judge):
    judge = make_judge(fake_judge, "noverdict")
    before = fake_judge.calls["noverdict"]
    assert list(judge_it(voted_battle("a")).values()) == ["failed"]
    jv = JudgeVote.objects.get(judge=judge)
    assert jv.status == JudgeVote.Status.FAILED and jv.verdict == "" and jv.verdict_ab == ""
    assert "no [[A]], [[B]] or [[C]]" in jv.error
    assert fake_judge.calls["noverdict"] - before == 2  # one attempt and one retry (ARENA_JUDGE_RETRIES=1)
    judge.refresh_from_db()
    assert judge.consecutive_failures == 1 and judge.status == Judge.Status.ACTIVE


@pytest.mark.django_db
def test_a_failed_call_is_retried(fake_judge):
    judge = make_judge(fake_judge, "flaky-1")
    assert list(judge_it(voted_battle("b")).values()) == ["done"]
    jv = JudgeVote.objects.get(judge=judge)
    assert jv.calls == 3 and jv.verdict == "a"


@pytest.mark.django_db
def test_a_judge_that_fails_repeatedly_is_paused(fake_judge, settings):
    settings.ARENA_AUTO_PAUSE_FAILURES = 2
    judge = make_judge(fake_judge, "fail")
    before = fake_judge.calls["fail"]
    states = [list(judge_it(voted_battle("a")).values()) for _ in range(3)]
    assert states == [["failed"], ["failed"], []]  # paused: the third battle is not queued for it
    judge.refresh_from_db()
    assert judge.status == Judge.Status.PAUSED and "2 failed judgings in a row" in judge.paused_reason
    assert judge.paused_at is not None
    assert fake_judge.calls["fail"] - before == 4  # 2 judgings × (1 attempt + 1 retry)
    # A pending judging of a paused judge is left alone.
    jv = JudgeVote.objects.create(judge=judge, battle=voted_battle("a"), model_a=ArenaModelFactory(),
                                  model_b=ArenaModelFactory())  # fmt: skip
    assert judging.judge_one(jv.id) == "paused"
    assert fake_judge.calls["fail"] - before == 4


@pytest.mark.django_db
def test_the_daily_budget_stops_judging_and_the_next_day_resumes_where_it_stopped(fake_judge):
    judge = make_judge(fake_judge, "longer", name="budgeted", daily_budget=3)
    first, second = voted_battle("a"), voted_battle("b")
    before = fake_judge.calls["longer"]
    assert list(judge_it(first).values()) == ["done"]
    assert list(judge_it(second).values()) == ["budget"]
    assert fake_judge.calls["longer"] - before == 3
    jv = JudgeVote.objects.get(judge=judge, battle=second)
    assert jv.status == JudgeVote.Status.PENDING and jv.verdict_ab == "a" and jv.verdict_ba == ""
    assert "budget" in jv.error
    judge.refresh_from_db()
    assert judge.calls_today == 3
    assert judging.judge_one(jv.id) == "budget"  # still today: no call
    assert fake_judge.calls["longer"] - before == 3
    Judge.objects.filter(id=judge.id).update(calls_day=timezone.now().date() - timedelta(days=1))
    assert judging.judge_one(jv.id) == "done"
    assert fake_judge.calls["longer"] - before == 4  # only the order still missing
    jv.refresh_from_db()
    assert (jv.verdict, jv.calls) == ("a", 2)  # a call the budget refused was never made


@pytest.mark.django_db
def test_the_concurrency_cap_is_claimed_under_the_judges_lock(fake_judge):
    judge = make_judge(fake_judge, "longer", name="capped", max_concurrency=1)
    a, b = voted_battle("a"), voted_battle("a")
    ids = [JudgeVote.objects.create(judge=judge, battle=x, model_a=x.model_a, model_b=x.model_b).id for x in (a, b)]
    state, _ = judging.claim(ids[0])
    assert state == "claimed"
    assert judging.claim(ids[1])[0] == "busy"
    assert judging.judge_one(ids[1]) == "busy"
    # A judging left running by a dead worker frees its slot after ARENA_JUDGE_STALE_SECONDS.
    JudgeVote.objects.filter(id=ids[0]).update(started_at=timezone.now() - timedelta(hours=1))
    assert judging.judge_one(ids[1]) == "done"
    assert judging.judge_one(ids[0]) == "done"  # and the stale one is taken again


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_exceed_the_cap(fake_judge, settings):
    if connection.vendor != "postgresql":
        pytest.skip("row locks between threads need PostgreSQL (DATABASE_URL)")
    settings.ARENA_JUDGE_SLOT_WAIT_SECONDS = 30
    judge = make_judge(fake_judge, "slow-0.3", name="slow", max_concurrency=2)
    battles = [voted_battle("a") for _ in range(5)]
    ids = [JudgeVote.objects.create(judge=judge, battle=x, model_a=x.model_a, model_b=x.model_b).id for x in battles]
    results = {}

    def work(jid):
        try:
            results[jid] = judge_tasks._judge_waiting_for_slot(jid)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(jid,)) for jid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results.values()) == ["done"] * 5
    assert fake_judge.max_in_flight["slow-0.3"] <= 2


@pytest.mark.django_db
def test_judge_votes_are_never_counted_in_the_human_leaderboard(fake_judge):
    make_judge(fake_judge, "longer")
    strong, weak = ArenaModelFactory(name="strong"), ArenaModelFactory(name="weak")
    # People prefer strong; the judge (longer answer) always prefers weak's long answers.
    for _ in range(6):
        judge_it(voted_battle("a", strong, weak, response_a=SHORT, response_b=LONG))
    assert JudgeVote.objects.filter(status="done", verdict="b").count() == 6
    snap = recompute_publish()
    assert snap.vote_count == 6 == Vote.objects.count()
    overall = snap.views.get(key="overall", style_control=False)
    rows = {r["model_id"]: r for r in overall.rows}
    assert rows[strong.id]["wins"] == 6 and rows[weak.id]["losses"] == 6
    judge_boards.publish_boards()
    board = JudgeBoard.objects.get()
    jrows = {r["model_id"]: r for r in board.rows}
    assert jrows[weak.id]["wins"] == 6 and jrows[weak.id]["rating"] > jrows[strong.id]["rating"]
    assert board.agreement["agreement"] == 0.0 and board.agreement["rank_correlation"] == -1.0


@pytest.mark.django_db
def test_agreement_figures_equal_a_hand_computation(fake_judge):
    """Eight battles; the "longer" judge's verdict is set by which answer is
    longer, so each (human, judge) pair is chosen by hand: the PAIRS of
    tests/ratings/test_judge_formulas.py, kappa 19/43, agreement 3/5."""
    judge = make_judge(fake_judge, "longer")
    models = [ArenaModelFactory() for _ in range(3)]
    answers = {"a": (LONG, SHORT), "b": (SHORT, LONG), "tie": (SHORT, SHORT)}
    pairs = [("a", "a"), ("a", "a"), ("a", "b"), ("b", "b"), ("b", "tie"), ("tie", "tie"), ("both_bad", "tie"),
             ("b", "a")]  # fmt: skip
    for k, (human, judged) in enumerate(pairs):
        ra, rb = answers[judged]
        judge_it(voted_battle(human, models[k % 3], models[(k + 1) % 3], response_a=ra, response_b=rb))
    assert [v.verdict for v in JudgeVote.objects.order_by("id")] == [j for _, j in pairs]
    recompute_publish()
    assert judge_boards.publish_boards() == 1
    figures = JudgeBoard.objects.get(judge=judge).agreement
    assert figures["battles_judged"] == 8 and figures["both_voted"] == 8
    assert figures["agreement"] == 0.6 and figures["agreement_battles"] == 5
    assert figures["kappa"] == round(19 / 43, 4) and figures["kappa_battles"] == 8
    assert figures["three_way_agreement"] == 0.625
    assert figures["position_bias_rate"] == 0.0
    assert figures["rank_correlation_method"] == "spearman" and figures["rank_correlation_models"] == 3
    # Unchanged inputs publish nothing new.
    assert judge_boards.publish_boards() == 0


@pytest.mark.django_db
def test_judge_battles_judges_new_pairs_before_anyone_votes_and_they_count_for_agreement(fake_judge):
    judge = make_judge(fake_judge, "longer")
    q1, q2 = QuestionFactory(turns=["First?", "And then?"]), QuestionFactory()
    m1, m2, m3 = ArenaModelFactory(), ArenaModelFactory(), ArenaModelFactory()
    for q in (q1, q2):
        AnswerFactory(question=q, model=m1, turns=[LONG, LONG])
        AnswerFactory(question=q, model=m2, turns=[SHORT, SHORT])
    AnswerFactory(question=q2, model=m3, turns=["Medium length answer."])
    call_command("judge_battles", "--judge", judge.name, "--limit", "2", "--inline", stdout=io.StringIO())
    assert JudgeVote.objects.filter(battle__isnull=True).count() == 2
    call_command("judge_battles", "--judge", judge.name, "--answer-set", q2.answer_set.name, "--inline",
                 stdout=io.StringIO())  # fmt: skip
    pre = JudgeVote.objects.filter(battle__isnull=True)
    assert pre.count() == 4 and set(pre.values_list("status", flat=True)) == {"done"}
    two_turn = pre.get(question=q1)
    assert two_turn.turns == 2 and two_turn.verdict == "a"  # m1 (lower id, shown first) wrote the longer answers
    # A person then votes on q1's m2-vs-m1 battle (sides the other way round): not judged again,
    # and the earlier verdict, flipped to the battle's sides, is compared with the vote.
    battle = BattleFactory(question=q1, model_a=m2, model_b=m1, status=Battle.Status.VOTED,
                           turns=[{"prompt": "First?", "a": SHORT, "b": LONG},
                                  {"prompt": "And then?", "a": SHORT, "b": LONG}])  # fmt: skip
    Vote.objects.create(battle=battle, voter=battle.voter, model_a=m2, model_b=m1, winner="b", turns=2)
    assert judge_it(battle) == {}
    assert not JudgeVote.objects.filter(battle=battle).exists()
    judge_boards.publish_boards()
    figures = JudgeBoard.objects.get(judge=judge).agreement
    assert figures["both_voted"] == 1 and figures["agreement"] == 1.0
    # Nothing new to judge: pairs already judged or voted on are skipped.
    assert judging.new_pairs(judge) == []


@pytest.mark.django_db
def test_judge_battles_refuses_unknown_or_paused_judges_and_sets():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no judge 'nobody'"):
        call_command("judge_battles", "--judge", "nobody")
    Judge.objects.create(
        name="resting", status=Judge.Status.PAUSED, provider_settings={"base_url": "http://x", "model": "m"}
    )
    with pytest.raises(CommandError, match="paused"):
        call_command("judge_battles", "--judge", "resting")
    Judge.objects.create(name="ok", provider_settings={"base_url": "http://x", "model": "m"})
    with pytest.raises(CommandError, match="no answer set"):
        call_command("judge_battles", "--judge", "ok", "--answer-set", "missing")
    with pytest.raises(CommandError, match="--limit"):
        call_command("judge_battles", "--judge", "ok", "--limit", "0")


@pytest.mark.django_db
def test_a_vote_queues_its_judging_after_commit_and_reveals_nothing(
    fake_judge, client, demo_models, django_capture_on_commit_callbacks
):
    from arena.celery import app
    from tests.arena.helpers import open_battle, vote

    judge = make_judge(fake_judge, "longer")
    battle = open_battle(client)
    assert not JudgeVote.objects.exists()
    app.conf.task_always_eager = True  # the queued task runs here, through apply_async, as a worker would run it
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = vote(client, battle["id"], "a")
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 201
    assert set(response.json()) == {"winner", "model_a", "model_b"}  # no judge verdict in the voter's answer
    jv = JudgeVote.objects.get(judge=judge, battle_id=battle["id"])
    assert jv.status == "done"
    assert Vote.objects.count() == 1


@pytest.mark.django_db
def test_without_an_active_judge_a_vote_queues_nothing():
    import uuid

    assert judging.request_judging(uuid.uuid4()) is False

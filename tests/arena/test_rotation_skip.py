"""A fair flow for one voter on answer sets (issue #11): multi-turn
conversations, skipping a battle, the question rotation, never an answer
whose model was revealed to the voter, and the end of the new-model boost."""

from __future__ import annotations

import copy
import random

import pytest
from django.conf import settings
from django.test import Client

from arena import sampling
from arena.models import ArenaModel, Battle, Voter
from arena.services import battle_create, sampling_inputs, voter_history
from ratings.models import SnapshotView
from ratings.services import recompute_publish
from votes.models import ExclusionReason, Vote
from votes.services import vote_record

from .factories import AnswerFactory, AnswerSetFactory, ArenaModelFactory, QuestionFactory, VoterFactory
from .helpers import open_battle, vote

pytestmark = pytest.mark.django_db


def arena_of(n_models: int, n_questions: int, *, turns: int = 1, prefix: str = "m") -> tuple[list, list]:
    """Every model answers every question; each answer text names its
    (question, model, turn) so a test can tell who wrote what without asking
    the server. Model names avoid the identity-leak words on purpose."""
    models = [ArenaModelFactory(name=f"{prefix}{k}", display_name="", organization="") for k in range(n_models)]
    aset = AnswerSetFactory()
    questions = []
    for q in range(n_questions):
        question = QuestionFactory(answer_set=aset, turns=[f"Q{q} turn {t + 1}?" for t in range(turns)])
        questions.append(question)
        for k, m in enumerate(models):
            AnswerFactory(question=question, model=m, turns=[f"answer {q}/{k}/{t + 1}" for t in range(turns)])
    return models, questions


def author(text: str) -> tuple[int, int]:
    """(question, model index) of an answer text written by arena_of."""
    _, ids = text.split(" ", 1)
    q, k, _turn = ids.split("/")
    return int(q), int(k)


def limits(settings, action: str, **scopes: str) -> None:
    rates = copy.deepcopy(settings.ARENA_RATE_LIMITS)
    rates[action].update(scopes)
    settings.ARENA_RATE_LIMITS = rates


# --- multi-turn answer sets ---------------------------------------------------


def test_a_two_turn_question_is_shown_as_the_whole_conversation_and_counts_as_multi_turn(client):
    arena_of(2, 1, turns=2)

    body = open_battle(client)

    # Both turns, in order, before any vote; the old single-turn fields repeat turn 1.
    assert [t["prompt"] for t in body["turns"]] == ["Q0 turn 1?", "Q0 turn 2?"]
    for side in ("a", "b"):
        assert [author(t[side]) for t in body["turns"]] == [author(body["responses"][side])] * 2
        assert [t[side].rsplit("/", 1)[1] for t in body["turns"]] == ["1", "2"]
    assert body["prompt"] == "Q0 turn 1?"
    assert body["responses"] == {"a": body["turns"][0]["a"], "b": body["turns"][0]["b"]}
    assert "m0" not in str(body) and "m1" not in str(body)

    assert vote(client, body["id"], "a").status_code == 201
    assert Vote.objects.get().turns == 2
    recompute_publish()
    views = {v.key: v.vote_count for v in SnapshotView.objects.filter(style_control=False)}
    assert views["multi_turn"] == 1 and views["overall"] == 1


def test_the_common_turns_are_shown_when_an_answer_has_fewer_turns_than_the_question():
    a, b = ArenaModelFactory(name="short"), ArenaModelFactory(name="long")
    question = QuestionFactory(turns=["first?", "second?"])
    AnswerFactory(question=question, model=a, turns=["only one"])
    AnswerFactory(question=question, model=b, turns=["one", "two"])

    battle = battle_create(voter=VoterFactory(), rng=random.Random(3))

    assert [t["prompt"] for t in battle.turns] == ["first?"]


def test_an_answer_naming_its_model_in_the_second_turn_is_an_identity_leak():
    honest = ArenaModelFactory(name="quiet", display_name="", organization="", identity_words=["quietmodel"])
    leaky = ArenaModelFactory(name="leaky", display_name="", organization="", identity_words=["leakymodel"])
    question = QuestionFactory(turns=["hello?", "who are you?"])
    AnswerFactory(question=question, model=honest, turns=["hi", "an assistant"])
    AnswerFactory(question=question, model=leaky, turns=["hi there", "I am LeakyModel, nice to meet you"])
    voter = VoterFactory()

    battle = battle_create(voter=voter, rng=random.Random(1))
    stored = vote_record(battle_id=battle.id, voter=voter, winner="tie")

    assert battle.identity_leak
    assert (stored.excluded, stored.exclusion_reason) == (True, ExclusionReason.IDENTITY_LEAK)


# --- skip ---------------------------------------------------------------------


def test_skip_ends_the_battle_unvoted_reveals_nothing_and_the_next_open_is_new(client):
    models, _ = arena_of(3, 4)
    first = open_battle(client)

    response = client.post(f"/api/v1/battles/{first['id']}/skip/", content_type="application/json")

    assert response.status_code == 200, response.content
    assert response.json() == {"id": first["id"], "status": "skipped"}
    for m in models:  # no model identity in any byte
        assert m.name.encode() not in response.content
    assert Battle.objects.get(id=first["id"]).status == Battle.Status.SKIPPED
    assert not Vote.objects.exists()
    second = open_battle(client)
    assert second["id"] != first["id"]
    assert second["prompt"] != first["prompt"]  # the rotation moves on
    # A skipped battle is never counted.
    assert vote(client, second["id"], "a").status_code == 201
    recompute_publish()
    assert SnapshotView.objects.get(key="overall", style_control=False).vote_count == 1


def test_a_skipped_battle_cannot_be_voted_on_or_skipped_again(client):
    arena_of(2, 2)
    battle = open_battle(client)
    assert client.post(f"/api/v1/battles/{battle['id']}/skip/").status_code == 200

    voted = vote(client, battle["id"], "a")
    again = client.post(f"/api/v1/battles/{battle['id']}/skip/")

    assert voted.status_code == 409 and voted.json()["error"] == "already_skipped"
    assert "model" not in voted.json()
    assert again.status_code == 409 and again.json()["error"] == "already_skipped"
    assert not Vote.objects.exists()


def test_a_voted_battle_cannot_be_skipped(client):
    arena_of(2, 2)
    battle = open_battle(client)
    assert vote(client, battle["id"], "b").status_code == 201

    response = client.post(f"/api/v1/battles/{battle['id']}/skip/")

    assert response.status_code == 409 and response.json()["error"] == "already_voted"
    assert Battle.objects.get(id=battle["id"]).status == Battle.Status.VOTED


@pytest.mark.parametrize("whose", ["another session's", "missing", "malformed"])
def test_skipping_a_battle_that_is_not_yours_is_not_found(client, whose):
    arena_of(2, 2)
    other = open_battle(Client())
    battle_id = {
        "another session's": other["id"],
        "missing": "00000000-0000-4000-8000-000000000000",
        "malformed": "not-a-uuid",
    }[whose]

    response = client.post(f"/api/v1/battles/{battle_id}/skip/")

    assert response.status_code == 404
    assert response.json()["error"] in ("battle_not_found", "not_found")
    assert Battle.objects.get(id=other["id"]).status == Battle.Status.READY


def test_skipping_from_a_cookie_session_needs_the_csrf_token():
    arena_of(2, 2)
    browser = Client(enforce_csrf_checks=True)
    browser.get("/arena/")  # sets the CSRF cookie and opens a battle
    battle = Battle.objects.get()

    forged = browser.post(f"/api/v1/battles/{battle.id}/skip/")
    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
    assert Battle.objects.get().status == Battle.Status.READY

    token = browser.cookies["csrftoken"].value
    honest = browser.post(f"/api/v1/battles/{battle.id}/skip/", headers={"X-CSRFToken": token})
    assert honest.status_code == 200
    # The page then shows a new battle.
    browser.get("/arena/")
    assert Battle.objects.count() == 2
    assert Battle.objects.filter(status=Battle.Status.READY).exclude(id=battle.id).count() == 1


def test_skips_are_rate_limited_like_openings(settings, client):
    arena_of(2, 5)
    limits(settings, "battle", voter="5/d")  # one window for the whole test: the three opens count too
    battles = [open_battle(client)["id"] for _ in range(3)]

    codes = [client.post(f"/api/v1/battles/{b}/skip/").status_code for b in battles]

    assert codes == [200, 200, 429]
    assert Battle.objects.get(id=battles[2]).status == Battle.Status.READY


# --- rotation and anonymity ---------------------------------------------------


def test_a_voter_sees_every_shared_question_once_before_any_repeats():
    models, questions = arena_of(4, 6)
    # A question only one active model answered is not shared: never shown.
    lonely = QuestionFactory(turns=["nobody else answered"])
    AnswerFactory(question=lonely, model=models[0])
    voter = VoterFactory()
    rng = random.Random(5)
    shown = []
    for n in range(18):
        battle = battle_create(voter=voter, rng=rng)
        shown.append(battle.question_id)
        if n % 3 == 0:
            vote_record(battle_id=battle.id, voter=voter, winner="a")
        elif n % 3 == 1:
            Battle.objects.filter(id=battle.id).update(status=Battle.Status.SKIPPED)
        # else: abandoned, still counts as seen

    ids = {q.id for q in questions}
    for round_start in range(0, 18, 6):
        assert set(shown[round_start : round_start + 6]) == ids
    assert lonely.id not in shown


def test_no_voter_is_ever_shown_an_answer_whose_model_was_revealed_to_them(client):
    # 5 models × 4 questions, plus a question only 3 of them answered: a
    # question allows ⌊answerers/2⌋ votes before every pair left would show
    # a revealed model, so this voter can vote 4 × 2 + 1 = 9 times (> 5 questions).
    models, questions = arena_of(5, 4)
    extra = QuestionFactory(turns=["Q4 turn 1?"])
    for k in range(3):
        AnswerFactory(question=extra, model=models[k], turns=[f"answer 4/{k}/1"])
    revealed: set[tuple[int, int]] = set()
    votes = 0
    while True:
        response = client.post("/api/v1/battles/", data={}, content_type="application/json")
        if response.status_code != 201:
            break
        body = response.json()
        shown = {author(t[side]) for t in body["turns"] for side in ("a", "b")}
        assert not shown & revealed, f"battle {votes + 1} shows an answer whose model the voter knows"
        # Skip every third: a skip reveals nothing and frees the pair.
        if votes % 3 == 2:
            assert client.post(f"/api/v1/battles/{body['id']}/skip/").status_code == 200
            body = open_battle(client)
            shown = {author(t[side]) for t in body["turns"] for side in ("a", "b")}
            assert not shown & revealed
        reveal = vote(client, body["id"], "tie").json()
        names = {reveal["model_a"], reveal["model_b"]}
        q = author(body["turns"][0]["a"])[0]
        assert names == {f"m{author(body['turns'][0][s])[1]}" for s in ("a", "b")}
        revealed |= {(q, int(name[1:])) for name in names}
        votes += 1
        assert votes <= 9

    assert votes == 9
    assert response.status_code == 409
    assert response.json()["error"] == "nothing_left_to_show"
    _seen, known = voter_history(Voter.objects.get(key=client.session["voter_key"]))
    assert sum(len(v) for v in known.values()) == 18


def test_the_arena_page_says_so_when_nothing_is_left_to_show(client):
    arena_of(2, 1)
    battle = open_battle(client)
    vote(client, battle["id"], "a")

    page = client.get("/arena/")

    assert page.status_code == 409
    assert b"already know" in page.content


def test_opening_reads_the_voters_history_in_a_few_queries(client, django_assert_max_num_queries):
    arena_of(4, 10)
    for _ in range(12):
        vote(client, open_battle(client)["id"], "a")
    with django_assert_max_num_queries(14):
        open_battle(client)


# --- the new-model boost ------------------------------------------------------


def test_boost_lasts_while_either_count_is_under_the_minimum():
    weights = sampling.boosted_weights([1.0, 2.0, 1.0, 1.0], [0, 0, 40, 2], [0, 30, 0, 29], 30)
    assert weights == [sampling.NEW_MODEL_BOOST, 2.0, 1.0, sampling.NEW_MODEL_BOOST]


def test_the_boost_ends_for_a_model_whose_every_vote_is_excluded(settings):
    settings.ARENA_SAMPLING_POLICY = "weighted"
    settings.RATINGS_MIN_VOTES = 4
    honest = [ArenaModelFactory(name=f"plain-{k}", display_name="", organization="") for k in range(3)]
    leaky = ArenaModelFactory(name="leaky", display_name="", organization="", identity_words=["LeakyBot"])
    for q in range(12):
        question = QuestionFactory(turns=[f"question {q}?"])
        for m in honest:
            AnswerFactory(question=question, model=m, turns=[f"an ordinary answer to {q}"])
        AnswerFactory(question=question, model=leaky, turns=[f"As LeakyBot, I answer {q}"])
    models = list(ArenaModel.objects.order_by("id"))
    leaky_at = models.index(leaky)
    assert sampling_inputs(models)["weights"][leaky_at] == sampling.NEW_MODEL_BOOST

    rng = random.Random(11)
    leaky_votes = 0
    voters = [VoterFactory() for _ in range(20)]
    for voter in voters:
        for _ in range(3):
            battle = battle_create(voter=voter, rng=rng)
            vote_record(battle_id=battle.id, voter=voter, winner="a")
            leaky_votes += leaky.id in (battle.model_a_id, battle.model_b_id)
        if leaky_votes >= 4:
            break
    recompute_publish()

    assert leaky_votes >= 4
    assert not Vote.objects.filter(excluded=False).filter(model_a=leaky).exists()
    assert not Vote.objects.filter(excluded=False).filter(model_b=leaky).exists()
    overall = SnapshotView.objects.get(key="overall", style_control=False)
    assert all(r["model_id"] != leaky.id or r["battles"] == 0 for r in overall.rows)  # the snapshot never counts it
    assert sampling_inputs(models)["weights"][leaky_at] == 1.0  # ... yet the boost is over


def test_a_ready_live_battle_can_be_skipped_but_not_while_it_streams(client):
    from django.utils import timezone

    from arena.services import voter_for_session

    a, b = (ArenaModelFactory(provider_kind=ArenaModel.Provider.OPENAI) for _ in range(2))
    client.get("/api/schema/")  # any request: the session exists
    session = client.session
    voter = voter_for_session(session)
    session.save()
    # A signed-cookie session's key is its content: the client takes the new cookie.
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    streaming = Battle.objects.create(
        voter=voter,
        model_a=a,
        model_b=b,
        prompt="hi",
        turns=[{"prompt": "hi", "a": "", "b": ""}],
        status=Battle.Status.PENDING,
        streaming_since=timezone.now(),
    )
    ready = Battle.objects.create(
        voter=voter,
        model_a=a,
        model_b=b,
        prompt="hi",
        turns=[{"prompt": "hi", "a": "x", "b": "y"}],
        status=Battle.Status.READY,
        ready_at=timezone.now(),
    )

    busy = client.post(f"/api/v1/battles/{streaming.id}/skip/")
    done = client.post(f"/api/v1/battles/{ready.id}/skip/")

    assert busy.status_code == 409 and busy.json()["error"] == "battle_streaming"
    assert Battle.objects.get(id=streaming.id).status == Battle.Status.PENDING
    assert done.status_code == 200 and done.json() == {"id": str(ready.id), "status": "skipped"}
    # The live page no longer resumes it.
    assert client.get("/arena/").context["battle_id"] == str(streaming.id)

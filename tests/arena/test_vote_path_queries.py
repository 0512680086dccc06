"""The vote path's database work, counted (issue #14): an open and a vote
through the HTTP API, with a session cookie and CSRF as the page sends them,
each in a fixed, small number of queries whatever the arena's size. Runs on
the configured database (SQLite by default, PostgreSQL in CI): the counts are
the same on both.
"""

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from arena.models import ArenaModel, Voter
from ratings.services import recompute_publish
from tests.services import require_postgres
from votes.models import Vote

pytestmark = pytest.mark.django_db

# An open: the active models' rows with the answer index's fingerprint; the
# newest snapshot; then in one transaction (2 statements: begin and commit,
# or a savepoint's pair inside a test's transaction) the voter's row lock
# with their history, the two answers, and the battle's insert. The session
# is the signed cookie (no query).
OPEN_QUERIES = 7
# A vote: in one transaction the voter's and the battle's row locks with the
# battle, its models' names and whether any judge is active; then on
# PostgreSQL one statement, a data-modifying WITH: the vote's insert, only if
# the daily cap's count allows it, with the battle's status update; on SQLite
# three: the count, the insert, the update.
VOTE_QUERIES = 4 if connection.vendor == "postgresql" else 6


@pytest.fixture
def established_arena(demo_models, settings):
    """The demo arena with a published snapshot in which every model has its
    first battles behind it: no model is "new" (no boost look-up)."""
    settings.RATINGS_MIN_VOTES = 5
    voter = Voter.objects.create(key="crowd")
    rng = random.Random(3)
    Vote.objects.bulk_create(
        [
            Vote(voter=voter, model_a=a, model_b=b, winner=rng.choice("ab"))
            for a, b in (rng.sample(demo_models, 2) for _ in range(20 * len(demo_models)))
        ]
    )
    recompute_publish(force=True)
    return demo_models


def page_session() -> tuple[Client, dict]:
    client = Client(enforce_csrf_checks=True)
    token = client.get("/api/v1/csrf/").json()["csrf_token"]
    return client, {"HTTP_X_CSRFTOKEN": token}


def open_battle(client: Client, headers: dict) -> str:
    response = client.post("/api/v1/battles/", {}, content_type="application/json", **headers)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def cast(client: Client, headers: dict, battle_id: str):
    response = client.post(
        f"/api/v1/battles/{battle_id}/vote/", {"winner": "a"}, content_type="application/json", **headers
    )
    assert response.status_code == 201, response.content
    return response


def counted(fn):
    with CaptureQueriesContext(connection) as queries:
        result = fn()
    return result, [q["sql"] for q in queries.captured_queries]


def test_an_open_and_a_vote_each_take_a_fixed_small_number_of_queries(established_arena, django_assert_num_queries):
    client, headers = page_session()
    cast(client, headers, open_battle(client, headers))  # the session and the voter now exist

    with django_assert_num_queries(OPEN_QUERIES):
        battle_id = open_battle(client, headers)
    with django_assert_num_queries(VOTE_QUERIES):
        cast(client, headers, battle_id)


def test_the_counts_do_not_grow_with_the_voters_history_or_other_voters(established_arena):
    client, headers = page_session()
    others = [page_session() for _ in range(3)]
    for _ in range(6):
        for c, h in [(client, headers), *others]:
            cast(c, h, open_battle(c, h))

    battle_id, open_sql = counted(lambda: open_battle(client, headers))
    _, vote_sql = counted(lambda: cast(client, headers, battle_id))

    assert len(open_sql) == OPEN_QUERIES, "\n".join(open_sql)
    assert len(vote_sql) == VOTE_QUERIES, "\n".join(vote_sql)
    # No statement reads a table whole: every one is bounded by the voter,
    # the battle, the question or the active models.
    assert not any(sql.lstrip().upper().startswith('SELECT "ARENA_ANSWER"."MODEL_ID"') for sql in open_sql), open_sql


def test_the_answer_index_follows_the_registry_and_new_answers_on_the_next_open(established_arena):
    """The answer index is kept per process but checked on every open: a
    paused model is left out at once (no extra query), and a new question is
    indexed on the next open (one extra query, once)."""
    from arena.models import Answer, AnswerSet, Question

    client, headers = page_session()
    cast(client, headers, open_battle(client, headers))
    kept = established_arena[:2]
    ArenaModel.objects.exclude(id__in=[m.id for m in kept]).update(status=ArenaModel.Status.PAUSED)

    battle_id, sql = counted(lambda: open_battle(client, headers))
    assert len(sql) == OPEN_QUERIES
    from arena.models import Battle

    assert {Battle.objects.get(id=battle_id).model_a_id, Battle.objects.get(id=battle_id).model_b_id} == {
        m.id for m in kept
    }

    question = Question.objects.create(
        answer_set=AnswerSet.objects.create(name="extra"), external_id="x1", turns=["A question added later?"]
    )
    for m in kept:
        Answer.objects.create(question=question, model=m, turns=[f"{m.name} answers the new question."])
    _, sql = counted(lambda: open_battle(client, headers))
    assert len(sql) == OPEN_QUERIES + 1, "\n".join(sql)  # the fingerprint moved: the index is read again
    _, sql = counted(lambda: open_battle(client, headers))
    assert len(sql) == OPEN_QUERIES


def test_a_deleted_answer_is_never_shown_and_never_fails_an_open(established_arena):
    """The process's answer index is checked against the answers' highest id
    only: a deleted answer is found gone when it would be shown, and the open
    indexes afresh and picks again, so no open fails and none shows it."""
    from arena.models import Answer, Battle

    client, headers = page_session()
    cast(client, headers, open_battle(client, headers))  # the index is built
    gone_model = established_arena[0]
    Answer.objects.filter(model=gone_model).delete()
    for _ in range(12):
        battle = Battle.objects.get(id=open_battle(client, headers))
        assert gone_model.id not in (battle.model_a_id, battle.model_b_id)
        cast(client, headers, str(battle.id))


def prepared_statements() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("enabled", [True, False])
def test_on_postgresql_the_vote_paths_statements_are_prepared_unless_turned_off(established_arena, settings, enabled):
    """The open's and the vote's fixed statements are prepared on the server
    once per connection (DB_PREPARED_STATEMENTS); with it off (a pooler in
    transaction mode) none is, and the vote works the same."""
    require_postgres()
    settings.DB_PREPARED_STATEMENTS = enabled
    client, headers = page_session()
    before = prepared_statements()
    battle_id = open_battle(client, headers)
    reveal = cast(client, headers, battle_id).json()
    new = prepared_statements() - before

    assert reveal["winner"] == "a" and reveal["model_a"] and reveal["model_b"]
    if enabled:
        assert any("FOR UPDATE OF v, b" in s for s in new), new  # the vote's locking read
        assert any(s.startswith('WITH inserted AS (INSERT INTO "votes_vote"') for s in new), new
        assert any(s.startswith('INSERT INTO "arena_battle"') for s in new), new
        # A refused vote ends its transaction without a ROLLBACK, on which
        # psycopg would forget (and deallocate) every prepared statement.
        again = client.post(
            f"/api/v1/battles/{battle_id}/vote/", {"winner": "a"}, content_type="application/json", **headers
        )
        assert again.status_code == 409
        assert new <= prepared_statements()
    else:
        assert new == set()


def test_the_daily_cap_is_checked_in_the_votes_own_statement_and_writes_nothing_past_it(established_arena, settings):
    """The cap's count rides in the insert (PostgreSQL) or just before it
    (SQLite); at the cap the vote is refused and neither the vote nor the
    battle's status is written."""
    from arena.models import Battle

    settings.ARENA_DAILY_VOTE_CAP = 2
    client, headers = page_session()
    for _ in range(2):
        cast(client, headers, open_battle(client, headers))
    battle_id = open_battle(client, headers)
    votes = Vote.objects.count()

    response = client.post(
        f"/api/v1/battles/{battle_id}/vote/", {"winner": "b"}, content_type="application/json", **headers
    )

    assert response.status_code == 429 and response.json()["error"] == "daily_cap_reached"
    assert Vote.objects.count() == votes
    assert Battle.objects.get(id=battle_id).status == Battle.Status.READY

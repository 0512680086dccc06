"""One vote per battle: the database enforces it, and a race stores exactly one."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client

from arena.models import Battle
from arena.services import ArenaError
from tests.arena.factories import BattleFactory, VoteFactory
from tests.arena.helpers import open_battle
from votes.models import Vote
from votes.services import AlreadyVoted, vote_record


@pytest.mark.django_db
def test_second_vote_row_for_the_same_battle_is_refused_by_the_database():
    first = VoteFactory()
    battle = first.battle

    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.create(
            battle=battle, voter=battle.voter, model_a=battle.model_a, model_b=battle.model_b, winner="b"
        )

    assert list(Vote.objects.filter(battle=battle).values_list("winner", flat=True)) == ["a"]


@pytest.mark.django_db
def test_bulk_insert_cannot_sneak_in_a_second_vote():
    first = VoteFactory()
    b = first.battle
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.bulk_create([Vote(battle=b, voter=b.voter, model_a=b.model_a, model_b=b.model_b, winner="tie")])
    assert Vote.objects.count() == 1


@pytest.mark.django_db
def test_database_refuses_an_unknown_winner():
    first = VoteFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.filter(id=first.id).update(winner="model_a")


@pytest.mark.django_db
def test_votes_without_a_battle_may_repeat():
    # Imported votes have no battle here; the unique index must not treat NULLs as equal.
    b = VoteFactory().battle
    for _ in range(2):
        Vote.objects.create(
            battle=None, voter=b.voter, model_a=b.model_a, model_b=b.model_b, winner="a", source=Vote.Source.IMPORT
        )
    assert Vote.objects.filter(battle=None).count() == 2


def race(n: int, target) -> list:
    """Run ``target()`` in ``n`` threads released at the same moment; each
    thread has its own database connection. Returns what each returned or raised."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = target()
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test inspects
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a voting thread hung"
    return results


@pytest.mark.django_db(transaction=True)
def test_simultaneous_votes_on_one_battle_store_exactly_one():
    battles = [BattleFactory() for _ in range(5)]

    for battle in battles:
        winners = iter(["a", "b", "tie", "both_bad"])
        lock = threading.Lock()

        def cast(battle=battle, lock=lock, winners=winners):
            with lock:
                winner = next(winners)
            return vote_record(battle_id=battle.id, voter=battle.voter, winner=winner)

        results = race(4, cast)

        stored = [r for r in results if isinstance(r, Vote)]
        refused = [r for r in results if isinstance(r, ArenaError)]
        assert len(stored) == 1, results
        assert len(refused) == 3 and all(isinstance(r, AlreadyVoted) for r in refused), results
        assert list(Vote.objects.filter(battle=battle).values_list("winner", flat=True)) == [stored[0].winner]
        assert Battle.objects.get(id=battle.id).status == Battle.Status.VOTED


@pytest.mark.django_db(transaction=True)
def test_simultaneous_http_votes_get_one_201_and_409s(live_server, demo_models):
    import httpx

    owner = Client()
    battle_id = open_battle(owner)["id"]
    owner.get("/arena/")  # the page resumes the open battle and sets the CSRF cookie
    session, token = owner.cookies["sessionid"].value, owner.cookies["csrftoken"].value
    url = f"{live_server.url}/api/v1/battles/{battle_id}/vote/"

    def post():
        with httpx.Client(cookies={"sessionid": session, "csrftoken": token}, timeout=30) as http:
            return http.post(url, json={"winner": "a"}, headers={"X-CSRFToken": token})

    responses = race(3, post)

    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409, 409], [getattr(r, "text", r) for r in responses]
    assert all(r.json()["error"] == "already_voted" for r in responses if r.status_code == 409)
    assert Vote.objects.filter(battle_id=battle_id).count() == 1

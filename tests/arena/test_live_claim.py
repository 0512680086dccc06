"""Claiming a live turn on models without a cap: one statement
(arena.live_sql.quick_claim) with the same rules as the checking path."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from arena import live
from arena.models import ArenaModel, Battle, Voter
from arena.services import BattleNotFound, VoterBanned

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def uncapped():
    for name in ("basalt-3b", "cinder-8b"):
        ArenaModel.objects.create(
            name=name,
            provider_kind=ArenaModel.Provider.OPENAI,
            provider_settings={"base_url": "http://127.0.0.1:9/v1", "model": name, "timeout": 2},
            max_concurrency=0,
        )


def new_battle() -> Battle:
    voter = Voter.objects.create(key=uuid.uuid4().hex)
    return live.live_battle_create(voter=voter, prompt="Why is the sky blue?")


def test_the_quick_claim_marks_the_turn_and_gives_full_instances(uncapped):
    battle = new_battle()
    claimed = live.claim_stream(battle.id, battle.voter)
    assert claimed.status == Battle.Status.PENDING and claimed.streaming_since is not None
    assert claimed.turns == [{"prompt": "Why is the sky blue?", "a": "", "b": ""}]
    assert {claimed.model_a.name, claimed.model_b.name} == {"basalt-3b", "cinder-8b"}
    assert claimed.model_a.provider_settings["timeout"] == 2  # JSON decoded as by the ORM
    stored = Battle.objects.get(id=battle.id)
    assert stored.streaming_since == claimed.streaming_since


def test_the_quick_claim_keeps_every_rule(uncapped):
    battle = new_battle()
    stranger = Voter.objects.create(key=uuid.uuid4().hex)
    with pytest.raises(BattleNotFound):
        live.claim_stream(battle.id, stranger)
    with pytest.raises(BattleNotFound):
        live.claim_stream(uuid.uuid4(), battle.voter)

    live.claim_stream(battle.id, battle.voter)
    with pytest.raises(live.BattleBusy):  # streaming in another tab
        live.claim_stream(battle.id, battle.voter)
    stale = timezone.now() - timedelta(seconds=3600)
    Battle.objects.filter(id=battle.id).update(streaming_since=stale)
    assert live.claim_stream(battle.id, battle.voter).streaming_since > stale  # a dead stream's mark

    Battle.objects.filter(id=battle.id).update(status=Battle.Status.READY, streaming_since=None)
    with pytest.raises(live.TurnRefused):
        live.claim_stream(battle.id, battle.voter)

    Battle.objects.filter(id=battle.id).update(status=Battle.Status.FAILED)  # a failed turn may be retried
    assert live.claim_stream(battle.id, battle.voter).status == Battle.Status.PENDING

    Battle.objects.filter(id=battle.id).update(streaming_since=None)
    ArenaModel.objects.filter(id=battle.model_b_id).update(status=ArenaModel.Status.PAUSED)
    with pytest.raises(live.TurnRefused):
        live.claim_stream(battle.id, battle.voter)
    ArenaModel.objects.filter(id=battle.model_b_id).update(status=ArenaModel.Status.ACTIVE)

    Voter.objects.filter(id=battle.voter_id).update(banned=True)
    with pytest.raises(VoterBanned):
        live.claim_stream(battle.id, Voter.objects.get(id=battle.voter_id))


def _claim_at_once(battle: Battle, tabs: int) -> list:
    from django.db import connections

    results: list = []
    barrier = threading.Barrier(tabs)

    def claim():
        try:
            barrier.wait()
            results.append(live.claim_stream(battle.id, battle.voter))
        except live.BattleBusy as exc:
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim) for _ in range(tabs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_claims_of_one_battle_at_once_give_it_to_one(uncapped):
    for _ in range(5):
        results = _claim_at_once(new_battle(), 4)
        assert sum(isinstance(r, Battle) for r in results) == 1, results
        assert sum(isinstance(r, live.BattleBusy) for r in results) == 3, results


def test_a_voter_banned_since_the_session_began_is_refused(uncapped):
    """The request's voter carries only id and key (arena.services.voter_for_session)."""
    battle = new_battle()
    Voter.objects.filter(id=battle.voter_id).update(banned=True)
    session_voter = Voter.from_db("default", ["id", "key"], [battle.voter_id, battle.voter.key])
    with pytest.raises(VoterBanned):
        live.claim_stream(battle.id, session_voter)
    assert Battle.objects.get(id=battle.id).streaming_since is None

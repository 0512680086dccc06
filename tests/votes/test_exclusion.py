"""Excluded votes stay stored but stop counting."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from ratings.selectors import joined, registry
from ratings.services import recompute_publish, snapshot_is_stale
from tests.arena.factories import ArenaModelFactory, VoteFactory
from votes.models import Vote

pytestmark = pytest.mark.django_db


def exclude(vote: Vote, reason: str) -> None:
    Vote.objects.filter(id=vote.id).update(excluded=True, exclusion_reason=reason, excluded_at=timezone.now())


@pytest.fixture
def votes():
    x, y, z = (ArenaModelFactory(name=n) for n in ("xenon-1", "yarrow-2", "zinc-3"))
    made = []
    for i in range(12):
        made.append(VoteFactory(pair_a=x, pair_b=y, winner="a" if i % 3 else "b"))
        made.append(VoteFactory(pair_a=y, pair_b=z, winner="a" if i % 4 else "tie"))
    return made


def test_excluded_vote_is_not_counted_by_the_next_snapshot(votes):
    before = recompute_publish()
    assert before.vote_count == 24

    exclude(votes[0], "duplicate")
    assert snapshot_is_stale()
    after = recompute_publish()

    assert after.id != before.id
    assert after.vote_count == 23
    assert after.fingerprint != before.fingerprint
    battles = {r["model"]: r["battles"] for r in joined(after.rows, registry())}
    assert battles["xenon-1"] == 11 and battles["yarrow-2"] == 23 and battles["zinc-3"] == 12
    # Still stored, with its reason: votes are never deleted by the system.
    kept = Vote.objects.get(id=votes[0].id)
    assert kept.excluded and kept.exclusion_reason == "duplicate"
    assert Vote.objects.count() == 24


def test_excluding_every_vote_of_a_model_drops_it_from_the_leaderboard(votes):
    for v in votes:
        if v.model_a.name == "xenon-1" or v.model_b.name == "xenon-1":
            exclude(v, "test_account")
    snap = recompute_publish()
    assert snap.vote_count == 12
    assert {r["model"] for r in joined(snap.rows, registry())} == {"yarrow-2", "zinc-3"}


def test_reinstated_vote_counts_again(votes):
    exclude(votes[1], "named")
    assert recompute_publish().vote_count == 23
    Vote.objects.filter(id=votes[1].id).update(excluded=False, exclusion_reason="", excluded_at=None)
    assert snapshot_is_stale()
    assert recompute_publish().vote_count == 24


def test_swapping_which_vote_is_excluded_is_noticed(votes):
    exclude(votes[0], "duplicate")
    recompute_publish()
    # Same count, same newest id: only the set differs.
    Vote.objects.filter(id=votes[0].id).update(excluded=False, exclusion_reason="")
    exclude(votes[2], "duplicate")
    assert snapshot_is_stale()


def test_exclusion_needs_a_reason(votes):
    with pytest.raises(IntegrityError), transaction.atomic():
        Vote.objects.filter(id=votes[0].id).update(excluded=True, exclusion_reason="")
    assert not Vote.objects.get(id=votes[0].id).excluded


def test_leaderboard_api_reports_the_smaller_count(votes, client):
    recompute_publish()
    exclude(votes[5], "bot")
    recompute_publish()
    assert client.get("/api/v1/leaderboard/").json()["votes"] == 23

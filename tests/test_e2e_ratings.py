"""End to end through the API with a real Celery worker: votes in, a
leaderboard computed by the worker out."""

from __future__ import annotations

import pytest
from django.test import Client

from ratings.models import Snapshot
from tests.arena.helpers import open_battle, preferred_winner, vote
from tests.services import wait_for
from votes.models import Vote

pytestmark = [pytest.mark.worker]

# Deliberately not alphabetical, so a leaderboard sorted by name can't pass.
TASTE = ["cobalt-13b", "ember-20b", "atlas-7b", "dune-1b", "breeze-3b"]
VOTES = 300


def leaderboard(client) -> dict:
    response = client.get("/api/v1/leaderboard/")
    assert response.status_code == 200
    return response.json()


def test_votes_through_the_api_produce_the_voters_order_computed_by_the_worker(
    demo_models, celery_worker_process, settings
):
    # One session casts 300 votes in seconds: far past the per-session rate
    # limit, which tests/votes/test_abuse.py covers; here it is off.
    settings.ARENA_RATE_LIMITS = {"vote": {}, "battle": {}}
    assert sorted(TASTE) == [m.name for m in demo_models]
    voter = Client()

    for _ in range(VOTES):
        battle = open_battle(voter)
        response = vote(voter, battle["id"], preferred_winner(battle, TASTE))
        assert response.status_code == 201, response.content

    assert Vote.objects.count() == VOTES
    board = wait_for(lambda: (b := leaderboard(voter))["votes"] == VOTES and b, timeout=30)
    assert board, f"no snapshot of all {VOTES} votes within 30 s; worker log:\n{celery_worker_process.output()[-3000:]}"

    by_rating = sorted(board["models"], key=lambda row: -row["rating"])
    assert [row["model"] for row in by_rating] == TASTE
    assert len({row["rating"] for row in by_rating}) == len(by_rating)
    # Every voter has the same taste, so the first model won every battle and the
    # last lost every one: no finite MLE for them, hence no rank (honest ranks);
    # the ranked ones come first, in the voters' order.
    assert "only_wins" in by_rating[0]["flags"] and "only_losses" in by_rating[-1]["flags"]
    assert all(row["rank"] is None for row in board["models"] if row["preliminary"])
    ranked = [row["model"] for row in board["models"] if not row["preliminary"]]
    assert ranked == [name for name in TASTE if name in ranked]
    assert [row["model"] for row in board["models"]][: len(ranked)] == ranked
    assert sum(row["battles"] for row in board["models"]) == 2 * VOTES
    # Computed by the worker (this process never recomputes), debounced: a
    # burst of votes causes a handful of runs, not one per vote.
    assert "Task ratings.recompute[" in celery_worker_process.output()
    runs = Snapshot.objects.count()
    assert 1 <= runs < 30, f"{runs} snapshots for {VOTES} votes"

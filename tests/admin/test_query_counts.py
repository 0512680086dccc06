"""No N+1 on the list pages: the number of queries does not grow with the
rows shown. (Timings are in bench/bench_admin.py, never asserted here.)"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ratings.models import RecomputeRun
from ratings.services import recompute_publish
from tests.arena.factories import ArenaModelFactory, BattleFactory, VoteFactory
from votes import anomaly, moderation

pytestmark = pytest.mark.django_db

PAGES = [
    "/admin/votes/vote/",
    "/admin/votes/vote/?excluded__exact=1",
    "/admin/votes/vote/?model={model}&winner__exact=a",
    "/admin/votes/voteexclusionevent/",
    "/admin/arena/battle/",
    "/admin/arena/voter/",
    "/admin/arena/arenamodel/",
    "/admin/ratings/snapshot/",
    "/admin/ratings/recomputerun/",
    "/admin/dashboard/",
]


def grow(n: int, user) -> int:
    """Add n more votes (new voters, some flagged), battles, models, snapshots and runs."""
    models = [ArenaModelFactory() for _ in range(3)]
    votes = [VoteFactory(pair_a=models[i % 3], pair_b=models[(i + 1) % 3]) for i in range(n)]
    for _ in range(n // 2):
        BattleFactory(model_a=models[0], model_b=models[1])
    moderation.exclude_votes([v.id for v in votes[: n // 2]], reason="spam", by=user)
    anomaly.flag_voter(votes[-1].voter_id, by=user)
    for _ in range(2):
        snapshot = recompute_publish(force=True)
        RecomputeRun.objects.create(ci="sandwich", requested_by=user, status="done", snapshot=snapshot)
    return models[0].pk


def count(client, url: str) -> int:
    cache.clear()  # measure the cold page: the cached list of exclusion reasons is read again
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


def test_list_pages_do_a_fixed_number_of_queries(operator_client, operator):
    model = grow(4, operator)
    small = {url: count(operator_client, url.format(model=model)) for url in PAGES}
    grow(40, operator)
    large = {url: count(operator_client, url.format(model=model)) for url in PAGES}
    assert large == small


def test_the_votes_changelist_query_count(operator_client, operator, django_assert_num_queries):
    grow(30, operator)
    # user (the session is the signed cookie), groups' permissions (2), the
    # count (PostgreSQL: the planner's estimate first), the page of votes with
    # its joins, the filters' choices (models, reasons unless cached, flagged
    # voters and their voters).
    expected = 9 + (1 if connection.vendor == "postgresql" else 0)
    cache.clear()
    with django_assert_num_queries(expected):
        assert operator_client.get("/admin/votes/vote/").status_code == 200

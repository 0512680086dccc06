"""The changelist paginator: exact counts for small results, PostgreSQL's
estimate (and no tail page links) for big ones."""

from __future__ import annotations

import pytest
from django.db import connection

from arena.admin_tools import EstimatedCountPaginator, planner_rows
from tests.services import require_postgres
from votes.models import Vote

pytestmark = pytest.mark.django_db


def test_small_results_are_counted_exactly(arena_votes):
    paginator = EstimatedCountPaginator(Vote.objects.order_by("-id"), 10)
    assert paginator.count == 30 and not paginator.estimated
    assert list(paginator.get_elided_page_range(1)) == [1, 2, 3]


def test_above_the_threshold_postgresql_estimates(arena_votes, monkeypatch, operator_client):
    require_postgres()
    with connection.cursor() as cur:
        cur.execute("ANALYZE votes_vote")
    assert 20 <= planner_rows(Vote.objects.all()) <= 45
    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 5)

    paginator = EstimatedCountPaginator(Vote.objects.order_by("-id"), 2)
    assert paginator.estimated is False  # not computed yet
    assert 20 <= paginator.count <= 45 and paginator.estimated
    pages = list(paginator.get_elided_page_range(8, on_each_side=2, on_ends=1))
    assert pages == [1, paginator.ELLIPSIS, 6, 7, 8, 9, 10, paginator.ELLIPSIS]
    # A selective filter is estimated small, then counted exactly.
    small = EstimatedCountPaginator(Vote.objects.filter(id=arena_votes[0].id), 2)
    assert small.count == 1 and not small.estimated

    page = operator_client.get("/admin/votes/vote/").content.decode()
    assert "about</span>" in page


def test_the_planner_estimate_never_runs_the_query(arena_votes):
    require_postgres()
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        planner_rows(Vote.objects.filter(winner="a").order_by("-created_at"))
    assert len(ctx.captured_queries) == 1 and ctx.captured_queries[0]["sql"].startswith("EXPLAIN (FORMAT JSON)")
    assert "ORDER BY" not in ctx.captured_queries[0]["sql"]

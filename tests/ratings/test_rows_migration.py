"""ratings/0005_rows_by_model_id on a database holding snapshots from before:
rows that named their model are rewritten to ids, history is backfilled, and
a row naming a model no longer registered keeps its name (and still reads)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("ratings", "0004_rating_points")]
AFTER = [("ratings", "0005_rows_by_model_id")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    # The arena app stays at its newest migration: the historical ArenaModel
    # must have every column the table has (later ones, e.g. url, included).
    targets = [*targets, *executor.loader.graph.leaf_nodes("arena")]
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def _back_to_the_newest_schema():
    """Later tests need every app at its newest migration, including
    ratings migrations added after 0005."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_old_rows_are_rewritten_to_ids_and_history_is_backfilled(settings):
    settings.RATINGS_MIN_VOTES = 10
    apps = migrate(BEFORE)
    ArenaModel = apps.get_model("arena", "ArenaModel")
    Snapshot = apps.get_model("ratings", "Snapshot")
    SnapshotView = apps.get_model("ratings", "SnapshotView")
    a = ArenaModel.objects.create(name="alpha-1", organization="Alpha")
    b = ArenaModel.objects.create(name="beta-2", organization="Beta")
    old = [
        {"model": "alpha-1", "organization": "Alpha (old)", "license": "", "status": "active", "rating": 1050.0,
         "lower": 1000.0, "upper": 1100.0, "rank": 1, "battles": 12, "wins": 8, "losses": 4, "ties": 0, "flags": []},
        {"model": "beta-2", "organization": "Beta", "license": "", "status": "active", "rating": 950.0,
         "lower": 900.0, "upper": 1000.0, "rank": 2, "battles": 3, "wins": 1, "losses": 2, "ties": 0, "flags": []},
        {"model": "gone-0", "organization": "", "license": "", "status": "active", "rating": 900.0,
         "lower": 800.0, "upper": 1000.0, "rank": 2, "battles": 1, "wins": 0, "losses": 1, "ties": 0,
         "flags": ["one_battle"]},
    ]  # fmt: skip
    snap = Snapshot.objects.create(fingerprint="f", rows=old)
    SnapshotView.objects.create(snapshot=snap, key="overall", counts_fingerprint="c", rows=old)

    apps = migrate(AFTER)
    Snapshot = apps.get_model("ratings", "Snapshot")
    SnapshotView = apps.get_model("ratings", "SnapshotView")
    RatingPoint = apps.get_model("ratings", "RatingPoint")
    for rows in (Snapshot.objects.get(id=snap.id).rows, SnapshotView.objects.get(snapshot_id=snap.id).rows):
        assert [r.get("model_id") for r in rows] == [a.id, b.id, None]
        assert "organization" not in rows[0] and rows[2]["model"] == "gone-0"
    points = {p.model_id: p for p in RatingPoint.objects.filter(snapshot_id=snap.id)}
    assert set(points) == {a.id, b.id}
    assert (points[a.id].rank, points[a.id].rating, points[a.id].created_at) == (1, 1050.0, snap.created_at)
    assert points[b.id].rank is None  # 3 battles, under the minimum: preliminary

    # The readers take both forms: today's registry joined, the unregistered row by its own name.
    from ratings import selectors

    view = selectors.snapshot_view(snap.id, "overall", False)
    rows = selectors.leaderboard_rows(view, include_deprecated=True)
    assert [(r["model"], r["organization"], r["rank"]) for r in rows] == [
        ("alpha-1", "Alpha", 1), ("beta-2", "Beta", None), ("gone-0", "", None)]  # fmt: skip
    # gone-0 reads as deprecated (no longer registered): hidden by default
    assert [r["model"] for r in selectors.leaderboard_rows(view)] == ["alpha-1", "beta-2"]

    # and back: the names return
    apps = migrate(BEFORE)
    rows = apps.get_model("ratings", "SnapshotView").objects.get(snapshot_id=snap.id).rows
    assert [r.get("model") for r in rows] == ["alpha-1", "beta-2", "gone-0"] and "model_id" not in rows[0]
    migrate(AFTER)

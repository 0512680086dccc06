"""History from the narrow RatingPoint table, paginated in SQL; retention
of snapshots and idempotency records; the stream-claim index."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from arena.models import ArenaModel, IdempotencyRecord
from ratings import retention, tasks
from ratings.models import RatingPoint, RecomputeRun, Snapshot, SnapshotView
from ratings.services import recompute_publish
from tests.arena.factories import ArenaModelFactory, VoteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(db):
    return ArenaModelFactory(name="left-1"), ArenaModelFactory(name="right-2")


def publish(pair, n: int = 1, winner: str = "a") -> Snapshot:
    for _ in range(n):
        VoteFactory(pair_a=pair[0], pair_b=pair[1], winner=winner)
    return recompute_publish()


def test_a_snapshot_writes_one_point_per_model_and_view_in_its_transaction(pair):
    publish(pair, 3)
    snap = publish(pair, 1, "b")
    views = SnapshotView.objects.filter(snapshot=snap)
    points = RatingPoint.objects.filter(snapshot=snap)
    assert points.count() == sum(len(v.rows) for v in views) > 0
    overall = views.get(key="overall", style_control=False)
    for row in overall.rows:
        p = points.get(key="overall", style_control=False, model_id=row["model_id"])
        assert (p.rating, p.lower, p.upper, p.battles) == (row["rating"], row["lower"], row["upper"], row["battles"])
        assert p.created_at == snap.created_at
        assert p.rank is None  # 4 battles, under RATINGS_MIN_VOTES: preliminary, unranked


def test_history_api_is_paginated_in_sql(client, pair, django_assert_max_num_queries):
    snaps = [publish(pair, 1, "ab"[k % 2]) for k in range(3)]
    url = "/api/v1/leaderboard/history/?model=left-1&limit=2"

    def read(offset=0):
        with CaptureQueriesContext(connection) as ctx:
            body = client.get(f"{url}&offset={offset}").json()
        return body, len(ctx.captured_queries)

    body, few = read()
    assert body["count"] == 3 and [p["snapshot"] for p in body["results"]] == [snaps[2].id, snaps[1].id]
    assert read(2)[0]["results"][0]["snapshot"] == snaps[0].id
    for k in range(12):
        publish(pair, 1, "ab"[k % 2])
    body, many = read()
    assert body["count"] == 15 and len(body["results"]) == 2
    assert many == few  # a COUNT and one page, however many snapshots there are
    # and no query reads a snapshot view's rows or pairs
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    assert not any("ratings_snapshotview" in q["sql"] for q in ctx.captured_queries)


def test_the_model_page_reads_history_without_loading_snapshot_views(client, pair):
    for k in range(4):
        publish(pair, 1, "ab"[k % 2])
    with CaptureQueriesContext(connection) as ctx:
        html = client.get("/leaderboard/models/left-1/").content.decode()
    few = len(ctx.captured_queries)
    assert "(4 snapshots)" in html
    for k in range(8):
        publish(pair, 1, "ab"[k % 2])
    with CaptureQueriesContext(connection) as ctx:
        html = client.get("/leaderboard/models/left-1/").content.decode()
    assert "(12 snapshots)" in html
    assert len(ctx.captured_queries) == few
    # The views read are those of the newest snapshot only.
    newest = Snapshot.objects.latest().id
    for q in ctx.captured_queries:
        if "ratings_snapshotview" in q["sql"] and '"rows"' in q["sql"]:
            assert str(newest) in q["sql"]


def _snapshot_at(when, **extra) -> Snapshot:
    snap = Snapshot.objects.create(fingerprint="x", **extra)
    Snapshot.objects.filter(id=snap.id).update(created_at=when)
    return snap


def test_retention_keeps_recent_snapshots_one_a_day_after_and_the_referenced_ones(settings, pair):
    settings.RATINGS_KEEP_ALL_DAYS = 30
    settings.RETENTION_CHUNK = 2  # several chunks
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    recent = [_snapshot_at(now - timedelta(days=d, hours=h)) for d in (0, 3, 29) for h in (0, 1, 2)]
    # 40 days ago: three in one day; the newest of them stays.
    day40 = [_snapshot_at(now - timedelta(days=40, hours=h)) for h in (3, 2, 1)]
    # 50 days ago: two; the older one is a RecomputeRun's result, so it stays too.
    old_run, day50_newest = _snapshot_at(now - timedelta(days=50, hours=2)), _snapshot_at(now - timedelta(days=50))
    RecomputeRun.objects.create(ci="sandwich", status="done", snapshot=old_run)
    # a view and a rating point on a doomed snapshot go with it
    SnapshotView.objects.create(snapshot=day40[0], key="overall", counts_fingerprint="x")
    RatingPoint.objects.create(snapshot=day40[0], key="overall", model=pair[0], rating=1000, lower=990, upper=1010,
                               created_at=now - timedelta(days=40, hours=3))  # fmt: skip

    assert sorted(retention.doomed_snapshots(now)) == sorted([day40[0].id, day40[1].id])
    done = tasks.prune.apply(kwargs={}).get()  # the beat task, run in-process
    assert done["snapshots"] == 2
    kept = set(Snapshot.objects.values_list("id", flat=True))
    assert kept == {s.id for s in recent} | {day40[2].id, old_run.id, day50_newest.id}
    assert not SnapshotView.objects.filter(snapshot_id=day40[0].id).exists()
    assert not RatingPoint.objects.filter(snapshot_id=day40[0].id).exists()
    assert retention.doomed_snapshots(now) == []  # idempotent: a second run deletes nothing


def test_retention_never_deletes_the_newest_snapshot(settings):
    settings.RATINGS_KEEP_ALL_DAYS = 1
    now = timezone.now()
    old = [_snapshot_at(now - timedelta(days=10, minutes=m)) for m in (5, 0)]
    assert retention.doomed_snapshots(now) == [old[0].id]
    settings.RATINGS_KEEP_ALL_DAYS = 0
    assert retention.prune_snapshots(now) == 1
    assert list(Snapshot.objects.values_list("id", flat=True)) == [old[1].id]


def test_retention_deletes_idempotency_records_after_their_window(settings, pair):
    from tests.arena.factories import VoterFactory

    settings.ARENA_IDEMPOTENCY_RETENTION_HOURS = 6
    settings.RETENTION_CHUNK = 2
    voter = VoterFactory()
    now = timezone.now()
    records = [IdempotencyRecord.objects.create(voter=voter, key=f"k{k}", request_hash="h", status_code=201, body={})
               for k in range(5)]  # fmt: skip
    for k, rec in enumerate(records):
        IdempotencyRecord.objects.filter(id=rec.id).update(created_at=now - timedelta(hours=[0, 2, 5, 7, 9][k]))
    assert retention.prune_idempotency_records(now) == 2
    assert sorted(IdempotencyRecord.objects.values_list("key", flat=True)) == ["k0", "k1", "k2"]


def test_retention_defaults_follow_the_settings(settings):
    assert settings.RATINGS_KEEP_ALL_DAYS == 30
    assert settings.ARENA_IDEMPOTENCY_RETENTION_HOURS == settings.ARENA_VOTE_WINDOW_SECONDS / 3600
    assert settings.CELERY_BEAT_SCHEDULE["retention"]["task"] == "ratings.prune"


def test_stream_claims_have_a_partial_index_on_streaming_since(db):
    with connection.cursor() as cur:
        constraints = connection.introspection.get_constraints(cur, "arena_battle")
    index = constraints["arena_battle_streaming"]
    assert index["index"] and index["columns"] == ["streaming_since"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'arena_battle_streaming'")
            assert "WHERE (streaming_since IS NOT NULL)" in cur.fetchone()[0]
    assert ArenaModel.objects.count() == 0

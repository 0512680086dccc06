"""A worker killed (SIGKILL) in the middle of a recompute publishes nothing:
the API keeps serving the previous snapshot, no partial snapshot is ever
visible, and the next run, on a new worker, completes.

The recompute is made slow with the test hook RATINGS_TEST_PAUSE_SECONDS:
the worker has computed every view and written the snapshot's rows, and
sleeps before the commit. Real PostgreSQL (the advisory lock the dead worker
held must be released by the server), the configured broker, real workers.
"""

from __future__ import annotations

import signal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from arena.locks import RECOMPUTE, advisory_key
from ratings.models import Snapshot, SnapshotView
from ratings.services import recompute_publish
from tests.arena.helpers import open_battle, vote
from tests.services import purge_broker, require_postgres, wait_for
from votes.models import Vote

pytestmark = [pytest.mark.worker]

PAUSE_LOG = b"RATINGS_TEST_PAUSE_SECONDS: holding snapshot uncommitted"


def cast_votes(n: int) -> None:
    """``n`` votes through the API, each from a new visitor (one session is rate limited)."""
    for k in range(n):
        client = APIClient()
        battle = open_battle(client)
        assert vote(client, battle["id"], "ab"[k % 2]).status_code == 201


def advisory_lock_holders() -> int:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = %s",
            [advisory_key(RECOMPUTE)],
        )
        return cur.fetchone()[0]


def leaderboard(client) -> dict:
    response = client.get("/api/v1/leaderboard/")
    assert response.status_code == 200
    return response.json()


def test_a_worker_killed_mid_recompute_publishes_nothing_and_the_next_run_completes(demo_models, start_worker):
    require_postgres()
    cast_votes(30)
    first = recompute_publish()
    assert first.vote_count == 30
    cast_votes(12)
    purge_broker()  # the votes' own debounced tasks: this test queues its runs itself
    staff = APIClient()
    staff.force_authenticate(get_user_model().objects.create_superuser("ops", password="pw"))

    slow = start_worker(env={"RATINGS_TEST_PAUSE_SECONDS": "300"})
    assert staff.post("/api/v1/snapshots/", {"ci": "sandwich"}, format="json").status_code == 202
    assert wait_for(lambda: PAUSE_LOG in slow.log_path.read_bytes(), timeout=60), slow.output()[-3000:]

    # Mid-run: every view is computed and written, but not committed.
    assert advisory_lock_holders() == 1
    assert recompute_publish() is None, "single flight: the worker holds the lock"
    assert list(Snapshot.objects.values_list("id", flat=True)) == [first.id]
    assert set(SnapshotView.objects.values_list("snapshot_id", flat=True)) == {first.id}
    board = leaderboard(APIClient())
    assert (board["snapshot"], board["votes"]) == (first.id, 30)

    slow.proc.send_signal(signal.SIGKILL)  # --pool solo: the worker is this one process
    slow.proc.wait(timeout=30)
    assert slow.proc.returncode == -signal.SIGKILL
    assert wait_for(lambda: advisory_lock_holders() == 0, timeout=30), "the server releases a dead worker's lock"
    assert list(Snapshot.objects.values_list("id", flat=True)) == [first.id]
    assert set(SnapshotView.objects.values_list("snapshot_id", flat=True)) == {first.id}
    board = leaderboard(APIClient())
    assert (board["snapshot"], board["votes"]) == (first.id, 30)

    worker = start_worker()
    assert staff.post("/api/v1/snapshots/", {"ci": "sandwich"}, format="json").status_code == 202
    newest = wait_for(lambda: Snapshot.objects.exclude(id=first.id).first(), timeout=60)
    assert newest is not None, worker.output()[-3000:]
    assert newest.vote_count == Vote.objects.filter(excluded=False).count() == 42
    views = set(SnapshotView.objects.filter(snapshot=newest).values_list("key", "style_control"))
    assert views == {tuple(v) for v in newest.params["views"]} and ("overall", False) in views
    board = leaderboard(APIClient())
    assert (board["snapshot"], board["votes"]) == (newest.id, 42)

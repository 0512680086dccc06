"""Outages never lose a vote: with the worker or Redis down, votes are still
accepted and stored, and the ratings catch up once the service is back."""

from __future__ import annotations

import re
import sys

import pytest
from django.test import Client

from ratings.models import Snapshot
from tests.arena.helpers import open_battle, vote
from tests.services import (
    ChildProcess,
    free_port,
    port_open,
    redis_server_binary,
    unavailable,
    wait_for,
    worker_env,
)
from votes.models import Vote


def broker_state() -> str:
    """For failure messages: what is waiting in the broker, and the debounce flag."""
    from django.core.cache import cache

    from arena.celery import app
    from votes.services import RECOMPUTE_QUEUED_KEY

    with app.connection_for_write() as conn:
        waiting = conn.default_channel.queue_declare(app.conf.task_default_queue, passive=True).message_count
    return f"{waiting} message(s) queued; debounce flag set: {cache.get(RECOMPUTE_QUEUED_KEY) is not None}"


def newest_snapshot_count() -> int | None:
    snap = Snapshot.objects.order_by("-created_at", "-id").first()
    return snap.vote_count if snap else None


@pytest.mark.worker
def test_votes_are_stored_while_the_worker_is_down_and_counted_once_it_starts(demo_models, start_worker):
    voter = Client()
    for winner in ["a", "b", "tie", "a", "both_bad", "b", "a"]:
        battle = open_battle(voter)
        assert vote(voter, battle["id"], winner).status_code == 201

    assert Vote.objects.count() == 7
    assert Snapshot.objects.count() == 0, "nothing may compute while no worker runs"

    worker = start_worker()

    assert wait_for(lambda: newest_snapshot_count() == 7, timeout=30), (broker_state(), worker.output()[-3000:])
    assert voter.get("/api/v1/leaderboard/").json()["votes"] == 7

    # Down again, more votes, back again: caught up again.
    worker.stop()
    for winner in ["a", "b", "a"]:
        battle = open_battle(voter)
        assert vote(voter, battle["id"], winner).status_code == 201
    state = broker_state()
    worker = start_worker()
    assert wait_for(lambda: newest_snapshot_count() == 10, timeout=30), (state, worker.output()[-3000:])


class RedisServer(ChildProcess):
    """A throwaway redis-server on a free port (the machine's Redis is left alone)."""

    def __init__(self, binary: str, port: int, log_path):
        super().__init__(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], log_path
        )
        self.port = port

    def start(self):
        return super().start(port=self.port, timeout=15)

    def crash(self) -> None:
        self.stop(kill=True)
        assert wait_for(lambda: not port_open("127.0.0.1", self.port), timeout=10)


@pytest.mark.redis
@pytest.mark.worker
def test_votes_are_stored_while_redis_is_down_and_ratings_catch_up_when_it_returns(demo_models, start_worker, tmp_path):
    """The web runs in its own process (runserver) because Celery reads its broker
    settings once, at import: the honest way to give the web a Redis that dies is
    to start it with that REDIS_URL."""
    import httpx

    binary = redis_server_binary()
    if binary is None:
        unavailable("redis-server binary not installed (apt-get install redis-server)")
    redis_port, web_port = free_port(), free_port()
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "REDIS_CACHE_URL": f"redis://127.0.0.1:{redis_port}/1",
        "ARENA_VAR_DIR": str(tmp_path / "var"),
        "RATINGS_PERIODIC_SECONDS": "1",
    }
    children: list = []

    def run(child: ChildProcess, **ready) -> ChildProcess:
        children.append(child)
        return child.start(**ready)

    try:
        redis = run(RedisServer(binary, redis_port, tmp_path / "redis.log"))
        web = run(
            ChildProcess(
                [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{web_port}"],
                tmp_path / "web.log",
                worker_env(env),
            ),
            port=web_port,
        )
        http = httpx.Client(base_url=f"http://127.0.0.1:{web_port}", timeout=30)
        http.get("/arena/").raise_for_status()  # a browser's session: cookie and CSRF token
        http.headers["X-CSRFToken"] = http.cookies["csrftoken"]
        battles = []
        for _ in range(4):
            response = http.post("/api/v1/battles/", json={})
            assert response.status_code == 201, response.text
            battles.append(response.json()["id"])

        redis.crash()

        for battle_id, winner in zip(battles, ["a", "b", "tie", "a"], strict=True):
            response = http.post(f"/api/v1/battles/{battle_id}/vote/", json={"winner": winner})
            assert response.status_code == 201, (response.text, web.output()[-2000:])
            assert set(response.json()) >= {"winner", "model_a", "model_b"}
        # A battle can still be opened and voted on with Redis gone.
        response = http.post("/api/v1/battles/", json={})
        assert response.status_code == 201
        assert http.post(f"/api/v1/battles/{response.json()['id']}/vote/", json={"winner": "b"}).status_code == 201

        assert Vote.objects.count() == 5
        assert Snapshot.objects.count() == 0
        assert "could not queue a ratings recompute" in web.output()

        # Redis comes back (empty: the failed sends queued nothing); a worker and
        # beat start, and beat's periodic recompute_if_stale catches up.
        run(RedisServer(binary, redis_port, tmp_path / "redis-2.log"))
        worker = start_worker(env=env)
        children.append(worker)  # stopped before its Redis, not after
        beat = run(
            ChildProcess(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "arena",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--schedule",
                    str(tmp_path / "beat-schedule"),
                ],
                tmp_path / "beat.log",
                worker_env(env),
            ),
            ready_text=b"beat: Starting",
        )

        caught_up = wait_for(lambda: newest_snapshot_count() == 5, timeout=30)
        assert caught_up, f"worker:\n{worker.output()[-2000:]}\nbeat:\n{beat.output()[-2000:]}"
        assert re.search(r"Task ratings\.recompute_if_stale\[[^]]+\] succeeded", worker.output())
        assert http.get("/api/v1/leaderboard/").json()["votes"] == 5
    finally:
        for child in reversed(children):
            child.stop()

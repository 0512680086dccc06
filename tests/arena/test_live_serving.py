"""How the web process serves live streams under ASGI (arena/project/asgi.py,
arena/redis_cache.py, the PostgreSQL pool in settings): what a waiting stream
holds, and what every request shares. Real uvicorn, real PostgreSQL and
Redis, a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import threading
import time

import pytest

from arena import live
from tests.fake_openai import FakeOpenAI
from tests.services import require_postgres, require_redis, wait_for

from .test_live import HttpVoter, live_model, sse_events

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True, scope="module")
def _close_stream_db_threads():
    yield
    live.reset_db_pool()


@pytest.fixture
def provider():
    server = FakeOpenAI().start()
    yield server
    server.stop()


def test_streams_waiting_on_their_providers_hold_no_database_connection(provider, asgi_server):
    """More streams wait on slow answers than the pool has connections, and
    another voter can still open a battle at once: a stream gives its
    connection back before its first byte, not when its answers end."""
    require_postgres()
    from django.db import connection

    from arena.models import Battle

    # More than the pool has connections when it is on (DB_POOL_MAX_SIZE).
    pool_size = connection.pool.max_size if connection.pool is not None else 10
    waiting = pool_size + 2
    for name in ("basalt-3b", "cinder-8b"):
        live_model(provider, name, max_concurrency=0)
        provider.script(f"{name}-endpoint-id", text="one two three four five six", delay=1.0)
    voters = [HttpVoter(asgi_server.url) for _ in range(waiting + 1)]
    battles = [voter.open()["id"] for voter in voters[:waiting]]

    results: list = [None] * waiting

    def stream(i: int) -> None:
        try:
            results[i] = voters[i].stream(battles[i])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertions below
            results[i] = exc

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(waiting)]
    for thread in threads:
        thread.start()
        # Not all in one instant: the fake provider's accept queue is 5 long.
        time.sleep(0.1)
    try:
        # More streams than the pool has connections are waiting on their providers
        # now. With a connection held per stream the pool would be empty and the
        # opening below would wait DB_POOL_TIMEOUT.
        more_than_the_pool = 2 * (pool_size + 1)
        assert wait_for(lambda: provider.in_flight >= more_than_the_pool, timeout=20), (
            provider.max_in_flight,
            list(Battle.objects.exclude(failure="").values_list("failure", flat=True)),
        )
        late = voters[waiting].http.post(
            "/api/v1/battles/", json={"prompt": "Still room?"}, headers=voters[waiting].headers, timeout=5
        )
        assert late.status_code == 201, late.text
    finally:
        for thread in threads:
            thread.join(timeout=60)
    failures = list(Battle.objects.exclude(failure="").values_list("failure", flat=True))
    for events in results:
        assert isinstance(events, list) and events[-1] == ("end", {"status": "ready", "turn": 1, "turns_left": 4}), (
            failures
        )


def test_a_streams_writes_are_whole_events_and_exactly_the_providers_text(provider, asgi_server):
    """Pieces that arrive together go out in one write (arena.live.stream_turn):
    each write still holds whole events, and the deltas add up to exactly the
    provider's text."""
    for name in ("slate-2b", "ochre-5b"):
        live_model(provider, name)
        provider.script(f"{name}-endpoint-id", text="alpha beta gamma", delay=0.05)
    voter = HttpVoter(asgi_server.url)
    battle_id = voter.open()["id"]
    with voter.http.stream("POST", f"/api/v1/battles/{battle_id}/stream/", headers=voter.headers) as response:
        assert response.status_code == 200
        writes = list(response.iter_raw())
    raw = b"".join(writes)
    assert all(write.endswith(b"\n\n") for write in writes)
    events = sse_events(raw)
    text = {"a": "", "b": ""}
    for name, data in events:
        if name == "delta":
            text[data["side"]] += data["text"]
    assert text == {"a": "alpha beta gamma", "b": "alpha beta gamma"}
    assert [name for name, _ in events].count("side_done") == 2 and events[-1][0] == "end"


def test_every_request_shares_one_redis_pool():
    """Django makes a cache object per request context; without the shared
    pool each made a new Redis connection (and redis-py read its package
    metadata for it)."""
    require_redis()
    from django.core.cache import caches

    pools = []

    def pool_in_a_fresh_context():
        pools.append(caches["default"]._cache._get_connection_pool(True))

    for _ in range(3):
        thread = threading.Thread(target=pool_in_a_fresh_context)
        thread.start()
        thread.join()
    assert len({id(pool) for pool in pools}) == 1
    caches["default"].set("arena:test:shared-pool", 1, 5)
    assert caches["default"].get("arena:test:shared-pool") == 1

"""``GET /healthz``: is this deployment able to take votes and publish ratings?

Four checks, run at once, each bounded by ``ARENA_HEALTH_TIMEOUT_SECONDS`` in
total (a frozen Redis or PostgreSQL makes the probe fail fast, never hang):

- ``database``: ``SELECT 1`` on a fresh connection.
- ``broker``: Redis ``PING`` and the queue's length in one pipelined round trip
  (the filesystem broker: its folder is writable, and its message files).
- ``worker``: the newest heartbeat any Celery worker wrote to the shared cache.
  A thread in each worker's main process writes it every
  ``ARENA_WORKER_HEARTBEAT_SECONDS`` and removes it on a warm shutdown, so the
  probe costs one cache read instead of a broadcast ``control.ping`` that
  waits for replies; it fails after three missed beats.
- ``snapshot``: the age of the newest snapshot, reported; it fails only when a
  counted vote has waited more than ``ARENA_HEALTH_SNAPSHOT_MAX_LAG_SECONDS``
  for one (an idle arena publishes nothing and is healthy).

Error texts name only the exception's type: the probe is public, and
hostnames or addresses in driver messages are not.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime

from django.conf import settings

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "arena:worker-heartbeats"
MISSED_BEATS = 3

# --- the worker side: heartbeats -----------------------------------------------

_beating: dict[str, threading.Event] = {}


def _write_heartbeat(hostname: str, *, alive: bool) -> None:
    """Record (or drop) this worker's beat in one cache entry shared by every
    worker, {hostname: unix time}. Two workers writing at once can drop each
    other's beat for one period; a beat counts for three periods, so that
    costs nothing."""
    from django.core.cache import cache

    period = settings.ARENA_WORKER_HEARTBEAT_SECONDS
    beats = cache.get(HEARTBEAT_KEY) or {}
    now = time.time()
    beats = {h: t for h, t in beats.items() if now - t < MISSED_BEATS * period and h != hostname}
    if alive:
        beats[hostname] = now
    cache.set(HEARTBEAT_KEY, beats, timeout=int(MISSED_BEATS * period) + 60)


def start_heartbeat(hostname: str) -> None:
    """Beat from a daemon thread until stop_heartbeat(hostname). Idempotent."""
    if hostname in _beating:
        return
    stop = _beating[hostname] = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            try:
                _write_heartbeat(hostname, alive=True)
            except Exception as exc:  # noqa: BLE001 - a cache outage must not kill the worker
                log.warning("worker heartbeat not written: %s", type(exc).__name__)
            stop.wait(settings.ARENA_WORKER_HEARTBEAT_SECONDS)

    threading.Thread(target=beat, name="arena-heartbeat", daemon=True).start()


def stop_heartbeat(hostname: str) -> None:
    stop = _beating.pop(hostname, None)
    if stop is None:
        return
    stop.set()
    try:
        _write_heartbeat(hostname, alive=False)
    except Exception as exc:  # noqa: BLE001 - a shutdown never fails on a sick cache
        log.warning("worker heartbeat not removed: %s", type(exc).__name__)


def connect_worker_signals() -> None:
    """Called from arena/project/celery.py: beat while a worker runs."""
    from celery.signals import worker_ready, worker_shutdown

    worker_ready.connect(lambda sender=None, **kw: start_heartbeat(f"{sender.hostname}:{os.getpid()}"), weak=False)
    worker_shutdown.connect(lambda sender=None, **kw: stop_heartbeat(f"{sender.hostname}:{os.getpid()}"), weak=False)


# --- the probe -----------------------------------------------------------------


def _error(exc: BaseException) -> dict:
    return {"ok": False, "error": type(exc).__name__}


def _fresh_connection_check(fn):
    """Run ``fn`` with this thread's own database connection, closed after:
    the probe's threads are new each time and must not leave connections."""
    from django.db import connections

    try:
        return fn()
    finally:
        connections.close_all()


def check_database() -> dict:
    from django.db import connection

    def run():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True}

    return _fresh_connection_check(run)


def _redis_queue_names(queue: str) -> list[str]:
    # kombu's Redis transport keeps each priority step in its own list:
    # "celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169".
    return [queue] + [f"{queue}\x06\x16{step}" for step in (3, 6, 9)]


def broker_queue_depth(timeout: float) -> int | None:
    """Tasks waiting in the default Celery queue; None when the broker can't be read in ``timeout`` s."""
    try:
        return _broker_probe(timeout)["queued"]
    except Exception:  # noqa: BLE001 - a scrape reports NaN, never fails
        return None


def _broker_probe(timeout: float) -> dict:
    from arena.project.celery import app

    queue = app.conf.task_default_queue
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        import redis

        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            pipe = client.pipeline(transaction=False)
            pipe.ping()
            for name in _redis_queue_names(queue):
                pipe.llen(name)
            _, *lengths = pipe.execute()
        finally:
            client.close()
        return {"ok": True, "transport": "redis", "queued": sum(lengths)}
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        if not os.access(folder, os.W_OK):
            return {"ok": False, "transport": "filesystem", "error": "broker folder not writable"}
        suffix = f"{queue}.msg"
        queued = sum(1 for name in os.listdir(folder) if name.partition(".")[2] == suffix)
        return {"ok": True, "transport": "filesystem", "queued": queued}
    return {"ok": True, "transport": url.partition(":")[0], "queued": None}


def check_broker(timeout: float) -> dict:
    return _broker_probe(timeout)


def check_worker() -> dict:
    from django.core.cache import cache

    period = settings.ARENA_WORKER_HEARTBEAT_SECONDS
    beats = cache.get(HEARTBEAT_KEY) or {}
    now = time.time()
    alive = [t for t in beats.values() if now - t < MISSED_BEATS * period]
    newest = max(beats.values(), default=None)
    return {
        "ok": bool(alive),
        "workers": len(alive),
        "last_heartbeat": datetime.fromtimestamp(newest, UTC).isoformat() if newest else None,
        "age_seconds": round(now - newest, 3) if newest else None,
    }


def check_snapshot() -> dict:
    from django.utils import timezone

    from ratings.selectors import newest_snapshot
    from votes.models import Vote

    def run():
        now = timezone.now()
        snap = newest_snapshot()
        newest = (snap.created_at, snap.last_vote_id) if snap else None
        last_vote_id = newest[1] if newest else 0
        # The oldest counted vote no snapshot includes yet (by primary key).
        waiting = (
            Vote.objects.filter(id__gt=last_vote_id, excluded=False).order_by("id").values_list("created_at").first()
        )
        lag = (now - waiting[0]).total_seconds() if waiting else 0.0
        return {
            "ok": lag <= settings.ARENA_HEALTH_SNAPSHOT_MAX_LAG_SECONDS,
            "age_seconds": round((now - newest[0]).total_seconds(), 3) if newest else None,
            "oldest_uncounted_vote_seconds": round(lag, 3),
        }

    return _fresh_connection_check(run)


def health(timeout: float | None = None) -> dict:
    """{"status": "ok"|"fail", "checks": {...}}, in at most about ``timeout`` seconds."""
    timeout = settings.ARENA_HEALTH_TIMEOUT_SECONDS if timeout is None else timeout
    checks = {
        "database": check_database,
        "broker": lambda: check_broker(timeout),
        "worker": check_worker,
        "snapshot": check_snapshot,
    }
    # Not a "with" block: leaving it would wait for a check that hangs.
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="healthz")
    try:
        futures = {name: pool.submit(fn) for name, fn in checks.items()}
        wait(futures.values(), timeout=timeout)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    results = {}
    for name, future in futures.items():
        if not future.done():
            results[name] = {"ok": False, "error": f"no answer within {timeout:g} s"}
        elif future.exception() is not None:
            results[name] = _error(future.exception())
        else:
            results[name] = future.result()
    status = "ok" if all(r["ok"] for r in results.values()) else "fail"
    return {"status": status, "checks": results}


def healthz_view(request):
    """GET /healthz: 200 when every check passes, else 503; JSON either way.
    Outside /api/ and its schema: a probe's 503 is its contract, not an API error."""
    from django.http import JsonResponse

    if request.method not in ("GET", "HEAD"):
        return JsonResponse(
            {"error": "method_not_allowed", "detail": "use GET"}, status=405, headers={"Allow": "GET, HEAD"}
        )
    result = health()
    return JsonResponse(result, status=200 if result["status"] == "ok" else 503, headers={"Cache-Control": "no-store"})

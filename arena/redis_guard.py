"""A per-process circuit breaker for Redis on the request path.

Every Redis call a web request makes (rate limits, the recompute debounce
flag, publishing the recompute task) goes through :func:`call`. Each call
waits at most ``ARENA_REDIS_TIMEOUT`` (the socket timeouts in settings); the
first failure opens the breaker for that Redis server (host and port, so the
cache and the broker share one breaker when they share a server) for
``ARENA_REDIS_BREAKER_SECONDS``, and until then calls return their fallback
at once without touching the network. A frozen Redis therefore costs one
request one short timeout per process per breaker period, not every request
several socket timeouts (issue #12, item 2).

The state is deliberately per process and in memory: it describes what this
process saw, needs no shared store (the shared store is what is sick), and a
restarted process simply tries again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlparse

from django.conf import settings

log = logging.getLogger(__name__)

T = TypeVar("T")

_lock = threading.Lock()
_open_until: dict[str, float] = {}


def server_of(url: str | None) -> str:
    """The breaker's key for a Redis URL: host:port (the database number is
    irrelevant: a sick server is sick for every database)."""
    if not url:
        return "none"
    parsed = urlparse(url)
    return f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 6379}"


def cache_server() -> str | None:
    """The cache's Redis server, or None when the cache is not Redis."""
    conf = settings.CACHES["default"]
    if not conf["BACKEND"].endswith("RedisCache"):
        return None
    location = conf["LOCATION"]
    return server_of(location[0] if isinstance(location, list | tuple) else location)


def broker_server() -> str | None:
    url = settings.CELERY_BROKER_URL
    return server_of(url) if url and url.startswith(("redis://", "rediss://")) else None


def is_open(server: str | None) -> bool:
    if server is None:
        return False
    return _open_until.get(server, 0.0) > time.monotonic()


def trip(server: str | None, exc: BaseException) -> None:
    """Open the breaker for ``server`` (logged once per opening)."""
    if server is None:
        return
    seconds = settings.ARENA_REDIS_BREAKER_SECONDS
    with _lock:
        was_open = is_open(server)
        _open_until[server] = time.monotonic() + seconds
    if not was_open:
        log.warning("Redis at %s failed (%s: %s); skipping it for %.0f s", server, type(exc).__name__, exc, seconds)


def reset() -> None:
    """Close every breaker (tests)."""
    with _lock:
        _open_until.clear()


def call(server: str | None, fn: Callable[[], T], fallback: Callable[[], T], what: str) -> T:
    """``fn()`` unless the breaker for ``server`` is open; on any error trip
    the breaker and return ``fallback()``. ``server`` None (no Redis: the
    file cache, the filesystem broker) just runs ``fn`` with the same
    error handling, without a breaker."""
    if is_open(server):
        return fallback()
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - any Redis failure: degrade, never fail the request
        if server is not None:
            trip(server, exc)
        else:
            log.warning("%s failed (%s: %s)", what, type(exc).__name__, exc)
        return fallback()

"""Django's Redis cache with one connection pool and one client per process.

Django keeps a cache backend per thread, and under ASGI per request (its
cache handler is context-local): each request built a new connection pool,
so every request opened a new TCP connection to Redis (left for the garbage
collector to close), and every cache call built a new ``redis.Redis`` client,
which copies some 300 response callbacks. Both cost more CPU on the vote path
than the Redis round trips themselves (issue #14). Here pools and clients are
shared by every backend instance of the process with the same servers and
options; redis-py's clients and pools are thread-safe.
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

_lock = threading.Lock()
_shared: dict[tuple, object] = {}


class SharedRedisCacheClient(RedisCacheClient):
    def _shared_key(self, index: int) -> tuple:
        return (self._servers[index], repr(sorted(self._pool_options.items(), key=lambda kv: kv[0])), self._pool_class)

    def _get_connection_pool(self, write):
        index = self._get_connection_pool_index(write)
        pool = self._pools.get(index)
        if pool is None:
            key = ("pool", *self._shared_key(index))
            with _lock:
                pool = _shared.get(key)
                if pool is None:
                    pool = _shared[key] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            self._pools[index] = pool
        return pool

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = _shared.get(("client", id(pool)))
        if client is None:
            with _lock:
                client = _shared.setdefault(("client", id(pool)), self._client(connection_pool=pool))
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedRedisCacheClient


def reset() -> None:
    """Drop the shared pools (tests that restart a Redis server on another port)."""
    with _lock:
        for key, value in list(_shared.items()):
            if key[0] == "pool":
                value.disconnect()
        _shared.clear()

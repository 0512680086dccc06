"""Single flight for background jobs: a named lock that dies with its holder.

The one lock mechanism of the project (the ratings recompute, the votes'
anomaly detection), here in the lowest layer so every app may use it.

PostgreSQL: a session advisory lock, released by the server when the
holder's connection closes, so a SIGKILLed worker never blocks the next run.
SQLite (one machine): an flock on a file in var/, released by the kernel when
the process dies. Neither needs a timeout guess (a cache key with a TTL did:
a crashed holder blocked every run until it expired).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator

from django.conf import settings
from django.db import connection

RECOMPUTE = "ratings.recompute"
DETECT_ANOMALIES = "votes.detect_anomalies"
# The recompute's key from before the lock was shared ("ARENA"): kept, so a
# worker of the previous release and one of this release exclude each other
# during a rolling deploy.
_FIXED_KEYS = {RECOMPUTE: 0x4152454E41}


def advisory_key(name: str) -> int:
    """The PostgreSQL advisory lock key (a signed 64-bit integer) of ``name``."""
    if name in _FIXED_KEYS:
        return _FIXED_KEYS[name]
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextlib.contextmanager
def single_flight(name: str) -> Iterator[bool]:
    """Yields True if this process now holds the lock ``name``, False if
    another run holds it (the caller then skips its work). Never waits."""
    if connection.vendor == "postgresql":
        key = advisory_key(name)
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
            got = bool(cur.fetchone()[0])
        try:
            yield got
        finally:
            if got:
                with connection.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    path = os.path.join(settings.VAR_DIR, f"{name}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            got = True
        except BlockingIOError:
            got = False
        try:
            yield got
        finally:
            if got:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def recompute_lock() -> contextlib.AbstractContextManager[bool]:
    """The ratings recompute's single flight."""
    return single_flight(RECOMPUTE)

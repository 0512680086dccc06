"""Single flight for the recompute: a lock that dies with its holder.

PostgreSQL: a session advisory lock, released by the server when the
holder's connection closes, so a SIGKILLed worker never blocks the next run.
SQLite (one machine): an flock on a file in var/, released by the kernel when
the process dies. Neither needs a timeout guess.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from django.conf import settings
from django.db import connection

ADVISORY_KEY = 0x4152454E41  # "ARENA"


@contextlib.contextmanager
def recompute_lock() -> Iterator[bool]:
    """Yields True if this process holds the lock, False if another run does."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY])
            got = bool(cur.fetchone()[0])
        try:
            yield got
        finally:
            if got:
                with connection.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_KEY])
        return
    path = os.path.join(settings.VAR_DIR, "recompute.lock")
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

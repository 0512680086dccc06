"""Django's PostgreSQL backend with a bound on every wait for the server.

PostgreSQL's own timeouts (statement_timeout, lock_timeout) run on the
server: they cannot help when the server never receives the query or its
answer never arrives (a frozen server, a network that swallows packets, a
proxy that holds connections). TCP keepalives don't either while the peer's
kernel still acknowledges. So the client bounds each round trip itself:
psycopg's ``Connection.wait`` (which every query, fetch, commit and rollback
goes through) gets a timeout of ``DB_IO_TIMEOUT`` seconds; past it the
connection is closed, since its protocol state is unknown, and Django sees
an ``OperationalError`` — which the API answers with a 503 and Retry-After
(arena/api_errors.py). New connections are bounded by libpq's
``connect_timeout`` (settings.DATABASES OPTIONS).
"""

from __future__ import annotations

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base, operations

_WaitTimeout = getattr(psycopg.errors, "_WaitTimeout", ())


class BoundedConnection(psycopg.Connection):
    """A psycopg connection whose waits on the server end after ``io_timeout`` s."""

    io_timeout: float = 0.0

    def wait(self, gen, interval=0.1, timeout=None):  # type: ignore[override]
        if timeout is None and self.io_timeout > 0:
            timeout = self.io_timeout
        try:
            return super().wait(gen, interval=interval, timeout=timeout)
        except _WaitTimeout:
            # Mid-protocol: nothing more can be read or sent on this connection.
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"no answer from the database server within {timeout:g} s; connection closed"
            ) from None


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        if getattr(cursor, "binds_on_server", False):
            # arena/sql.py's prepared statements: the statement as written
            # (what DEBUG's query log and CaptureQueriesContext record).
            return sql
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if isinstance(connection, psycopg.Connection) and type(connection) is psycopg.Connection:
            # Django builds the connection with psycopg.connect(); the subclass
            # only overrides a method, so the instance can take it on as is.
            connection.__class__ = BoundedConnection
            connection.io_timeout = float(settings.DB_IO_TIMEOUT or 0)
        return connection

    def _close(self):
        """A dead connection (the server restarted, the network cut it, a
        wait past DB_IO_TIMEOUT) says its siblings idle in the pool are most
        likely dead too: drain the pool when one is closed broken, so the next
        requests get new connections rather than one 503 each per stale one."""
        conn = self.connection
        if conn is not None and self.pool is not None and (conn.broken or conn.closed):
            self.pool.drain()
        return super()._close()

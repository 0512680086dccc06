"""Hand-written SQL for the vote path's hottest statements (issue #14).

Building a queryset, compiling it and turning rows into model instances
cost the open + vote more CPU than everything else in them together; these
helpers run a fixed statement instead, on SQLite and PostgreSQL alike:
parameters go through the field's own database preparation and values come
back through the same converters the ORM applies (a JSON column parsed, a
SQLite timestamp made a datetime), so a row reads the same as through the ORM.

``with sql.block() as db:`` gives one cursor for a run of statements (a
cursor, and each look-up of the thread's connection, cost measurable CPU
per statement); the module functions are the same for a single statement.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction


class _PreparingCursor(psycopg.Cursor):
    """psycopg's server-binding cursor with every statement prepared (psycopg
    keeps them per connection, the most recent ``prepared_max``). The ORM's
    cursors bind on the client and never prepare (a pooler-safe default)."""

    # arena.pgbackend logs its statements as written (psycopg keeps no
    # composed text for a statement bound on the server).
    binds_on_server = True

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)


class Block:
    """Statements on one connection through one cursor."""

    def __init__(self, connection, cursor):
        self.connection, self.cursor = connection, cursor

    def for_update(self, of: str = "") -> str:
        """`` FOR UPDATE [OF alias]`` where the database has row locks (SQLite
        has none: it serialises writers by itself)."""
        features = self.connection.features
        if not features.has_select_for_update:
            return ""
        if of and features.has_select_for_update_of:
            return f" FOR UPDATE OF {of}"
        return " FOR UPDATE"

    def param(self, model, field_name: str, value):
        """``value`` as the database takes it for that column (a UUID on SQLite is hex text)."""
        return model._meta.get_field(field_name).get_db_prep_value(value, self.connection, prepared=False)

    def one(self, statement: str, params=()) -> tuple | None:
        self.cursor.execute(statement, params)
        return self.cursor.fetchone()

    def all(self, statement: str, params=()) -> list[tuple]:
        self.cursor.execute(statement, params)
        return self.cursor.fetchall()

    def run(self, statement: str, params=()) -> int:
        self.cursor.execute(statement, params)
        return self.cursor.rowcount

    def reader(self, *columns):
        """A function turning a row of these columns into their Python values.
        ``columns``: (model, field name) for a column that may need converting,
        None for one read as it comes (an id, a text, a count)."""
        connection = self.connection
        steps = column_converters(connection, columns)

        def read(row):
            return convert_row(row, steps, connection) if steps else row

        return read

    def insert(self, instance, also: tuple[str, list] | None = None, only_if: tuple[str, list] | None = None):
        """INSERT ``instance`` (a new, unsaved model instance) with one fixed
        statement per model: its values prepared as the ORM prepares them
        (field defaults, ``auto_now_add``), its generated id set back on it.
        No model signals are sent (none is connected to the models inserted
        this way). ``also``: a further write (statement, params) that goes
        with it, on PostgreSQL in the same round trip (a data-modifying WITH;
        the statement must end in its WHERE clause). ``only_if``: a condition
        (SQL, params) checked in the insert's own statement on PostgreSQL
        (a fresh snapshot, after the locks the transaction took), in a
        statement just before it elsewhere; when it is false nothing is
        written and None is returned.
        """
        connection = self.connection
        meta = instance._meta
        auto = meta.auto_field
        returning = auto is not None and connection.features.can_return_columns_from_insert
        key = (type(instance), connection.vendor)
        prepared = _inserts.get(key)
        if prepared is None:
            quote = connection.ops.quote_name
            fields = [f for f in meta.concrete_fields if f is not auto]
            prepared = _inserts[key] = (
                f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) ",
                f"({', '.join(['%s'] * len(fields))})",
                # A SELECT's values have no column to take their type from
                # (a NULL would be text): each is cast to its column's type,
                # without its length (an explicit cast to varchar(8) would cut
                # a longer text short; the column's own assignment refuses it).
                ", ".join(f"%s::{_TYPMOD.sub('', f.db_type(connection))}" for f in fields),
                f" RETURNING {quote(auto.column)}" if returning else "",
                fields,
            )
        head, row, typed_row, tail, fields = prepared
        values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
        combined = returning and connection.vendor == "postgresql"
        if only_if is not None:
            condition, condition_params = only_if
            if combined:
                statement = f"{head}SELECT {typed_row} WHERE {condition}{tail}"
                values += list(condition_params)
            else:
                if not self.one(f"SELECT {condition}", condition_params)[0]:
                    return None
                statement = f"{head}VALUES {row}{tail}"
        else:
            statement = f"{head}VALUES {row}{tail}"
        if also is not None and combined:
            also_statement, also_params = also
            if only_if is not None:
                also_statement += " AND EXISTS (SELECT 1 FROM inserted)"
            statement = (
                f"WITH inserted AS ({statement}), also AS ({also_statement}) "
                f"SELECT {connection.ops.quote_name(auto.column)} FROM inserted"
            )
            values += list(also_params)
            also = None
        self.cursor.execute(statement, values)
        if auto is not None:
            if returning:
                inserted = self.cursor.fetchone()
                if inserted is None:  # only_if was false
                    return None
                setattr(instance, auto.attname, inserted[0])
            else:
                setattr(instance, auto.attname, self.cursor.lastrowid)
        if also is not None:
            self.run(*also)
        instance._state.adding = False
        instance._state.db = connection.alias
        return instance


_inserts: dict = {}
_TYPMOD = re.compile(r"\s*\([^)]*\)")
_converters: dict = {}


def column_converters(connection, columns) -> list:
    """For a row of ``columns`` ((model, field name), or None for a value read
    as it comes), the converters the ORM applies on this backend: the
    backend's own (SQLite's timestamps made aware, its booleans) and the
    field's (JSON parsed), as (position, converters, column expression).
    Worked out once per backend and columns."""
    key = (connection.vendor, tuple(columns))
    steps = _converters.get(key)
    if steps is None:
        steps = []
        for position, column in enumerate(columns):
            if column is None:
                continue
            model, name = column
            expression = model._meta.get_field(name).get_col(model._meta.db_table)
            converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
            if converters:
                steps.append((position, converters, expression))
        _converters[key] = steps
    return steps


def convert_row(row, steps, connection) -> list:
    """``row``'s values through ``steps`` (column_converters)."""
    values = list(row)
    for position, converters, expression in steps:
        value = values[position]
        for convert in converters:
            value = convert(value, expression, connection)
        values[position] = value
    return values


def _cursor(connection):
    """A cursor for the fixed statements. On PostgreSQL (with
    DB_PREPARED_STATEMENTS on) one that binds parameters on the server and
    prepares each statement there once per connection: parsing and planning
    were most of the server's work on the open's and the vote's statements
    (a vote's locking read: about 240 µs of server CPU planned each time,
    55 µs prepared). Elsewhere, Django's own. Either way wrapped as Django
    wraps every cursor: errors mapped to django.db's, queries logged in DEBUG
    and by CaptureQueriesContext."""
    if connection.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS:
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(_PreparingCursor(connection.connection))


@contextmanager
def block(using: str = DEFAULT_DB_ALIAS):
    connection = connections[using]
    with _cursor(connection) as cursor:
        yield Block(connection, cursor)


@contextmanager
def atomic_block(refusing: tuple[type[BaseException], ...] = (), using: str = DEFAULT_DB_ALIAS):
    """``transaction.atomic()`` with one Block. An exception of ``refusing``
    raised inside (a refusal, raised before the block wrote anything) ends
    the transaction with a COMMIT, then goes on to the caller: on a ROLLBACK
    psycopg deallocates every statement prepared on the connection. Any
    other exception rolls back as usual."""
    refused = None
    with transaction.atomic(using=using), block(using) as db:
        try:
            yield db
        except refusing as exc:
            refused = exc
    if refused is not None:
        raise refused


def fetchone(statement: str, params=()) -> tuple | None:
    with block() as db:
        return db.one(statement, params)


def fetchall(statement: str, params=()) -> list[tuple]:
    with block() as db:
        return db.all(statement, params)


def reader(*columns):
    """Block.reader on the default connection (for a row read by fetchone/fetchall)."""
    return Block(connections[DEFAULT_DB_ALIAS], None).reader(*columns)

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

from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections


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

    def insert(self, instance, also: tuple[str, list] | None = None):
        """INSERT ``instance`` (a new, unsaved model instance) with one fixed
        statement per model: its values prepared as the ORM prepares them
        (field defaults, ``auto_now_add``), its generated id set back on it.
        No model signals are sent (none is connected to the models inserted
        this way). ``also``: a further write (statement, params) that goes
        with it, on PostgreSQL in the same round trip (a data-modifying WITH).
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
            statement = (
                f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
                f"VALUES ({', '.join(['%s'] * len(fields))})"
            )
            if returning:
                statement += f" RETURNING {quote(auto.column)}"
            prepared = _inserts[key] = (statement, fields)
        statement, fields = prepared
        values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
        if also is not None and returning and connection.vendor == "postgresql":
            also_statement, also_params = also
            quote = connection.ops.quote_name
            statement = (
                f"WITH inserted AS ({statement}), also AS ({also_statement}) SELECT {quote(auto.column)} FROM inserted"
            )
            values += list(also_params)
            also = None
        self.cursor.execute(statement, values)
        if auto is not None:
            setattr(instance, auto.attname, self.cursor.fetchone()[0] if returning else self.cursor.lastrowid)
        if also is not None:
            self.run(*also)
        instance._state.adding = False
        instance._state.db = connection.alias
        return instance


_inserts: dict = {}
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


@contextmanager
def block(using: str = DEFAULT_DB_ALIAS):
    connection = connections[using]
    with connection.cursor() as cursor:
        yield Block(connection, cursor)


def fetchone(statement: str, params=()) -> tuple | None:
    with block() as db:
        return db.one(statement, params)


def fetchall(statement: str, params=()) -> list[tuple]:
    with block() as db:
        return db.all(statement, params)


def reader(*columns):
    """Block.reader on the default connection (for a row read by fetchone/fetchall)."""
    return Block(connections[DEFAULT_DB_ALIAS], None).reader(*columns)

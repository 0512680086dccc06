"""Hand-written SQL for the vote path's hottest statements (issue #14).

Building a queryset, compiling it and turning rows into model instances
cost the open + vote more CPU than everything else in them together; these
helpers run a fixed statement instead, on SQLite and PostgreSQL alike:
parameters go through the field's own database preparation and values come
back through the same converters the ORM applies (a JSON column parsed, a
SQLite timestamp made a datetime), so a row reads the same as through the ORM.
"""

from __future__ import annotations

from django.db import connection


def for_update(of: str = "") -> str:
    """`` FOR UPDATE [OF alias]`` where the database has row locks (SQLite
    has none: it serialises writers by itself)."""
    if not connection.features.has_select_for_update:
        return ""
    if of and connection.features.has_select_for_update_of:
        return f" FOR UPDATE OF {of}"
    return " FOR UPDATE"


def param(model, field_name: str, value):
    """``value`` as the database takes it for that column (a UUID on SQLite is hex text)."""
    return model._meta.get_field(field_name).get_db_prep_value(value, connection, prepared=False)


def fetchall(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def fetchone(sql: str, params=()) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def execute(sql: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def reader(*columns):
    """A function turning a row of these columns into their Python values.
    ``columns``: (model, field name) for a column that may need converting,
    None for one read as it comes (an id, a text, a count)."""
    steps = []
    for position, column in enumerate(columns):
        if column is None:
            continue
        model, name = column
        expression = model._meta.get_field(name).get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if converters:
            steps.append((position, converters, expression))

    def read(row):
        if not steps:
            return row
        values = list(row)
        for position, converters, expression in steps:
            value = values[position]
            for convert in converters:
                value = convert(value, expression, connection)
            values[position] = value
        return values

    return read


def insert(instance):
    """INSERT ``instance`` (a new, unsaved model instance) with one fixed
    statement per model: its values prepared as the ORM prepares them (field
    defaults, ``auto_now_add``), its generated id set back on it. No model
    signals are sent (none is connected to the models inserted this way)."""
    meta = instance._meta
    auto = meta.auto_field
    fields = [f for f in meta.concrete_fields if f is not auto]
    statement = _insert_sql(type(instance), connection.vendor)
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
        if auto is not None:
            if connection.features.can_return_columns_from_insert:
                setattr(instance, auto.attname, cursor.fetchone()[0])
            else:
                setattr(instance, auto.attname, cursor.lastrowid)
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


_insert_statements: dict = {}


def _insert_sql(model, vendor: str) -> str:
    key = (model, vendor)
    statement = _insert_statements.get(key)
    if statement is None:
        meta = model._meta
        auto = meta.auto_field
        quote = connection.ops.quote_name
        columns = [quote(f.column) for f in meta.concrete_fields if f is not auto]
        statement = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        )
        if auto is not None and connection.features.can_return_columns_from_insert:
            statement += f" RETURNING {quote(auto.column)}"
        _insert_statements[key] = statement
    return statement

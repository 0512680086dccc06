"""The few statements a live stream runs on the hot path (arena.live's claim,
store and release), written once as SQL instead of composed by the ORM per
call.

Under hundreds of live battles the ORM's compiling of these queries (the
claim's ``select_related`` SELECT … FOR NO KEY UPDATE above all) was a large
share of a stream's CPU in the web process: about 1.4 ms per claim against
0.4 ms for the same two statements as SQL. Same statements, same locks:

* ``claim_battle``: the voter's battle with both models, the battle row
  locked FOR NO KEY UPDATE (OF the battle only, as before), or None;
* ``mark_streaming``: the claim's mark;
* ``update_claimed``: a write that only lands if the battle is still
  pending under this stream's own claim (``streaming_since``), so a stream
  that lost its claim writes nothing;
* ``reset_failures``: one success resets a model's failure count.

Instances are built as the ORM builds them (``Model.from_db``, each field's
``from_db_value``), so callers see ordinary model instances. Runs on
PostgreSQL and SQLite (the ``FOR NO KEY UPDATE`` clause only where the
backend has it, as the ORM does).
"""

from __future__ import annotations

from functools import cache

from django.db import connection

from .models import ArenaModel, Battle, Voter
from .sql import column_converters, convert_row


class _Loader:
    """Columns of a model in a SELECT, and how to build an instance from them."""

    def __init__(self, model, alias: str):
        self.model = model
        self.fields = model._meta.concrete_fields
        self.attnames = [f.attname for f in self.fields]
        self.columns = ", ".join(f'{alias}."{f.column}"' for f in self.fields)
        self.width = len(self.fields)
        self.columns_of = tuple((model, f.name) for f in self.fields)

    def build(self, row, start: int, conn):
        # The ORM's converters on this backend (SQLite's timestamps made aware, JSON parsed).
        values = convert_row(row[start : start + self.width], column_converters(conn, self.columns_of), conn)
        return self.model.from_db(conn.alias, self.attnames, values)


@cache
def _claim_statement(lock: str) -> tuple[str, _Loader, _Loader, _Loader]:
    b, ma, mb = _Loader(Battle, "b"), _Loader(ArenaModel, "ma"), _Loader(ArenaModel, "mb")
    battle_table, model_table = Battle._meta.db_table, ArenaModel._meta.db_table
    sql = (
        f"SELECT {b.columns}, {ma.columns}, {mb.columns} FROM {battle_table} b "
        f"JOIN {model_table} ma ON ma.id = b.model_a_id JOIN {model_table} mb ON mb.id = b.model_b_id "
        f"WHERE b.id = %s AND b.voter_id = %s{lock}"
    )
    return sql, b, ma, mb


def claim_battle(battle_id, voter_id) -> Battle | None:
    """The voter's battle with its two models, its row locked (FOR NO KEY
    UPDATE OF the battle: it does not conflict with the FOR KEY SHARE locks
    that inserting a battle or a vote takes on the rows it references).
    Inside the caller's transaction."""
    features = connection.features
    lock = (
        " FOR NO KEY UPDATE OF b" if features.has_select_for_no_key_update and features.has_select_for_update_of else ""
    )
    sql, b, ma, mb = _claim_statement(lock)
    with connection.cursor() as cursor:
        cursor.execute(sql, [Battle._meta.pk.get_db_prep_value(battle_id, connection), voter_id])
        row = cursor.fetchone()
    return _battle_with_models(row, b, ma, mb)


def _battle_with_models(row, b: _Loader, ma: _Loader, mb: _Loader) -> Battle | None:
    """The battle of a claim's row, with both its models; None for no row."""
    if row is None:
        return None
    battle = b.build(row, 0, connection)
    battle.model_a = ma.build(row, b.width, connection)
    battle.model_b = mb.build(row, b.width + ma.width, connection)
    return battle


@cache
def _quick_claim_statement() -> tuple[str, _Loader, _Loader, _Loader]:
    b, ma, mb = _Loader(Battle, "b"), _Loader(ArenaModel, "ma"), _Loader(ArenaModel, "mb")
    battle_table, model_table = Battle._meta.db_table, ArenaModel._meta.db_table
    sql = (
        f"UPDATE {battle_table} b SET status = %(pending)s, failure = '', streaming_since = %(now)s "
        f"FROM {model_table} ma, {model_table} mb, {Voter._meta.db_table} v "
        "WHERE b.id = %(id)s AND b.voter_id = %(voter)s AND ma.id = b.model_a_id AND mb.id = b.model_b_id "
        "AND v.id = b.voter_id AND NOT v.banned "
        "AND b.status IN (%(pending)s, %(failed)s) "
        "AND (b.streaming_since IS NULL OR b.streaming_since < %(horizon)s) "
        "AND ma.provider_kind = %(openai)s AND ma.status = %(active)s AND mb.status = %(active)s "
        "AND ma.max_concurrency = 0 AND mb.max_concurrency = 0 "
        f"RETURNING {b.columns}, {ma.columns}, {mb.columns}"
    )
    return sql, b, ma, mb


def quick_claim(battle_id, voter_id, now, horizon) -> Battle | None:
    """The whole claim in one statement, for the common case: the voter's
    (not banned: read here, since the request's voter carries only its id
    and key, and loading the rest was a query of its own) battle, pending or failed, not streaming since ``horizon``, on two active
    live models without a cap (whose slots need no count, so no model row is
    locked). The battle as claimed, or None if any of that does not hold (the
    caller then takes the checking path, which says why).

    Safe against a concurrent claim of the same battle: the UPDATE locks the
    row (FOR NO KEY UPDATE, as the checking path) and, if another claim
    changed it meanwhile, re-evaluates the conditions on the new version.
    One round trip in autocommit instead of four (BEGIN, SELECT … FOR NO KEY
    UPDATE, UPDATE, COMMIT), each a wait for the GIL on a busy web process."""
    sql, b, ma, mb = _quick_claim_statement()
    since = Battle._meta.get_field("streaming_since")
    params = {
        "id": Battle._meta.pk.get_db_prep_value(battle_id, connection),
        "voter": voter_id,
        "now": since.get_db_prep_value(now, connection),
        "horizon": since.get_db_prep_value(horizon, connection),
        "pending": Battle.Status.PENDING,
        "failed": Battle.Status.FAILED,
        "openai": ArenaModel.Provider.OPENAI,
        "active": ArenaModel.Status.ACTIVE,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return _battle_with_models(row, b, ma, mb)


def mark_streaming(battle_id, now) -> None:
    status, failure, since = (Battle._meta.get_field(n) for n in ("status", "failure", "streaming_since"))
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE {Battle._meta.db_table} SET "{status.column}" = %s, "{failure.column}" = %s, '
            f'"{since.column}" = %s WHERE id = %s',
            [
                Battle.Status.PENDING,
                "",
                since.get_db_prep_value(now, connection),
                Battle._meta.pk.get_db_prep_value(battle_id, connection),
            ],
        )


def update_claimed(battle: Battle, fields: dict) -> int:
    """Set ``fields`` (and clear the streaming mark) on the battle if it is
    still pending under this stream's claim; the number of rows written (0 or 1)."""
    fields = {**fields, "streaming_since": None}
    names, params = [], []
    for name, value in fields.items():
        field = Battle._meta.get_field(name)
        names.append(f'"{field.column}" = %s')
        params.append(field.get_db_prep_save(value, connection))
    since = Battle._meta.get_field("streaming_since")
    if battle.streaming_since is None:
        claim = f'"{since.column}" IS NULL'
    else:
        claim = f'"{since.column}" = %s'
    params += [Battle._meta.pk.get_db_prep_value(battle.id, connection), Battle.Status.PENDING]
    if battle.streaming_since is not None:
        params.append(since.get_db_prep_value(battle.streaming_since, connection))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Battle._meta.db_table} SET {', '.join(names)} WHERE id = %s AND status = %s AND {claim}",
            params,
        )
        return cursor.rowcount


def reset_failures(model_id: int) -> None:
    """A success: the model's count of failures in a row starts again (a
    row is locked only if it had failures)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ArenaModel._meta.db_table} SET consecutive_failures = 0 "
            "WHERE id = %s AND consecutive_failures > 0",
            [model_id],
        )

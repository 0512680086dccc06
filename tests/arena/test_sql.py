"""arena/sql.py's insert with a condition (``only_if``): nothing is written
when the condition is false, the row as the ORM would write it when true, and
a value too long for its column is refused, not cut short."""

from __future__ import annotations

import pytest
from django.db import DataError, transaction

from arena import sql
from arena.models import Battle, Voter
from tests.services import require_postgres
from votes.models import Vote

pytestmark = pytest.mark.django_db


@pytest.fixture
def battle(demo_models):
    voter = Voter.objects.create(key="sql-test")
    return Battle.objects.create(
        voter=voter, model_a=demo_models[0], model_b=demo_models[1], prompt="p", response_a="a", response_b="b"
    )


def new_vote(battle, **fields) -> Vote:
    return Vote(battle=battle, voter=battle.voter, model_a=battle.model_a, model_b=battle.model_b, winner="a", **fields)


def status_update(db, battle) -> tuple[str, list]:
    """The write that goes with the insert (the vote path's battle update)."""
    statement = f"UPDATE {Battle._meta.db_table} SET status = %s WHERE id = %s"
    return statement, [Battle.Status.VOTED, db.param(Battle, "id", battle.id)]


def test_a_false_condition_writes_neither_the_row_nor_the_write_that_goes_with_it(battle):
    with transaction.atomic(), sql.block() as db:
        assert db.insert(new_vote(battle), also=status_update(db, battle), only_if=("1 = %s", [2])) is None
    assert not Vote.objects.exists()
    battle.refresh_from_db()
    assert battle.status != Battle.Status.VOTED


def test_a_true_condition_writes_the_row_as_the_orm_would(battle):
    with transaction.atomic(), sql.block() as db:
        vote = db.insert(
            new_vote(battle, language="de", is_code=True), also=status_update(db, battle), only_if=("1 = %s", [1])
        )
    stored = Vote.objects.get()
    assert vote.id == stored.id
    assert (stored.winner, stored.language, stored.is_code, stored.external_key) == ("a", "de", True, None)
    battle.refresh_from_db()
    assert battle.status == Battle.Status.VOTED


def test_a_value_too_long_for_its_column_is_refused_not_cut_short(battle):
    require_postgres()  # SQLite does not enforce a column's length
    with pytest.raises(DataError), transaction.atomic(), sql.block() as db:
        db.insert(new_vote(battle, language="x" * 20), only_if=("1 = %s", [1]))
    assert not Vote.objects.exists()

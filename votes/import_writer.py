"""The import's database writes: model and voter ids resolved in bulk, votes
written in batches inside the caller's transaction (COPY on PostgreSQL,
INSERT OR IGNORE on SQLite, bulk_create elsewhere). Memory is one batch."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .models import STYLE_FIELDS

if TYPE_CHECKING:
    from .importers import ImportStats, ParsedVote

SHARED_VOTER_KEY = "import:unknown"  # every vote whose file names no judge
VOTER_KEY_MAX = 64
KEY_CONSTRAINT = "votes_vote_external_key_unique"
IMPORT_LOCK_ID = 0x766F746573  # pg_advisory_xact_lock key serialising imports ("votes")

VOTE_COLUMNS = (
    "voter_id", "model_a_id", "model_b_id", "winner", "created_at", "source", "external_key", "language",
    "is_code", "prompt_tokens", "turns", "excluded", "exclusion_reason", "excluded_at", "excluded_by_id",
    *STYLE_FIELDS,
)  # fmt: skip
NO_STYLE = (None,) * len(STYLE_FIELDS)


def voter_key_for(judge: str | None) -> str:
    if not judge:
        return SHARED_VOTER_KEY
    key = f"import:{judge}"
    if len(key) <= VOTER_KEY_MAX:
        return key
    return "import:sha256:" + hashlib.sha256(judge.encode()).hexdigest()[:40]


class Writer:
    """Resolves model and voter ids in bulk and writes votes, inside the
    caller's transaction. ``add(chunk)`` then ``finish()``.

    SQLite: INSERT OR IGNORE through executemany, per batch. Other non-
    PostgreSQL databases: bulk_create(ignore_conflicts=True).

    PostgreSQL: COPY straight into votes_vote. COPY has no ON CONFLICT, and
    staging plus INSERT … ON CONFLICT costs about twice as much per row, so a
    batch is copied optimistically inside a savepoint: the unique index
    rejects it if any key is already stored; then the batch is redone with
    its keys looked up first, and so are the following ones (the file
    overlaps what is stored). The COPY stays open while the next chunk is
    parsed, so parsing here overlaps PostgreSQL inserting the rows already
    sent. Concurrent imports are serialised by an advisory lock; arena votes
    carry no external key, so nothing else can take a key meanwhile.
    """

    def __init__(self, *, status: str, now: datetime, stats: ImportStats, batch_size: int):
        from django.db import connection

        from arena.models import ArenaModel, Voter

        self.connection = connection
        self.ArenaModel, self.Voter = ArenaModel, Voter
        self.status = status
        self.now = now
        self.stats = stats
        self.batch_size = batch_size
        self.models: dict[str, int] = {}
        self.voters: dict[str, int] = {}
        self.postgres = connection.vendor == "postgresql"
        self.batch: list[ParsedVote] = []
        self.inserted = 0
        self.count_before = None
        # PostgreSQL state
        self.cursor = None
        self.copy_cm = None
        self.copy = None
        self.in_savepoint = False
        self.optimistic = True

    # -- ids -------------------------------------------------------------
    def _unknown(self, items: list[ParsedVote]) -> bool:
        models, voters = self.models, self.voters
        return any(
            v.model_a not in models or v.model_b not in models or voter_key_for(v.judge) not in voters for v in items
        )

    def _resolve(self, batch: list[ParsedVote]) -> None:
        names = {v.model_a for v in batch} | {v.model_b for v in batch}
        missing = sorted(names.difference(self.models))
        if missing:
            existing = dict(self.ArenaModel.objects.filter(name__in=missing).values_list("name", "id"))
            new = [n for n in missing if n not in existing]
            if new:
                # Sorted, so a fresh database numbers models the same way on every import of the same data.
                self.ArenaModel.objects.bulk_create(
                    [self.ArenaModel(name=n, status=self.status) for n in new], ignore_conflicts=True
                )
                existing.update(self.ArenaModel.objects.filter(name__in=new).values_list("name", "id"))
                self.stats.models_created.extend(new)
            self.models.update(existing)
        keys = {voter_key_for(v.judge) for v in batch}
        missing = sorted(keys.difference(self.voters))
        if missing:
            existing = dict(self.Voter.objects.filter(key__in=missing).values_list("key", "id"))
            new = [k for k in missing if k not in existing]
            if new:
                self.Voter.objects.bulk_create([self.Voter(key=k) for k in new], ignore_conflicts=True)
                existing.update(self.Voter.objects.filter(key__in=new).values_list("key", "id"))
                self.stats.voters_created += len(new)
            self.voters.update(existing)

    def _rows(self, batch: list[ParsedVote]) -> Iterator[tuple]:
        models, voters, now = self.models, self.voters, self.now
        fromts = datetime.fromtimestamp
        for v in batch:
            f = v.features
            created = fromts(v.tstamp, UTC) if v.tstamp is not None else now
            yield (
                voters[voter_key_for(v.judge)], models[v.model_a], models[v.model_b], v.winner, created,
                "import", v.key,
                (f.get("language") or "")[:8] if f else "",
                bool(f.get("is_code")) if f else False,
                int(f.get("prompt_tokens") or 0) if f else 0,
                min(32767, max(1, int(f.get("turns") or 1))) if f else 1,
                bool(v.reason), v.reason, now if v.reason else None, None,
                *(map(f.get, STYLE_FIELDS) if f else NO_STYLE),
            )  # fmt: skip

    # -- the interface ---------------------------------------------------
    def add(self, items: list[ParsedVote]) -> None:
        if not items:
            return
        if self.postgres:
            self._add_postgres(items)
            return
        self.batch.extend(items)
        if len(self.batch) >= self.batch_size:
            self._flush_other()

    def finish(self) -> int:
        from .models import Vote

        if self.postgres:
            if self.cursor is not None:
                self._end_batch()
                self.cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # Django's foreign keys are INITIALLY DEFERRED
                self.cursor.close()
            return self.inserted
        self._flush_other()
        if self.connection.vendor == "sqlite":
            return self.inserted
        return 0 if self.count_before is None else Vote.objects.count() - self.count_before

    def abort(self) -> None:
        """End an open COPY so the transaction can roll back cleanly."""
        if self.copy_cm is not None:
            try:
                self.copy_cm.__exit__(RuntimeError, RuntimeError("import aborted"), None)
            except Exception:  # noqa: BLE001, S110 - the transaction is being rolled back anyway
                pass
            self.copy_cm = self.copy = None

    # -- PostgreSQL ------------------------------------------------------
    def _add_postgres(self, items: list[ParsedVote]) -> None:
        if self.cursor is None:
            self.cursor = self.connection.cursor()
            self.cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK_ID])
            # Check foreign keys row by row as the COPY runs, overlapping the
            # parsing of the next chunk, rather than all at COMMIT.
            self.cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if not self.optimistic:
            self.batch.extend(items)
            if len(self.batch) >= self.batch_size:
                self._write_looked_up(self.batch)
                self.batch = []
            return
        if self._unknown(items):
            # New models or voters are created between batches, outside any
            # savepoint a clash could roll back.
            self._end_batch()
            self._resolve(items)
            if not self.optimistic:
                self._add_postgres(items)
                return
        if not self.in_savepoint:
            self.cursor.execute("SAVEPOINT votes_import_batch")
            self.in_savepoint = True
        if self.copy_cm is None:
            self.copy_cm = self.cursor.cursor.copy(f"COPY votes_vote ({', '.join(VOTE_COLUMNS)}) FROM STDIN")
            self.copy = self.copy_cm.__enter__()
        self.batch.extend(items)
        try:
            write = self.copy.write_row
            for row in self._rows(items):
                write(row)
        except Exception as exc:
            if not self._close_copy(exc):
                self._fallback([])
                return
            raise
        if len(self.batch) >= self.batch_size:
            self._end_batch()

    def _close_copy(self, exc: BaseException | None = None) -> bool:
        """Finish the open COPY. False: a stored key clashed (the savepoint is
        rolled back); other errors are raised."""
        import psycopg

        cm, self.copy_cm, self.copy = self.copy_cm, None, None
        try:
            cm.__exit__(type(exc) if exc else None, exc, None)
            if exc is not None:
                raise exc
        except psycopg.errors.UniqueViolation as err:
            if getattr(err.diag, "constraint_name", "") != KEY_CONSTRAINT:
                raise
            self.cursor.execute("ROLLBACK TO SAVEPOINT votes_import_batch")
            self.cursor.execute("RELEASE SAVEPOINT votes_import_batch")
            self.in_savepoint = False
            return False
        return True

    def _end_batch(self) -> None:
        if self.copy_cm is not None and not self._close_copy():
            self._fallback([])
            return
        if self.in_savepoint:
            self.cursor.execute("RELEASE SAVEPOINT votes_import_batch")
            self.in_savepoint = False
        if self.optimistic:
            self.inserted += len(self.batch)
        elif self.batch:
            self._write_looked_up(self.batch)
        self.batch = []

    def _fallback(self, more: list[ParsedVote]) -> None:
        """A stored key clashed: redo this batch with lookups, and look up from now on."""
        self.optimistic = False
        batch, self.batch = self.batch + more, []
        self._write_looked_up(batch)

    def _write_looked_up(self, batch: list[ParsedVote]) -> None:
        self._resolve(batch)
        seen: set[str] = set()
        fresh = [v for v in batch if not (v.key in seen or seen.add(v.key))]
        keys = [v.key for v in fresh]
        taken: set[str] = set()
        # psycopg's own cursor: with DEBUG on, Django's would log each 2,000-key
        # query (about 150 kB of SQL) in connection.queries, 9,000 deep: 200 MB
        # on a 3,000,000-row re-import.
        raw = self.cursor.cursor
        for start in range(0, len(keys), 2000):  # small arrays keep the planner on the unique index
            raw.execute(
                "SELECT external_key FROM votes_vote WHERE external_key = ANY(%s)", [keys[start : start + 2000]]
            )
            taken.update(row[0] for row in raw.fetchall())
        fresh = [v for v in fresh if v.key not in taken]
        if fresh:
            with self.cursor.cursor.copy(f"COPY votes_vote ({', '.join(VOTE_COLUMNS)}) FROM STDIN") as copy:
                for row in self._rows(fresh):
                    copy.write_row(row)
            self.inserted += len(fresh)

    # -- SQLite and others -----------------------------------------------
    def _flush_other(self) -> None:
        batch, self.batch = self.batch, []
        if not batch:
            return
        self._resolve(batch)
        if self.connection.vendor == "sqlite":
            self._write_sqlite(batch)
        else:
            self._write_orm(batch)

    def _write_sqlite(self, batch: list[ParsedVote]) -> None:
        # Django's bulk_create spends ~0.3 ms a row preparing values; the
        # values here are already in column form, so hand them to sqlite3.
        ops = self.connection.ops
        marks = ", ".join(["%s"] * len(VOTE_COLUMNS))
        rows = []
        for row in self._rows(batch):
            row = list(row)
            row[4] = ops.adapt_datetimefield_value(row[4])
            if row[13] is not None:
                row[13] = ops.adapt_datetimefield_value(row[13])
            rows.append(row)
        with self.connection.cursor() as cursor:
            cursor.executemany(f"INSERT OR IGNORE INTO votes_vote ({', '.join(VOTE_COLUMNS)}) VALUES ({marks})", rows)
            self.inserted += max(0, cursor.rowcount)

    def _write_orm(self, batch: list[ParsedVote]) -> None:
        from .models import Vote

        if self.count_before is None:
            self.count_before = Vote.objects.count()
        objs = [Vote(**dict(zip(VOTE_COLUMNS, row, strict=True))) for row in self._rows(batch)]
        Vote.objects.bulk_create(objs, batch_size=2000, ignore_conflicts=True)

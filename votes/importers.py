"""Import battle files as votes: ``manage.py import_battles FILE…``.

The files are read by ``votes.battlefile`` (formats and the rule for every
edge: docs/VOTES.md), the reader ``rate_battles`` uses too, so both commands
see the same battles, skips and warnings. This module turns each battle into a
vote and drives the pieces:

- import_keys.py: the dedupe key (``external_key``), so re-importing adds nothing;
- import_features.py: the per-vote feature columns;
- import_writer.py: batched database writes (COPY on PostgreSQL);
- import_progress.py: the progress bar.

Each row becomes one ``Vote`` (source ``import``). Self-battles, named (anony
false) battles and rows the file marks excluded are stored excluded with a
reason. Memory does not grow with the number of rows: rows stream through in
chunks, repeats are counted with 8 bytes a row (import_keys.Ordinals), and
the writer holds one batch. Parsing (``read_votes``) touches no database;
``import_files`` adds the writes.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .battlefile import EXCLUDED, LABELS, NAMED, SELF_BATTLE, BadRow, Battle, BattleFile, BattleFileError
from .import_features import row_features
from .import_keys import Ordinals, dedupe_key, scalar, with_time_prefix
from .import_progress import Progress
from .import_writer import SHARED_VOTER_KEY, Writer, voter_key_for
from .models import ExclusionReason

__all__ = [
    "BAD_ROWS_SHOWN", "LABELS", "SHARED_VOTER_KEY", "BadRow", "ImportFailed", "ImportStats", "ParsedVote",
    "Progress", "dedupe_key", "import_files", "read_votes", "voter_key_for",
]  # fmt: skip

BAD_ROWS_SHOWN = 20
CHUNK = 2000  # rows parsed between two writes: small, so PostgreSQL is never left waiting long


class ImportFailed(Exception):
    """The files were not imported; nothing was written. ``bad_rows`` say why."""

    def __init__(self, message: str, bad_rows: list[BadRow] | None = None, bad_count: int = 0):
        super().__init__(message)
        self.bad_rows = bad_rows or []
        self.bad_count = bad_count or len(self.bad_rows)


@dataclass(slots=True)
class ParsedVote:
    """One row, validated. ``key`` is the external key; ``reason`` non-empty
    means the vote is stored excluded for that reason."""

    model_a: str
    model_b: str
    winner: str
    tstamp: float | None
    judge: str | None
    key: str
    reason: str
    features: dict | None
    skip: str = ""  # the reader's category (self_battle, named, excluded), as rate_battles counts it


@dataclass
class ImportStats:
    files: int = 0
    rows: int = 0
    added: int = 0
    already_present: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bad_count: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # by the reader's category: self_battle, named, excluded
    models_created: list[str] = field(default_factory=list)
    voters_created: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# battles → votes (no database)

_FEATURE_FIELDS = frozenset(("conversation_a", "conversation_b", "turns", "prompt", "response_a", "response_b",
                             "conv_metadata", "language", "is_code", "prompt_tokens", "turn"))  # fmt: skip


def _reason(battle: Battle) -> str:
    """The exclusion reason a vote is stored with ('' = counted)."""
    if battle.skip == SELF_BATTLE:
        return ExclusionReason.SELF_BATTLE
    if battle.skip == NAMED:
        return ExclusionReason.NAMED
    if battle.skip == EXCLUDED:
        original = battle.file_reason
        if original in (ExclusionReason.NAMED, ExclusionReason.SELF_BATTLE):
            return original
        if original.startswith(ExclusionReason.IMPORTED_PREFIX):
            return original[:64]
        return (ExclusionReason.IMPORTED_PREFIX + original)[:64]  # another system's exclusion: kept
    return ""


def _vote(battle: Battle, namespace: str) -> tuple[ParsedVote, tuple, bytes]:
    """The vote of one battle with its first-occurrence key, the key's fields and its digest."""
    get = battle.get
    ident = get("id")
    if ident is None or ident == "":
        ident = get("battle_id")
    raw_ts = scalar(get("tstamp"))
    fields = (scalar(ident), scalar(get("question_id")), raw_ts, battle.judge or "", scalar(get("turn")),
              battle.model_a, battle.model_b, battle.winner)  # fmt: skip
    first = hashlib.sha256("\x1f".join((namespace, *fields)).encode())
    want = not _FEATURE_FIELDS.isdisjoint(battle.fields)
    feats = row_features(get) if want else None
    vote = ParsedVote(battle.model_a, battle.model_b, battle.winner, battle.tstamp, battle.judge,
                      with_time_prefix(first.hexdigest(), raw_ts), _reason(battle), feats, battle.skip)  # fmt: skip
    return vote, fields, first.digest()[:8]


def read_votes(path: str | Path, *, namespace: str = "", source: BattleFile | None = None
               ) -> Iterator[ParsedVote | BadRow]:  # fmt: skip
    """Parse one battle file. Yields a ParsedVote per good row and a BadRow
    (with its line number) per bad one, in file order. Raises ImportFailed
    when the file as a whole can't be read (missing, not a battle file, no
    usable header)."""
    try:
        src = source or BattleFile(path)
    except BattleFileError as exc:
        raise ImportFailed(str(exc)) from None
    return _votes(src, namespace)


def _votes(src: BattleFile, namespace: str) -> Iterator[ParsedVote | BadRow]:
    ordinals = Ordinals()
    pending: list = []  # ParsedVote | BadRow in file order, up to CHUNK votes
    fields: list[tuple] = []
    digests: list[int] = []
    where: list[int] = []

    def flush() -> Iterator[ParsedVote | BadRow]:
        if digests:
            ords = ordinals(np.array(digests, dtype=np.uint64))
            for k in np.flatnonzero(ords):  # repeats of earlier rows: the ordinal goes into the key
                pending[where[k]].key = dedupe_key(namespace, fields[k], int(ords[k]))
        yield from pending
        pending.clear()
        fields.clear()
        digests.clear()
        where.clear()

    for item in src:
        if type(item) is BadRow:
            pending.append(item)
            continue
        vote, key_fields, digest = _vote(item, namespace)
        where.append(len(pending))
        pending.append(vote)
        fields.append(key_fields)
        digests.append(int.from_bytes(digest, "little"))
        if len(digests) >= CHUNK:
            yield from flush()
    yield from flush()


# --------------------------------------------------------------------------
# the import


def import_files(
    paths: Iterable[str | Path],
    *,
    skip_bad_rows: bool = False,
    status: str = "deprecated",
    namespace: str = "",
    batch_size: int = 20_000,
    progress: bool | None = None,
    progress_stream=None,
    on_bad_row: Callable[[BadRow], None] | None = None,
) -> ImportStats:
    """Import battle files as votes in one transaction.

    Any bad row aborts the whole import with nothing written (ImportFailed,
    listing the bad rows by file and line) unless ``skip_bad_rows``. Unknown
    models are created with ``status``. Requests a ratings recompute after
    the commit when votes were added.
    """
    from django.db import transaction

    from arena.models import ArenaModel

    from .services import request_recompute

    if status not in ArenaModel.Status.values:
        raise ImportFailed(f"status must be one of {', '.join(ArenaModel.Status.values)}")
    paths = [str(p) for p in paths]
    for p in paths:
        if not os.path.isfile(p):
            raise ImportFailed(f"{p}: no such file")
    started = time.perf_counter()
    stats = ImportStats(files=len(paths))
    try:
        sources = [BattleFile(p) for p in paths]
    except BattleFileError as exc:
        raise ImportFailed(str(exc)) from None
    bar = Progress(sum(s.size for s in sources), stream=progress_stream, enabled=progress)
    try:
        with transaction.atomic():
            writer = Writer(status=status, now=datetime.now(UTC), stats=stats, batch_size=batch_size)
            try:
                _import_rows(sources, writer, stats, bar, namespace=namespace, skip_bad_rows=skip_bad_rows,
                             on_bad_row=on_bad_row)  # fmt: skip
            except BaseException:
                writer.abort()  # an open COPY would block the rollback
                raise
            stats.already_present = stats.rows - stats.added
            if stats.added:
                transaction.on_commit(request_recompute)
    finally:
        bar.update(bar.total, stats.rows, force=True)
        bar.close()
    stats.seconds = time.perf_counter() - started
    return stats


_SKIP_OF_REASON = {ExclusionReason.SELF_BATTLE: SELF_BATTLE, ExclusionReason.NAMED: NAMED}


def _import_rows(sources, writer: Writer, stats: ImportStats, bar: Progress, *, namespace: str,
                 skip_bad_rows: bool, on_bad_row) -> None:  # fmt: skip
    """Parse every file and hand good rows to the writer in chunks. In strict
    mode the first bad row stops the writing; parsing goes on so that every
    bad row is reported, then ImportFailed rolls everything back."""
    base = 0
    failed = False
    chunk: list[ParsedVote] = []
    chunk_size = min(CHUNK, writer.batch_size)
    for src in sources:
        for item in _votes(src, namespace):
            if type(item) is BadRow:
                stats.bad_count += 1
                if len(stats.bad_rows) < BAD_ROWS_SHOWN * 5:
                    stats.bad_rows.append(item)
                if on_bad_row:
                    on_bad_row(item)
                if not skip_bad_rows:
                    failed = True  # keep reading: report every bad row, write nothing more
                    chunk = []
                continue
            stats.rows += 1
            if item.reason:
                stats.excluded[item.reason] = stats.excluded.get(item.reason, 0) + 1
                stats.skipped[item.skip] = stats.skipped.get(item.skip, 0) + 1
            if failed:
                continue
            chunk.append(item)
            if len(chunk) >= chunk_size:
                writer.add(chunk)
                chunk = []
                bar.update(base + src.done, stats.rows)
        base += src.size
        stats.warnings.extend(src.warnings)
    if failed:
        shown = "\n".join(f"  {b}" for b in stats.bad_rows[:BAD_ROWS_SHOWN])
        more = stats.bad_count - min(stats.bad_count, BAD_ROWS_SHOWN)
        raise ImportFailed(
            f"{stats.bad_count} bad row(s); nothing was imported (use --skip-bad-rows to skip them):\n"
            + shown + (f"\n  … and {more} more" if more else ""),
            stats.bad_rows, stats.bad_count,
        )  # fmt: skip
    writer.add(chunk)
    stats.added = writer.finish()

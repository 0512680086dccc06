"""Dedupe keys of imported votes (``Vote.external_key``): re-importing a file adds nothing.

Pure Python + numpy. The key of a row is a sha256 over its identifying fields;
a row that repeats earlier rows of the same file exactly gets an ordinal mixed
in, so repeats stay distinct votes. Counting repeats needs the rows seen so
far: ``Ordinals`` keeps them as 8-byte digests in sorted numpy runs (8 bytes a
row, 24 MB for 3,000,000 rows), never a dict entry per row.
"""

from __future__ import annotations

import hashlib

import numpy as np


def dedupe_key(namespace: str, fields: tuple, ordinal: int) -> str:
    """The external key of one row: sha256 over the row's identifying fields
    (behind a time prefix when the row has a tstamp, see with_time_prefix).

    ``fields`` = (id, question_id, tstamp, judge, turn, model_a, model_b,
    winner code); missing ones are empty. ``ordinal`` is how many earlier
    rows of the same file had exactly these fields: a file may hold the
    same battle outcome twice (the Chatbot Arena 33k CSV has no ids and
    1,457 distinct rows among 25,938), and those are different votes. The
    same file read again yields the same ordinals, hence the same keys.
    """
    text = "\x1f".join((namespace, *map(str, fields)))
    if ordinal:
        text += f"\x1e{ordinal}"
    return with_time_prefix(hashlib.sha256(text.encode()).hexdigest(), fields[2])


def with_time_prefix(hexdigest: str, tstamp: str) -> str:
    """Rows with a tstamp get it, in tenths of a second as 10 hex digits, in
    front of the first 54 hex digits (216 bits) of the hash. Files are mostly
    in time order, so PostgreSQL appends to the unique index instead of
    writing all over it (the costliest index of a bulk import)."""
    if not tstamp:
        return hexdigest
    try:
        tenths = int(float(tstamp) * 10)
    except ValueError:
        return hexdigest
    return f"{tenths:010x}{hexdigest[:54]}" if 0 <= tenths < 16**10 else hexdigest


def scalar(value) -> str:
    # str(float) is its shortest round-trip repr, so a tstamp reads the same
    # from a JSON array, JSON Lines or our own export.
    return "" if value is None else str(value)


class Ordinals:
    """For digests given chunk by chunk (one file, in order): how many earlier
    ones were equal. 64-bit digests: a collision would only shift an ordinal,
    never merge two different rows (the full sha256 is the key).

    Seen digests live in sorted runs merged like a binary counter (at most
    log2(rows/chunk) + 1 runs), so a chunk costs a few vectorised binary searches.
    """

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.runs)

    def __call__(self, digests: np.ndarray) -> np.ndarray:
        d = np.asarray(digests, dtype=np.uint64)
        before = np.zeros(len(d), dtype=np.int64)
        for run in self.runs:
            before += np.searchsorted(run, d, "right") - np.searchsorted(run, d, "left")
        order = np.argsort(d, kind="stable")
        sd = d[order]
        starts = np.ones(len(sd), dtype=bool)
        starts[1:] = sd[1:] != sd[:-1]
        first_of_group = np.flatnonzero(starts)[np.cumsum(starts) - 1]
        within = np.empty(len(d), dtype=np.int64)
        within[order] = np.arange(len(sd)) - first_of_group
        if len(sd):
            self.runs.append(sd)
        while len(self.runs) > 1 and len(self.runs[-2]) <= len(self.runs[-1]):
            last = self.runs.pop()
            self.runs[-1] = np.sort(np.concatenate((self.runs[-1], last)))
        return before + within

"""Read battle files into index arrays for the rating core. No Django.

Formats (detected from the content, not the file name):
- LMArena clean_battle: a JSON array of records, or JSON Lines, each with
  model_a, model_b, winner (model_a | model_b | tie | tie (bothbad) | both_bad),
  optionally anony, tstamp, conversation_a/b, conv_metadata.
- CSV with model_a, model_b, winner (same labels), or the arena-human-preference
  columns winner_model_a / winner_model_b / winner_tie (one-hot 0/1).

Model names follow arena.names (the same rule as every other entrance).
Errors carry the file and line number; ``skip_bad_rows`` counts and drops them.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arena.names import is_valid_model_name, model_name_error
from votes import features as style

LABELS = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5, "both_bad": 0.5, "bothbad": 0.5}


class BattleFileError(Exception):
    """A one-line, user-facing reason the file can't be read."""


@dataclass
class Battles:
    names: list[str] = field(default_factory=list)
    a: list | np.ndarray = field(default_factory=list)
    b: list | np.ndarray = field(default_factory=list)
    y: list | np.ndarray = field(default_factory=list)
    count: list | np.ndarray = field(default_factory=list)
    tstamp: list | np.ndarray = field(default_factory=list)
    style_a: list | np.ndarray = field(default_factory=list)
    style_b: list | np.ndarray = field(default_factory=list)
    named: int = 0
    bad_rows: int = 0
    has_style: bool = True
    _index: dict[str, int] = field(default_factory=dict)

    def model(self, name: str) -> int:
        i = self._index.get(name)
        if i is None:
            i = self._index[name] = len(self.names)
            self.names.append(name)
        return i

    def finish(self) -> Battles:
        self.a = np.asarray(self.a, dtype=np.int64)
        self.b = np.asarray(self.b, dtype=np.int64)
        self.y = np.asarray(self.y, dtype=np.float64)
        self.count = np.asarray(self.count, dtype=np.float64)
        self.tstamp = np.asarray(self.tstamp, dtype=np.float64)
        if self.has_style and len(self.style_a) == len(self.a):
            self.style_a = np.asarray(self.style_a, dtype=np.float64).reshape(-1, 4)
            self.style_b = np.asarray(self.style_b, dtype=np.float64).reshape(-1, 4)
        else:
            self.has_style = False
        return self


class _Reader:
    def __init__(self, out: Battles, *, include_named: bool, skip_bad_rows: bool, want_style: bool):
        self.out = out
        self.include_named = include_named
        self.skip_bad_rows = skip_bad_rows
        self.want_style = want_style

    def bad(self, where: str, why: str) -> None:
        if self.skip_bad_rows:
            self.out.bad_rows += 1
            return
        raise BattleFileError(f"{where}: {why} (use --skip-bad-rows to skip such rows)")

    def add(self, ma: str, mb: str, y: float, n: float, ts: float, st: tuple | None) -> None:
        out = self.out
        out.a.append(out.model(ma))
        out.b.append(out.model(mb))
        out.y.append(y)
        out.count.append(n)
        out.tstamp.append(ts)
        if self.want_style:
            if st is None:
                out.has_style = False
            elif out.has_style:
                out.style_a.append(st[0])
                out.style_b.append(st[1])

    # -- records (JSON / JSONL) ------------------------------------------
    def record(self, rec, where: str, order: float) -> None:
        if not isinstance(rec, dict):
            return self.bad(where, "expected a JSON object with model_a, model_b, winner")
        ma, mb, winner = rec.get("model_a"), rec.get("model_b"), rec.get("winner")
        if not isinstance(ma, str) or not ma or not isinstance(mb, str) or not mb:
            return self.bad(where, "model_a and model_b must be non-empty strings")
        error = model_name_error(ma, "model_a") or model_name_error(mb, "model_b")
        if error is not None:
            return self.bad(where, error)
        y = LABELS.get(winner) if isinstance(winner, str) else None
        if y is None:
            return self.bad(where, f"unknown winner {winner!r} (expected {', '.join(LABELS)})")
        if "anony" in rec and not self.include_named and rec["anony"] is not True and rec["anony"] != "true":
            self.out.named += 1
            return None
        ts = rec.get("tstamp")
        ts = float(ts) if isinstance(ts, (int, float)) else order
        st = None
        if self.want_style:
            if isinstance(rec.get("conv_metadata"), dict):
                meta = rec["conv_metadata"]
                st = (style.from_conv_metadata(meta, "a"), style.from_conv_metadata(meta, "b"))
            elif isinstance(rec.get("conversation_a"), list) and isinstance(rec.get("conversation_b"), list):
                st = (_assistant_counts(rec["conversation_a"]), _assistant_counts(rec["conversation_b"]))
        self.add(ma, mb, y, 1.0, ts, st)
        return None

    def json_array(self, text: str, path: str) -> None:
        dec = json.JSONDecoder()
        i = _skip_ws(text, 0)
        if text[i : i + 1] != "[":
            raise BattleFileError(f"{path}: not a JSON array")
        i = _skip_ws(text, i + 1)
        n = 0
        while i < len(text) and text[i] != "]":
            try:
                rec, end = dec.raw_decode(text, i)
            except json.JSONDecodeError as exc:
                raise BattleFileError(f"{path}:{text.count(chr(10), 0, exc.pos) + 1}: invalid JSON ({exc.msg})") from exc
            n += 1
            try:
                self.record(rec, f"{path}:{{line}}", float(n))
            except BattleFileError as exc:  # line numbers are only worth counting on failure
                line = text.count("\n", 0, i) + 1
                raise BattleFileError(str(exc).replace("{line}", str(line))) from None
            i = _skip_ws(text, end)
            if text[i : i + 1] == ",":
                i = _skip_ws(text, i + 1)
            elif text[i : i + 1] != "]":
                raise BattleFileError(f"{path}:{text.count(chr(10), 0, i) + 1}: expected ',' or ']' in the JSON array")
        if text[i : i + 1] != "]":
            raise BattleFileError(f"{path}: the JSON array is not closed")

    def jsonl(self, text: str, path: str) -> None:
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                self.bad(f"{path}:{lineno}", f"invalid JSON ({exc.msg})")
                continue
            self.record(rec, f"{path}:{lineno}", float(lineno))

    # -- CSV -------------------------------------------------------------
    def csv_text(self, text: str, path: str, ordered: bool) -> None:
        first_nl = text.find("\n")
        header_line = text if first_nl < 0 else text[:first_nl]
        header = next(csv.reader([header_line]))
        header = [h.strip().lstrip("\ufeff") for h in header]
        cols = {h: i for i, h in enumerate(header)}
        if "model_a" not in cols or "model_b" not in cols:
            raise BattleFileError(f"{path}: CSV needs model_a and model_b columns (found {', '.join(header)})")
        one_hot = all(c in cols for c in ("winner_model_a", "winner_model_b", "winner_tie"))
        if "winner" not in cols and not one_hot:
            raise BattleFileError(f"{path}: CSV needs a winner column, or winner_model_a/winner_model_b/winner_tie")
        ia, ib = cols["model_a"], cols["model_b"]
        iw = cols.get("winner")
        one = [cols.get("winner_model_a"), cols.get("winner_model_b"), cols.get("winner_tie")]
        resp = (cols.get("response_a"), cols.get("response_b")) if self.want_style else (None, None)
        width = max(cols.values()) + 1

        def parse(row: list[str], where: str, n: float, ts: float) -> None:
            if len(row) < width:
                return self.bad(where, f"expected {len(header)} columns, found {len(row)}")
            ma, mb = row[ia].strip(), row[ib].strip()
            if not ma or not mb:
                return self.bad(where, "model_a and model_b must be non-empty")
            error = model_name_error(ma, "model_a") or model_name_error(mb, "model_b")
            if error is not None:
                return self.bad(where, error)
            if iw is not None and not one_hot:
                y = LABELS.get(row[iw].strip())
                if y is None:
                    return self.bad(where, f"unknown winner {row[iw]!r} (expected {', '.join(LABELS)})")
            else:
                flags = [row[k].strip() for k in one]
                if sorted(flags) != ["0", "0", "1"]:
                    return self.bad(where, "exactly one of winner_model_a, winner_model_b, winner_tie must be 1")
                y = (1.0, 0.0, 0.5)[flags.index("1")]
            st = None
            if self.want_style and resp[0] is not None and resp[1] is not None:
                st = (_response_counts(row[resp[0]]), _response_counts(row[resp[1]]))
            self.add(ma, mb, y, n, ts, st)
            return None

        body = "" if first_nl < 0 else text[first_nl + 1 :]
        if '"' not in body and not ordered and not self.want_style and iw is not None and not one_hot:
            if self.fast_counts(body, ia, ib, iw, width, parse, path):
                return
        reader = csv.reader(io.StringIO(body))
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            parse(row, f"{path}:{reader.line_num + 1}", 1.0, float(reader.line_num))


    def fast_counts(self, body: str, ia: int, ib: int, iw: int, width: int, parse, path: str) -> bool:
        """Identical lines are identical battles: count them, then map each
        distinct line once. Returns False (nothing added) when any distinct
        line is not clean, so the careful path can report it by line number."""
        lines = body.split("\n")
        tally = Counter(lines)
        for blank in ("", "\r"):
            tally.pop(blank, None)
        distinct = list(tally)
        rows = [line.rstrip("\r").split(",") for line in distinct]
        if any(len(r) < width for r in rows):
            return self._slow_distinct(distinct, tally, lines, parse, path)
        ys = [LABELS.get(r[iw].strip()) for r in rows]
        if None in ys or any(not r[ia].strip() or not r[ib].strip() for r in rows):
            return self._slow_distinct(distinct, tally, lines, parse, path)
        seen = {r[ia].strip() for r in rows} | {r[ib].strip() for r in rows}
        if any(not is_valid_model_name(name) for name in seen):
            return self._slow_distinct(distinct, tally, lines, parse, path)
        out = self.out
        index = out._index
        names = out.names
        for name in seen:
            if name not in index:
                index[name] = len(names)
                names.append(name)
        out.a.extend(index[r[ia].strip()] for r in rows)
        out.b.extend(index[r[ib].strip()] for r in rows)
        out.y.extend(ys)
        out.count.extend(float(tally[line]) for line in distinct)
        out.tstamp.extend([0.0] * len(rows))
        return True

    def _slow_distinct(self, distinct, tally, lines, parse, path) -> bool:
        for line in distinct:
            before = self.out.bad_rows
            try:
                parse(line.rstrip("\r").split(","), f"{path}:{{line}}", float(tally[line]), 0.0)
            except BattleFileError as exc:
                lineno = lines.index(line) + 2
                raise BattleFileError(str(exc).replace("{line}", str(lineno))) from None
            if self.out.bad_rows != before:  # skipped: every copy of the line is a bad row
                self.out.bad_rows = before + tally[line]
        return True


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in " \t\r\n":
        i += 1
    return i


def _assistant_counts(conversation: list) -> tuple[int, int, int, int]:
    turns = [
        m.get("content", "")
        for m in conversation
        if isinstance(m, dict) and m.get("role") in ("assistant", "gpt") and isinstance(m.get("content"), str)
    ]
    return style.conversation_counts(turns)


def _response_counts(cell: str) -> tuple[int, int, int, int]:
    """arena-human-preference stores each side's answers as a JSON list of strings."""
    try:
        value = json.loads(cell)
    except (json.JSONDecodeError, TypeError):
        value = cell
    turns = [t for t in value if isinstance(t, str)] if isinstance(value, list) else [str(value or "")]
    return style.conversation_counts(turns)


def sniff(text: str) -> str:
    head = text.lstrip("\ufeff \t\r\n")[:1]
    if head == "[":
        return "json"
    if head == "{":
        return "jsonl"
    first = text.split("\n", 1)[0]
    if "model_a" in first and "model_b" in first:
        return "csv"
    return "unknown"


def read_battles(
    paths: list[str | Path],
    *,
    include_named: bool = False,
    skip_bad_rows: bool = False,
    ordered: bool = False,
    want_style: bool = False,
) -> Battles:
    """Read one or more battle files into one model index.

    ``ordered`` keeps one entry per battle in file (or tstamp) order, for Elo;
    otherwise CSV rows may come back pre-counted (``count`` > 1).
    """
    out = Battles(has_style=want_style)
    reader = _Reader(out, include_named=include_named, skip_bad_rows=skip_bad_rows, want_style=want_style)
    for p in paths:
        path = str(p)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise BattleFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BattleFileError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
        kind = sniff(text)
        if kind == "json":
            reader.json_array(text, path)
        elif kind == "jsonl":
            reader.jsonl(text, path)
        elif kind == "csv":
            reader.csv_text(text, path, ordered)
        else:
            raise BattleFileError(
                f"{path}: not a battle file (expected a clean_battle JSON array, JSON Lines, "
                "or CSV with model_a, model_b, winner)"
            )
    return out.finish()

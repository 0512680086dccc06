"""The one battle-file reader: ``rate_battles`` and ``import_battles`` both read
files through it, so one file gives both the same battles, skips and warnings.

Pure Python (no Django, no database); streams, so memory does not grow with the
number of rows: JSON Lines and CSV a line at a time, a JSON array an element at
a time (``json``'s C decoder on a sliding buffer, which keeps exact line numbers).

Formats, detected from the content (not the file name):

- LMArena clean_battle: a JSON array or JSON Lines of objects with model_a,
  model_b, winner, optionally anony, tstamp, judge, id/battle_id, question_id,
  turn, language, conversation_a/b, turns, prompt, response_a/b, conv_metadata,
  excluded + exclusion_reason (our own export). MT-bench human judgments have
  the same shape.
- CSV with model_a, model_b and winner, or the arena-human-preference one-hot
  columns winner_model_a / winner_model_b / winner_tie, and any of the optional
  columns above. Unnamed columns (a pandas index) are ignored.

The rules for every edge (labels, anony values, names, NUL bytes, BOM, CRLF …)
are the table in docs/VOTES.md ("Battle files: one reader, one rule per edge").
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from arena.names import model_name_error
from votes import features

# LMArena's winner vocabulary → outcome code. Labels are matched after
# trimming surrounding whitespace, case-sensitively.
LABELS = {
    "model_a": "a",
    "model_b": "b",
    "tie": "tie",
    "tie (bothbad)": "both_bad",
    "both_bad": "both_bad",
    "bothbad": "both_bad",
}
# Outcome code → score of model_a (a tie, of either kind, is half a win).
SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}

# Why a well-formed row is not rated (rate_battles skips it; import_battles stores it excluded).
SELF_BATTLE = "self_battle"  # model_a == model_b: no information
NAMED = "named"  # anony is false: the voter saw the names
EXCLUDED = "excluded"  # the file itself marks it excluded (export_battles --include-excluded)

STYLE_COUNT_MAX = 2**31 - 1  # the vote table's 4-byte style columns
TSTAMP_MAX = 32503680000  # year 3000
TRUE_WORDS = frozenset(("true", "1", "yes"))
FALSE_WORDS = frozenset(("false", "0", "no"))
MAX_JSON_ELEMENT = 256 * 2**20  # one array element larger than this is refused
CHUNK = 2**20
BOM = "\ufeff"


class BattleFileError(Exception):
    """The file as a whole can't be read (missing, not a battle file, no usable CSV header)."""


@dataclass(slots=True)
class BadRow:
    """A row that is not a battle, and why. ``fatal``: the rest of the file is unreadable."""

    path: str
    line: int
    reason: str
    fatal: bool = False

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(slots=True)
class Battle:
    """One valid row. ``winner`` is an outcome code (a, b, tie, both_bad);
    ``skip`` says why it is not rated ('' when it is: self_battle > named >
    excluded, in that order); ``get(field)`` reads any other field of the row
    (None when absent). ``line`` is 0 for a battle ``BattleFile.counted()`` merged from several lines."""

    path: str
    line: int
    model_a: str
    model_b: str
    winner: str
    anony: bool
    tstamp: float | None
    judge: str | None
    skip: str
    file_reason: str  # the file's exclusion_reason when it marks the row excluded, else ''
    get: Callable[[str], object]
    fields: Collection[str] = ()  # the row's field names (a JSON object's keys, a CSV header)

    @property
    def score(self) -> float:
        return SCORE[self.winner]


class _Bad(Exception):
    pass


# --------------------------------------------------------------------------
# field rules (shared by every format)


def _name(value, what: str) -> str:
    if value is None:
        raise _Bad(f"{what} is missing (a battle needs model_a and model_b and winner)")
    error = model_name_error(value, what)  # arena.names: surrounding whitespace is refused, not stripped
    if error is not None:
        raise _Bad(error)
    return value


def _winner(value) -> str:
    code = LABELS.get(value) if type(value) is str else None
    if code is None:
        code = LABELS.get(value.strip()) if isinstance(value, str) else None
        if code is None:
            raise _Bad(f"unknown winner {value!r} (expected {', '.join(LABELS)})")
    return code


def parse_bool(value, what: str) -> bool | None:
    """True/false in the spellings files use; None when absent or empty."""
    if value is None or value is True or value is False:
        return value
    if type(value) is int or (type(value) is float and value in (0.0, 1.0)):
        if value in (0, 1):
            return bool(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if not text:
            return None
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
    raise _Bad(f"{what} must be true or false, got {value!r}")


def _tstamp(value) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _Bad(f"tstamp must be a Unix time in seconds, got {value!r}")
    try:
        ts = float(value)
    except (TypeError, ValueError):
        raise _Bad(f"tstamp must be a Unix time in seconds, got {value!r}") from None
    if not math.isfinite(ts) or not (0 <= ts < TSTAMP_MAX):
        raise _Bad(f"tstamp out of range: {value!r}")
    return ts


def _number(value, what: str) -> None:
    if value is None or value == "":
        return
    try:
        if isinstance(value, bool) or not math.isfinite(float(value)):
            raise ValueError
    except (TypeError, ValueError):
        raise _Bad(f"{what} must be a number, got {value!r}") from None


def meta_style(meta: dict) -> list[int]:
    """The eight style counts (a then b) of a clean_battle ``conv_metadata``."""
    try:
        counts = [*features.from_conv_metadata(meta, "a"), *features.from_conv_metadata(meta, "b")]
    except (TypeError, ValueError, OverflowError, AttributeError):
        raise _Bad("conv_metadata: the token, header, list and bold counts must be numbers") from None
    if not all(0 <= c <= STYLE_COUNT_MAX for c in counts):
        raise _Bad(f"conv_metadata: style counts must be between 0 and {STYLE_COUNT_MAX}, got {counts}")
    return counts


def _battle(path: str, line: int, get, winner, code: str | None = None, fields: Collection[str] = ()) -> Battle:
    """Validate one row read through ``get``: ``winner`` is the row's label,
    or ``code`` the outcome the CSV one-hot columns gave."""
    ma = _name(get("model_a"), "model_a")
    mb = _name(get("model_b"), "model_b")
    if code is None:
        if winner is None:
            raise _Bad("winner is missing (a battle needs model_a and model_b and winner)")
        code = _winner(winner)
    anony = parse_bool(get("anony"), "anony")
    ts = _tstamp(get("tstamp"))
    judge = get("judge")
    if judge is not None:
        judge = str(judge).strip() or None
        if judge and "\x00" in judge:
            raise _Bad("judge contains a NUL character (\\u0000), which the database cannot store")
    _number(get("turn"), "turn")
    _number(get("prompt_tokens"), "prompt_tokens")
    meta = get("conv_metadata")
    if isinstance(meta, dict):
        meta_style(meta)
    excluded = get("excluded")
    file_reason = ""
    if excluded is not None and excluded is not False and _truthy(excluded):
        file_reason = str(get("exclusion_reason") or "excluded").replace("\x00", "").strip() or "excluded"
    if ma == mb:
        skip = SELF_BATTLE
    elif anony is False:
        skip = NAMED
    elif file_reason:
        skip = EXCLUDED
    else:
        skip = ""
    return Battle(path, line, ma, mb, code, anony is not False, ts, judge, skip, file_reason, get, fields)


def _truthy(value) -> bool:
    return value is True or value == 1 or (isinstance(value, str) and value.strip().lower() in TRUE_WORDS)


# --------------------------------------------------------------------------
# style counts for rate_battles --style-control (pure; the importer computes its own columns)


def row_style(get) -> tuple[tuple, tuple] | None:
    """(a, b) four style counts each, from conv_metadata, the conversations or
    CSV response_a/response_b; None when the row holds none of them."""
    meta = get("conv_metadata")
    if isinstance(meta, dict):
        counts = meta_style(meta)
        return tuple(counts[:4]), tuple(counts[4:])
    conv_a, conv_b = get("conversation_a"), get("conversation_b")
    if isinstance(conv_a, list) and isinstance(conv_b, list):
        return features.conversation_counts(_answers(conv_a)), features.conversation_counts(_answers(conv_b))
    resp_a, resp_b = get("response_a"), get("response_b")
    if resp_a is not None and resp_b is not None:
        return features.conversation_counts(text_list(resp_a)), features.conversation_counts(text_list(resp_b))
    return None


def _answers(conv: list) -> list[str]:
    return [
        m["content"]
        for m in conv
        if isinstance(m, dict) and m.get("role") in ("assistant", "gpt") and isinstance(m.get("content"), str)
    ]


def text_list(value) -> list[str]:
    """A JSON-list cell (arena-human-preference) or a plain string, as a list of strings."""
    if value is None:
        return []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                parsed = json.loads(stripped)
            except json.JSONDecodeError:
                return [value]
            if isinstance(parsed, list):
                return [v if isinstance(v, str) else ("" if v is None else str(v)) for v in parsed]
        return [value] if value else []
    return []


# --------------------------------------------------------------------------
# the file


def sniff(head: bytes) -> str:
    text = head.decode("utf-8", errors="ignore").lstrip(BOM + " \t\r\n")
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        return "jsonl"
    first = text.split("\n", 1)[0]
    if "model_a" in first and "model_b" in first:
        return "csv"
    return "unknown"


class BattleFile:
    """One battle file. Iterate it for ``Battle`` and ``BadRow`` items in file
    order; ``done``/``size`` are bytes read so far and in all (a progress bar);
    ``warnings`` collects file-level remarks (both commands print them)."""

    def __init__(self, path):
        self.path = str(path)
        try:
            self.size = max(1, os.path.getsize(self.path))
            with open(self.path, "rb") as f:
                head = f.read(65536)
        except OSError as exc:
            raise BattleFileError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        self.kind = sniff(head)
        if self.kind == "unknown":
            raise BattleFileError(
                f"{self.path}: not a battle file (expected a clean_battle JSON array, JSON Lines, "
                "or CSV with model_a, model_b and winner or winner_model_a/winner_model_b/winner_tie)"
            )
        self.done = 0
        self.warnings: list[str] = []
        self._header = None
        if self.kind == "csv":
            self._header = self._csv_header(head)

    def __iter__(self) -> Iterator[Battle | BadRow]:
        if self.kind == "json":
            return self._json_array()
        if self.kind == "jsonl":
            return self._jsonl()
        return self._csv()

    # -- JSON Lines ------------------------------------------------------
    def _jsonl(self) -> Iterator[Battle | BadRow]:
        path = self.path
        decode = json.JSONDecoder().raw_decode
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                self.done += len(raw)
                if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[3:]
                if b"\x00" in raw:
                    yield BadRow(path, lineno, "contains a NUL byte")
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield BadRow(path, lineno, f"not UTF-8 text (byte {exc.start} of the line)")
                    continue
                if text[:1] != "{":
                    text = text.lstrip(" \t\r\n")
                    if not text:
                        continue
                try:
                    rec, end = decode(text)
                    if end < len(text) and not text[end:].isspace():
                        raise json.JSONDecodeError("extra data after the object", text, end)
                except json.JSONDecodeError as exc:
                    yield BadRow(path, lineno, f"invalid JSON ({exc.msg})")
                    continue
                yield self._record(rec, lineno)

    def _record(self, rec, line: int) -> Battle | BadRow:
        if type(rec) is not dict:
            return BadRow(self.path, line, "expected a JSON object with model_a, model_b, winner")
        get = rec.get
        try:
            return _battle(self.path, line, get, get("winner"), None, rec)
        except _Bad as exc:
            return BadRow(self.path, line, str(exc))

    # -- JSON array --------------------------------------------------------
    def _json_array(self) -> Iterator[Battle | BadRow]:
        """Element by element on a sliding buffer: memory is one chunk plus
        the largest element, and every element knows its line."""
        path = self.path
        raw_decode = json.JSONDecoder().raw_decode
        utf8 = codecs.getincrementaldecoder("utf-8")()
        f = open(path, "rb")  # noqa: SIM115 - a generator: closed in its finally
        buf, i, line, eof = "", 0, 1, False

        def more() -> None:
            nonlocal buf, i, eof
            data = f.read(max(len(buf) - i, CHUNK))
            self.done += len(data)
            eof = not data
            if i:
                buf, i = buf[i:], 0
            buf += utf8.decode(data, final=eof)

        def skip_ws() -> None:
            nonlocal i, line
            while True:
                n = len(buf)
                j = i
                while j < n and buf[j] in " \t\r\n\ufeff":
                    j += 1
                line += buf.count("\n", i, j)
                i = j
                if i < n or eof:
                    return
                more()

        try:
            try:
                skip_ws()
                if buf[i : i + 1] != "[":
                    yield BadRow(path, line, "not a JSON array", fatal=True)
                    return
                i += 1
                while True:
                    skip_ws()
                    if buf[i : i + 1] == "]":
                        i += 1
                        skip_ws()
                        if i < len(buf):
                            yield BadRow(path, line, "extra data after the JSON array; ignored", fatal=True)
                        return
                    if i >= len(buf):
                        yield BadRow(path, line, "the JSON array is not closed", fatal=True)
                        return
                    try:
                        rec, end = raw_decode(buf, i)
                        # An element must be followed by ',' or ']': one that
                        # ends the buffer may continue in the next chunk.
                        complete = end < len(buf) or eof
                    except json.JSONDecodeError as exc:
                        truncated = exc.pos >= len(buf) - 64 or exc.msg.startswith("Unterminated string")
                        if not eof and truncated and len(buf) - i < MAX_JSON_ELEMENT:
                            more()
                            continue
                        bad_line = line + buf.count("\n", i, exc.pos)
                        yield BadRow(path, bad_line, f"invalid JSON ({exc.msg}); rest of file unread", fatal=True)
                        return
                    if not complete:
                        more()
                        continue
                    yield self._record(rec, line)
                    line += buf.count("\n", i, end)
                    i = end
                    skip_ws()
                    sep = buf[i : i + 1]
                    if sep == ",":
                        i += 1
                    elif not sep:
                        yield BadRow(path, line, "the JSON array is not closed", fatal=True)
                        return
                    elif sep != "]":
                        yield BadRow(
                            path, line, "expected ',' or ']' in the JSON array; rest of file unread", fatal=True
                        )
                        return
            except UnicodeDecodeError as exc:
                yield BadRow(path, line, f"not UTF-8 text ({exc.reason}); rest of file unread", fatal=True)
        finally:
            f.close()
            self.done = self.size

    # -- CSV ---------------------------------------------------------------
    def _csv_header(self, head: bytes) -> dict:
        first = head.split(b"\n", 1)[0]
        try:
            header = next(csv.reader([first.decode("utf-8").lstrip(BOM).rstrip("\r")]))
        except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
            raise BattleFileError(f"{self.path}:1: unreadable CSV header ({exc})") from None
        header = [h.strip() for h in header]
        cols = {h: i for i, h in enumerate(header) if h}
        if "model_a" not in cols or "model_b" not in cols:
            raise BattleFileError(f"{self.path}:1: CSV needs model_a and model_b columns (found {', '.join(header)})")
        one_hot = [cols.get(c) for c in ("winner_model_a", "winner_model_b", "winner_tie")]
        has_one_hot = all(k is not None for k in one_hot)
        if "winner" not in cols and not has_one_hot:
            raise BattleFileError(
                f"{self.path}:1: CSV needs a winner column, or winner_model_a/winner_model_b/winner_tie"
            )
        if "winner" in cols and has_one_hot:
            self.warnings.append(
                f"{self.path}: both a winner column and winner_model_a/winner_model_b/winner_tie; "
                "the one-hot columns decide"
            )
        return {"cols": cols, "width": len(header), "one_hot": one_hot if has_one_hot else None}

    def _lines(self, f, flagged: dict, offset: int) -> Iterator[str]:
        """Decoded lines for csv.reader; lines with a NUL byte or bad UTF-8 are
        remembered by number (``flagged``) and their rows reported bad."""
        for lineno, raw in enumerate(f, offset + 1):
            self.done += len(raw)
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[3:]
            if b"\x00" in raw:
                flagged[lineno] = "contains a NUL byte"
                raw = raw.replace(b"\x00", b"")
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                flagged.setdefault(lineno, f"not UTF-8 text (byte {exc.start} of the line)")
                yield raw.decode("utf-8", errors="replace")

    def _csv(self, skip_lines: int = 0, f=None) -> Iterator[Battle | BadRow]:
        path = self.path
        h = self._header
        cols, width, one_hot = h["cols"], h["width"], h["one_hot"]
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # whole conversations sit in one cell
        flagged: dict[int, str] = {}
        own = f is None
        if own:
            f = open(path, "rb")  # noqa: SIM115 - a generator: closed in its finally
        try:
            reader = csv.reader(self._lines(f, flagged, skip_lines))
            if not skip_lines:
                try:
                    next(reader)
                except (StopIteration, csv.Error):
                    return
            line_end = reader.line_num + skip_lines
            iw = cols.get("winner")
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:  # an unclosed quote: the rest can't be trusted
                    yield BadRow(path, line_end + 1, f"unreadable CSV ({exc}); rest of file unread", fatal=True)
                    return
                line = line_end + 1  # a row starts after the previous one ended (quoted cells span lines)
                line_end = reader.line_num + skip_lines
                if flagged:
                    why = next((flagged.pop(k) for k in range(line, line_end + 1) if k in flagged), None)
                    if why is not None:
                        yield BadRow(path, line, why)
                        continue
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != width:
                    yield BadRow(path, line, f"expected {width} columns, found {len(row)}")
                    continue
                yield self._csv_row(row, line, cols, one_hot, iw)
        finally:
            if own:
                f.close()

    def _csv_row(self, row: list[str], line: int, cols: dict, one_hot, iw) -> Battle | BadRow:
        def get(name, _row=row, _cols=cols):
            k = _cols.get(name)
            return None if k is None else _row[k]

        try:
            if one_hot is not None:
                flags = [_flag(row[k]) for k in one_hot]
                if sum(flags) != 1:
                    raise _Bad("exactly one of winner_model_a, winner_model_b, winner_tie must be 1")
                return _battle(self.path, line, get, None, ("a", "b", "tie")[flags.index(1)], cols)
            return _battle(self.path, line, get, row[iw], None, cols)
        except _Bad as exc:
            return BadRow(self.path, line, str(exc))

    # -- counted (rate_battles' fast path) ---------------------------------
    def counted(self) -> Iterator[tuple[Battle | BadRow, int]]:
        """The same battles and bad rows as iterating, in another order, as
        (item, how many times): identical lines of a plain model_a,model_b,winner
        CSV (a million lines, a few thousand distinct ones) are read once per
        block of lines and once per distinct line while they fit a bounded
        cache. Other files: each row once, (item, 1). A counted Battle is
        shared by all its lines (``line`` 0): use it before the next item."""
        h = self._header
        plain = h is not None and h["one_hot"] is None and set(h["cols"]) <= {"model_a", "model_b", "winner"}
        if not plain:
            for item in self:
                yield item, 1
            return
        cols, width = h["cols"], h["width"]
        known: dict[bytes, Battle | BadRow | None] = {}  # a distinct line → what it is (None: blank)
        tally: Counter = Counter()  # distinct lines → how many, across blocks, until it holds too many

        def flush() -> Iterator[tuple[Battle, int]]:
            for raw, n in tally.items():
                item = known[raw]
                if type(item) is Battle:
                    yield item, n
            tally.clear()
            known.clear()

        with open(self.path, "rb") as f:
            first = f.readline()
            self.done += len(first)
            lineno = 1
            while True:
                block = f.read(8 * CHUNK)
                if not block:
                    break
                block += f.readline()  # end on a line boundary
                if b'"' in block or b"\x00" in block or block.count(b"\r") != block.count(b"\r\n"):
                    # Quoted cells (which may hold commas and newlines) and
                    # other oddities: csv.reader for the rest, with the same rules.
                    yield from flush()
                    f.seek(self.done)
                    for item in self._csv(skip_lines=lineno, f=f):
                        yield item, 1
                    return
                self.done += len(block)
                lines = block.split(b"\n")
                if lines[-1] == b"":
                    lines.pop()
                counts = Counter(lines)
                for raw in counts:
                    item = known.get(raw, False)
                    if item is False:
                        item = known[raw] = self._counted_line(raw, cols, width)
                    if type(item) is BadRow:  # one per occurrence, each with its own line
                        for k, other in enumerate(lines):
                            if other == raw:
                                yield BadRow(self.path, lineno + 1 + k, item.reason), 1
                tally.update(counts)
                lineno += len(lines)
                if len(tally) > 200_000:  # bounded: a file of distinct lines gains nothing here
                    yield from flush()
        yield from flush()
        self.done = self.size

    def _counted_line(self, raw: bytes, cols, width) -> Battle | BadRow | None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return BadRow(self.path, 0, f"not UTF-8 text (byte {exc.start} of the line)")
        text = text.rstrip("\r")
        if not text.strip():
            return None
        row = text.split(",")
        if len(row) != width:
            return BadRow(self.path, 0, f"expected {width} columns, found {len(row)}")
        ma, mb, label = row[cols["model_a"]], row[cols["model_b"]], row[cols["winner"]]
        # What _battle makes of a row with only these three fields, without its lookups of the absent ones.
        try:
            ma, mb, code = _name(ma, "model_a"), _name(mb, "model_b"), _winner(label)
        except _Bad as exc:
            return BadRow(self.path, 0, str(exc))
        get = {"model_a": ma, "model_b": mb, "winner": label}.get
        return Battle(self.path, 0, ma, mb, code, True, None, None, SELF_BATTLE if ma == mb else "", "", get, cols)


def _flag(cell: str) -> int:
    text = cell.strip().lower()
    if text in ("1", "1.0", "true"):
        return 1
    if text in ("0", "0.0", "false", ""):
        return 0
    raise _Bad(f"winner_model_a/winner_model_b/winner_tie must be 0 or 1, got {cell!r}")


def read(path) -> Iterator[Battle | BadRow]:
    """Every row of one file in order (BattleFileError when the file can't be read at all)."""
    return iter(BattleFile(path))

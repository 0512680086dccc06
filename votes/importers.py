"""Import battle files as votes: ``manage.py import_battles FILE…``.

Formats, detected from the content (not the file name):

- LMArena clean_battle: a JSON array or JSON Lines of records with
  model_a, model_b, winner (model_a | model_b | tie | tie (bothbad) | both_bad),
  optionally anony, tstamp, judge, question_id, turn, language,
  conversation_a/b (full chats), turns (the user prompts), conv_metadata.
  The MT-bench human judgments (question_id, judge, turn, conversation_a/b)
  are the same shape and read the same way; so is ``export_battles`` output.
- CSV with model_a, model_b and either winner (same labels) or the
  arena-human-preference one-hot columns winner_model_a/winner_model_b/winner_tie,
  optionally id, judge, tstamp, anony, language, turn and the JSON-list columns
  prompt, response_a, response_b. An unnamed first column (a pandas index) is
  ignored: it is a row position, not an identity.

Each row becomes one ``Vote`` (source ``import``) whose ``external_key`` is
``dedupe_key()``: re-importing a file adds nothing. Parsing (``read_votes``)
touches no database; ``import_files`` adds the writes. docs/VOTES.md has the
decisions (dedupe key, exclusions, speed).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from arena.names import model_name_error

from . import features
from .models import STYLE_COUNT_MAX, STYLE_FIELDS, ExclusionReason, style_columns

# Winner labels (LMArena vocabulary; the same set ratings.battle_files reads)
# to Vote.winner.
LABELS = {
    "model_a": "a",
    "model_b": "b",
    "tie": "tie",
    "tie (bothbad)": "both_bad",
    "both_bad": "both_bad",
    "bothbad": "both_bad",
}
SHARED_VOTER_KEY = "import:unknown"  # every vote whose file names no judge
VOTER_KEY_MAX = 64
BAD_ROWS_SHOWN = 20
KEY_CONSTRAINT = "votes_vote_external_key_unique"
IMPORT_LOCK_ID = 0x766F746573  # pg_advisory_xact_lock key serialising imports ("votes")
ID_COLUMNS = ("id", "battle_id", "question_id")

# LMArena labels languages by name; Vote.language holds a short code.
LANGUAGE_CODES = {
    "english": "en", "chinese": "zh", "german": "de", "french": "fr", "spanish": "es", "russian": "ru",
    "japanese": "ja", "korean": "ko", "portuguese": "pt", "italian": "it", "arabic": "ar", "hindi": "hi",
    "greek": "el", "hebrew": "he", "thai": "th", "polish": "pl", "dutch": "nl", "turkish": "tr",
    "vietnamese": "vi", "indonesian": "id", "ukrainian": "uk", "persian": "fa", "swedish": "sv",
    "czech": "cs", "hungarian": "hu", "romanian": "ro", "danish": "da", "finnish": "fi", "norwegian": "no",
}  # fmt: skip


class ImportFailed(Exception):
    """The files were not imported; nothing was written. ``bad_rows`` say why."""

    def __init__(self, message: str, bad_rows: list[BadRow] | None = None, bad_count: int = 0):
        super().__init__(message)
        self.bad_rows = bad_rows or []
        self.bad_count = bad_count or len(self.bad_rows)


@dataclass(slots=True)
class BadRow:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


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


@dataclass
class ImportStats:
    files: int = 0
    rows: int = 0
    added: int = 0
    already_present: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    bad_count: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    models_created: list[str] = field(default_factory=list)
    voters_created: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------
# dedupe key


def dedupe_key(namespace: str, fields: tuple, ordinal: int) -> str:
    """The external key of one row: sha256 over the row's identifying fields
    (behind a time prefix when the row has a tstamp, see _with_time_prefix).

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
    return _with_time_prefix(hashlib.sha256(text.encode()).hexdigest(), fields[2])


def _with_time_prefix(hexdigest: str, tstamp: str) -> str:
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


def _scalar(value) -> str:
    # str(float) is its shortest round-trip repr, so a tstamp reads the same
    # from a JSON array, JSON Lines or our own export.
    return "" if value is None else str(value)


# --------------------------------------------------------------------------
# parsing (no database)


class _RowError(Exception):
    pass


def _winner(label) -> str:
    code = LABELS.get(label) if type(label) is str else None
    if code is not None:
        return code
    code = LABELS.get(label.strip()) if isinstance(label, str) else None
    if code is None:
        raise _RowError(f"unknown winner {label!r} (expected {', '.join(LABELS)})")
    return code


def _model(name, side: str) -> str:
    # arena.names is the one rule for model names (cached: a file repeats a few hundred names).
    error = model_name_error(name, f"model_{side}")
    if error is not None:
        raise _RowError(error)
    return name


def _tstamp(value) -> float | None:
    if value is None or value == "":
        return None
    try:
        ts = float(value)
    except (TypeError, ValueError):
        raise _RowError(f"tstamp must be a Unix time in seconds, got {value!r}") from None
    if not math.isfinite(ts) or not (0 <= ts < 32503680000):  # 1970 .. 3000
        raise _RowError(f"tstamp out of range: {value!r}")
    return ts


def _anony(value) -> bool:
    """True unless the row says the battle was not anonymous."""
    if value is None or value == "" or value is True:
        return True
    if value is False:
        return False
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise _RowError(f"anony must be true or false, got {value!r}")


def _language(label, prompt: str | None) -> str:
    if isinstance(label, str) and label.strip():
        text = label.strip()
        code = LANGUAGE_CODES.get(text.lower())
        if code:
            return code
        if len(text) <= 8 and text.replace("-", "").isalpha():
            return text.lower()
    return features.language(prompt) if prompt else ""


def _text_list(value) -> list[str]:
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


def _conversation(conv) -> tuple[list[str], list[str]]:
    """(user turns, assistant turns) of a FastChat/LMArena conversation."""
    users, answers = [], []
    for message in conv:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if not isinstance(content, str):
            continue
        role = message.get("role")
        if role in ("user", "human"):
            users.append(content)
        elif role in ("assistant", "gpt"):
            answers.append(content)
    return users, answers


def _features(get) -> dict | None:
    """The per-vote feature columns (votes.services.text_features) from
    whatever the row holds: conversations, prompts/responses, or the
    precomputed fields our own export writes. None: nothing to go on."""
    from .services import text_features  # Django app code; imported late so parsing stays importable

    conv_a, conv_b = get("conversation_a"), get("conversation_b")
    if isinstance(conv_a, list) and isinstance(conv_b, list):
        users, answers_a = _conversation(conv_a)
        users_b, answers_b = _conversation(conv_b)
        users = users or users_b
        prompt = users[0] if users else ""
        out = text_features(prompt, answers_a, answers_b, n_turns=len(users))
        out["language"] = _language(get("language"), prompt)
        return out
    prompts = _text_list(get("prompt")) or _text_list(get("turns"))
    resp_a, resp_b = get("response_a"), get("response_b")
    if prompts or resp_a is not None or resp_b is not None:
        prompt = prompts[0] if prompts else ""
        answers_a, answers_b = _text_list(resp_a), _text_list(resp_b)
        out = text_features(prompt, answers_a, answers_b, n_turns=len(prompts))
        out["language"] = _language(get("language"), prompt)
        if resp_a is None and resp_b is None:
            out.update(style_columns(None))
        return out
    meta = get("conv_metadata")
    precomputed = any(get(k) not in (None, "") for k in ("language", "is_code", "prompt_tokens", "turn"))
    if not isinstance(meta, dict) and not precomputed:
        return None
    out = {"language": _language(get("language"), None), "is_code": False, "prompt_tokens": 0, "turns": 1,
           **style_columns(_meta_style(meta) if isinstance(meta, dict) else None)}  # fmt: skip
    is_code = get("is_code")
    out["is_code"] = is_code is True or (isinstance(is_code, str) and is_code.strip().lower() in ("true", "1"))
    for column, name in (("prompt_tokens", "prompt_tokens"), ("turn", "turns")):
        value = get(column)
        if value not in (None, ""):
            try:
                out[name] = max(0 if name == "prompt_tokens" else 1, int(float(value)))
            except (TypeError, ValueError):
                raise _RowError(f"{column} must be a number, got {value!r}") from None
    return out


def _meta_style(meta: dict) -> list[int]:
    """The eight style counts of a clean_battle ``conv_metadata``."""
    try:
        counts = [*features.from_conv_metadata(meta, "a"), *features.from_conv_metadata(meta, "b")]
    except (TypeError, ValueError, OverflowError):
        raise _RowError("conv_metadata: the token, header, list and bold counts must be numbers") from None
    if not all(0 <= c <= STYLE_COUNT_MAX for c in counts):
        raise _RowError(f"conv_metadata: style counts must be between 0 and {STYLE_COUNT_MAX}, got {counts}")
    return counts


def _finish(get, ma: str, mb: str, winner: str, namespace: str, seen: dict, want_features: bool) -> ParsedVote:
    """Shared tail of the JSON and CSV paths: key, exclusion, features.

    ``get(name)`` reads a field of the row (None when absent)."""
    raw_ts = get("tstamp")
    ts = None if raw_ts is None else _tstamp(raw_ts)
    judge = get("judge")
    if judge is not None:
        judge = str(judge).strip() or None
        if judge and "\x00" in judge:
            raise _RowError("judge contains a NUL character (\\u0000), which the database cannot store")
    anony = get("anony")
    anony = True if anony is True or anony is None else _anony(anony)
    ident = get("id")
    if ident is None or ident == "":
        ident = get("battle_id")
    fields = (_scalar(ident), _scalar(get("question_id")), _scalar(raw_ts), judge or "", _scalar(get("turn")),
              ma, mb, winner)  # fmt: skip
    first = hashlib.sha256("\x1f".join((namespace, *fields)).encode())
    # 64 bits of the digest are plenty to count repeats within one file; a
    # collision would only shift an ordinal, never merge two different rows.
    digest = first.digest()[:8]
    ordinal = seen.get(digest, 0)
    seen[digest] = ordinal + 1
    key = _with_time_prefix(first.hexdigest(), fields[2]) if ordinal == 0 else dedupe_key(namespace, fields, ordinal)
    if ma == mb:
        reason = ExclusionReason.SELF_BATTLE
    elif not anony:
        reason = ExclusionReason.NAMED
    else:
        reason = ""
        excluded = get("excluded")
        if excluded is not None and _truthy(excluded):
            original = str(get("exclusion_reason") or "excluded").strip().replace("\x00", "") or "excluded"
            if original in (ExclusionReason.NAMED, ExclusionReason.SELF_BATTLE):
                reason = original
            elif original.startswith(ExclusionReason.IMPORTED_PREFIX):
                reason = original[:64]
            else:  # another system's exclusion (e.g. its anomaly flags): kept, never undone here
                reason = (ExclusionReason.IMPORTED_PREFIX + original)[:64]
    feats = _features(get) if want_features else None
    return ParsedVote(ma, mb, winner, ts, judge, key, reason, feats)


def _truthy(value) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"))


_FEATURE_FIELDS = frozenset(("conversation_a", "conversation_b", "turns", "prompt", "response_a", "response_b",
                             "conv_metadata", "language", "is_code", "prompt_tokens", "turn"))  # fmt: skip


def _record(rec, namespace: str, seen: dict) -> ParsedVote:
    if not isinstance(rec, dict):
        raise _RowError("expected a JSON object with model_a, model_b, winner")
    ma = _model(rec.get("model_a"), "a")
    mb = _model(rec.get("model_b"), "b")
    winner = _winner(rec.get("winner"))
    return _finish(rec.get, ma, mb, winner, namespace, seen, not _FEATURE_FIELDS.isdisjoint(rec))


class _Source:
    """One file: bytes read so far (for the progress bar) and its rows."""

    def __init__(self, path: str):
        self.path = path
        self.size = max(1, os.path.getsize(path))
        self.done = 0


def _sniff(head: bytes) -> str:
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        return "jsonl"
    first = text.split("\n", 1)[0]
    if "model_a" in first and "model_b" in first:
        return "csv"
    return "unknown"


def _read_jsonl(src: _Source, namespace: str) -> Iterator[ParsedVote | BadRow]:
    seen: dict = {}
    decode = json.JSONDecoder().raw_decode
    with open(src.path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            src.done += len(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield BadRow(src.path, lineno, f"not UTF-8 text (byte {exc.start} of the line)")
                continue
            if text.isspace() or not text:
                continue
            try:
                if text[0] != "{":
                    text = text.lstrip(" \t\r\ufeff")
                rec, end = decode(text)
                if end < len(text) and not text[end:].isspace():
                    raise json.JSONDecodeError("extra data after the object", text, end)
            except json.JSONDecodeError as exc:
                yield BadRow(src.path, lineno, f"invalid JSON ({exc.msg})")
                continue
            try:
                yield _record(rec, namespace, seen)
            except _RowError as exc:
                yield BadRow(src.path, lineno, str(exc))


def _read_json_array(src: _Source, namespace: str) -> Iterator[ParsedVote | BadRow]:
    """A JSON array, one element at a time (raw_decode), with line numbers."""
    text = _decode(src)
    dec = json.JSONDecoder()
    n = len(text)

    def skip(i: int) -> int:
        while i < n and text[i] in " \t\r\n\ufeff":
            i += 1
        return i

    i = skip(0)
    if text[i : i + 1] != "[":
        yield BadRow(src.path, 1, "not a JSON array")
        return
    i = skip(i + 1)
    seen: dict = {}
    line, counted = 1, 0
    while i < n and text[i] != "]":
        line += text.count("\n", counted, i)
        counted = i
        try:
            rec, end = dec.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            yield BadRow(src.path, text.count("\n", 0, exc.pos) + 1, f"invalid JSON ({exc.msg}); rest of file unread")
            return
        src.done = int(src.size * end / n)
        try:
            yield _record(rec, namespace, seen)
        except _RowError as exc:
            yield BadRow(src.path, line, str(exc))
        i = skip(end)
        if text[i : i + 1] == ",":
            i = skip(i + 1)
        elif text[i : i + 1] != "]":
            yield BadRow(src.path, text.count("\n", 0, i) + 1, "expected ',' or ']' in the JSON array; rest unread")
            return
    if text[i : i + 1] != "]":
        yield BadRow(src.path, text.count("\n") + 1, "the JSON array is not closed")
    src.done = src.size


def _decode(src: _Source) -> str:
    raw = Path(src.path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ImportFailed(f"{src.path}:{line}: not UTF-8 text (byte {exc.start})") from None


def _read_csv(src: _Source, namespace: str) -> Iterator[ParsedVote | BadRow]:
    def lines():
        with open(src.path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                src.done += len(raw)
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ImportFailed(f"{src.path}:{lineno}: not UTF-8 text") from None

    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # whole conversations sit in one cell
    reader = csv.reader(lines())
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise ImportFailed(f"{src.path}:1: unreadable CSV header ({exc})") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    cols = {h: i for i, h in enumerate(header) if h}
    if "model_a" not in cols or "model_b" not in cols:
        raise ImportFailed(f"{src.path}:1: CSV needs model_a and model_b columns (found {', '.join(header)})")
    one_hot = [cols.get(c) for c in ("winner_model_a", "winner_model_b", "winner_tie")]
    has_one_hot = all(i is not None for i in one_hot)
    if "winner" not in cols and not has_one_hot:
        raise ImportFailed(f"{src.path}:1: CSV needs a winner column, or winner_model_a/winner_model_b/winner_tie")
    want = any(c in cols for c in _FEATURE_FIELDS)
    seen: dict = {}
    width = len(header)
    line_end = 1
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a NUL byte or an unclosed quote: the rest can't be trusted
            yield BadRow(src.path, line_end + 1, f"unreadable CSV ({exc}); rest of file unread")
            return
        line = line_end + 1  # the row starts after the previous one ended (quoted cells may span lines)
        line_end = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != width:
            yield BadRow(src.path, line, f"expected {width} columns, found {len(row)}")
            continue

        def get(name, _row=row):
            i = cols.get(name)
            return None if i is None else _row[i]

        try:
            ma = _model(row[cols["model_a"]], "a")
            mb = _model(row[cols["model_b"]], "b")
            if has_one_hot:
                flags = [row[i].strip() for i in one_hot]
                if sorted(flags) != ["0", "0", "1"]:
                    raise _RowError("exactly one of winner_model_a, winner_model_b, winner_tie must be 1")
                winner = ("a", "b", "tie")[flags.index("1")]
            else:
                winner = _winner(row[cols["winner"]])
            yield _finish(get, ma, mb, winner, namespace, seen, want)
        except _RowError as exc:
            yield BadRow(src.path, line, str(exc))


def read_votes(
    path: str | Path, *, namespace: str = "", source: _Source | None = None
) -> Iterator[ParsedVote | BadRow]:
    """Parse one battle file. Yields a ParsedVote per good row and a BadRow
    (with its line number) per bad one. Raises ImportFailed when the file as
    a whole can't be read (missing, not a battle file, no usable header)."""
    path = str(path)
    try:
        src = source or _Source(path)
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read ({exc.strerror or exc})") from None
    kind = _sniff(head)
    if kind == "json":
        return _read_json_array(src, namespace)
    if kind == "jsonl":
        return _read_jsonl(src, namespace)
    if kind == "csv":
        return _read_csv(src, namespace)
    raise ImportFailed(
        f"{path}: not a battle file (expected a clean_battle JSON array, JSON Lines, "
        "or CSV with model_a, model_b and winner or winner_model_a/winner_model_b/winner_tie)"
    )


# --------------------------------------------------------------------------
# progress


class Progress:
    """A progress bar on a terminal; a line every 10 s otherwise; or nothing."""

    def __init__(self, total_bytes: int, stream=None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.total = max(1, total_bytes)
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = tty if enabled is None else enabled
        self.tty = tty
        self.started = time.perf_counter()
        self.last = 0.0

    def update(self, done_bytes: int, rows: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < (0.2 if self.tty else 10.0):
            return
        self.last = now
        frac = min(1.0, done_bytes / self.total)
        rate = rows / max(now - self.started, 1e-9)
        if self.tty:
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r[{bar:<30}] {frac:4.0%} {rows:>10,} rows {rate:>9,.0f}/s")
        else:
            self.stream.write(f"import: {frac:4.0%} {rows:,} rows {rate:,.0f}/s\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------
# database writes

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


class _Writer:
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
                self.copy_cm.__exit__(ImportFailed, ImportFailed("aborted"), None)
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
        except Exception as exc:  # the server rejected the COPY early
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
        for start in range(0, len(keys), 2000):  # small arrays keep the planner on the unique index
            self.cursor.execute(
                "SELECT external_key FROM votes_vote WHERE external_key = ANY(%s)", [keys[start : start + 2000]]
            )
            taken.update(row[0] for row in self.cursor.fetchall())
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


CHUNK = 2000  # rows parsed between two writes: small, so PostgreSQL is never left waiting long


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
    sources = [_Source(p) for p in paths]
    bar = Progress(sum(s.size for s in sources), stream=progress_stream, enabled=progress)
    try:
        with transaction.atomic():
            writer = _Writer(status=status, now=datetime.now(UTC), stats=stats, batch_size=batch_size)
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


def _import_rows(sources, writer: _Writer, stats: ImportStats, bar: Progress, *, namespace: str,
                 skip_bad_rows: bool, on_bad_row) -> None:  # fmt: skip
    """Parse every file and hand good rows to the writer in chunks. In strict
    mode the first bad row stops the writing; parsing goes on so that every
    bad row is reported, then ImportFailed rolls everything back."""
    base = 0
    failed = False
    chunk: list[ParsedVote] = []
    chunk_size = min(CHUNK, writer.batch_size)
    for src in sources:
        for item in read_votes(src.path, namespace=namespace, source=src):
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
            if failed:
                continue
            chunk.append(item)
            if len(chunk) >= chunk_size:
                writer.add(chunk)
                chunk = []
                bar.update(base + src.done, stats.rows)
        base += src.size
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

"""Export votes as LMArena clean_battle JSON Lines, streamed.

One record per vote, in vote id order::

    {"question_id": …, "model_a": …, "model_b": …, "winner": "model_a" | "model_b" | "tie" | "tie (bothbad)",
     "judge": "u_…", "anony": true, "tstamp": 1700000000.123456, "turn": 1, "language": "en",
     "is_code": false, "prompt_tokens": 12, "conv_metadata": {…}, "source": "arena" | "import"}

- ``judge`` is a pseudonym: HMAC-SHA256(SECRET_KEY, voter key), 16 hex digits.
  Stable for one installation (the same voter always gets the same judge, so
  the anomaly detector and per-judge analyses still work on the file), and no
  raw voter key or session id is ever written.
- ``question_id`` is a keyed hash of the vote's identity, so importing the
  file twice elsewhere adds nothing the second time.
- ``conv_metadata`` carries the four style counts per side under FastChat's
  names, so ``rate_battles --style-control`` reads them.
- Excluded votes are left out unless asked for; then they carry
  ``"excluded": true`` and ``exclusion_reason`` (and ``anony: false`` for
  reason ``named``), and ``import_battles`` stores them excluded again.

Memory stays flat: rows come from ``QuerySet.iterator(chunk_size=…)`` (a
server-side cursor on PostgreSQL) and go out in small byte chunks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

from django.conf import settings

from arena.models import ArenaModel

from .models import STYLE_FIELDS, ExclusionReason, Vote

EXPORT_LABELS = {"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
CHUNK_ROWS = 2000
JUDGE_DIGITS = 16


def _mac(message: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()


def judge_pseudonym(voter_key: str) -> str:
    """The exported name of a voter: a keyed hash, never the key itself."""
    return "u_" + _mac("arena-judge\x1f" + voter_key)[:JUDGE_DIGITS]


def _question_id(vote_id: int, external_key: str | None) -> str:
    return _mac("arena-vote\x1f" + (external_key or f"id:{vote_id}"))[:32]


_FIELDS = (
    "id", "external_key", "voter__key", "model_a_id", "model_b_id", "winner", "created_at", "source", "language",
    "is_code", "prompt_tokens", "turns", "excluded", "exclusion_reason", *STYLE_FIELDS,
)  # fmt: skip
# FastChat's conv_metadata names for the eight style columns, in STYLE_FIELDS order.
_META_NAMES = (
    "sum_assistant_a_tokens", "header_count_a", "list_count_a", "bold_count_a",
    "sum_assistant_b_tokens", "header_count_b", "list_count_b", "bold_count_b",
)  # fmt: skip


def export_records(*, include_excluded: bool = False, chunk_size: int = CHUNK_ROWS) -> Iterator[dict]:
    """One clean_battle record per vote, in id order (see the module docstring)."""
    names = dict(ArenaModel.objects.values_list("id", "name"))
    qs = Vote.objects.all() if include_excluded else Vote.objects.filter(excluded=False)
    judges: dict[str, str] = {}
    for (vid, ext, vkey, ma, mb, winner, created, source, lang, is_code, ptok, turns, excluded, reason,
         *style) in qs.order_by("id").values_list(*_FIELDS).iterator(chunk_size=chunk_size):  # fmt: skip
        judge = judges.get(vkey)
        if judge is None:
            if len(judges) > 100_000:  # bounded memory on a huge export; recomputing is cheap
                judges.clear()
            judge = judges[vkey] = judge_pseudonym(vkey)
        rec = {
            "question_id": _question_id(vid, ext),
            "model_a": names[ma],
            "model_b": names[mb],
            "winner": EXPORT_LABELS[winner],
            "judge": judge,
            "anony": not (excluded and reason == ExclusionReason.NAMED),
            "tstamp": round(created.timestamp(), 6),
            "turn": turns,
            "language": lang,
            "is_code": is_code,
            "prompt_tokens": ptok,
            "source": source,
        }
        if style[0] is not None:
            rec["conv_metadata"] = dict(zip(_META_NAMES, style, strict=True))
        if excluded:
            rec["excluded"] = True
            rec["exclusion_reason"] = reason
        yield rec


def export_lines(*, include_excluded: bool = False, chunk_size: int = CHUNK_ROWS) -> Iterator[str]:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    for rec in export_records(include_excluded=include_excluded, chunk_size=chunk_size):
        yield dumps(rec) + "\n"


def export_chunks(*, include_excluded: bool = False, lines_per_chunk: int = 500) -> Iterator[bytes]:
    """JSONL as byte chunks of a few hundred lines: few writes, flat memory."""
    buf: list[str] = []
    for line in export_lines(include_excluded=include_excluded):
        buf.append(line)
        if len(buf) >= lines_per_chunk:
            yield "".join(buf).encode()
            buf = []
    if buf:
        yield "".join(buf).encode()

"""Style features of a response, as LMArena's style control counts them.

Pure Python (no Django): used when a battle is stored and by ``rate_battles``.
Four counts per response: tokens, markdown headers, list items, bold spans.
Tokens are approximated by words and punctuation marks (LMArena counts
tiktoken tokens; the feature is a normalised difference, so the scale cancels).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+|[^\w\s]")
_HEADER = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)


def style_counts(text: str) -> tuple[int, int, int, int]:
    """(tokens, headers, list_items, bold) of one response; code blocks count
    as tokens but not as markdown structure."""
    text = text or ""
    prose = _FENCE.sub("", text)
    return (
        len(_TOKEN.findall(text)),
        len(_HEADER.findall(prose)),
        len(_LIST.findall(prose)),
        len(_BOLD.findall(prose)),
    )


def conversation_counts(turns: list[str]) -> tuple[int, int, int, int]:
    """Sum of style_counts over a model's turns in a (multi-turn) conversation."""
    total = [0, 0, 0, 0]
    for t in turns:
        for i, v in enumerate(style_counts(t)):
            total[i] += v
    return (total[0], total[1], total[2], total[3])


def from_conv_metadata(meta: dict, side: str) -> tuple[int, int, int, int]:
    """FastChat clean_battle ``conv_metadata`` (side 'a' or 'b') to our four counts."""

    def total(value) -> int:
        if isinstance(value, dict):
            return int(sum(value.values()))
        return int(value or 0)

    return (
        total(meta.get(f"sum_assistant_{side}_tokens", 0)),
        total(meta.get(f"header_count_{side}", 0)),
        total(meta.get(f"list_count_{side}", 0)),
        total(meta.get(f"bold_count_{side}", 0)),
    )

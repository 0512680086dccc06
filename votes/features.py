"""Text features of a battle, computed once when it is stored: the style counts
LMArena's style control uses, and the category signals (language, code, length).

Pure Python (no Django): used when a battle is stored and by ``rate_battles``.
Four counts per response: tokens, markdown headers, list items, bold spans.
Tokens are approximated by words and punctuation marks (LMArena counts
tiktoken tokens; the feature is a normalised difference, so the scale cancels).
Scripts written without spaces between words count one token per character:
each Han character (Chinese, Japanese kanji), each Hiragana and Katakana
character, and each Hangul syllable. Counting a run of them as one word, as
before, made a 39-character Chinese sentence 6 tokens and a 14-word English
one 16, so CJK answers looked short to style control and CJK prompts never
reached the long-prompt view. Subword tokenizers also split CJK text into
about one token per character.
"""

from __future__ import annotations

import re

from arena.textmemo import per_text

# The vote path computes these for answers it has seen before (an answer set
# is shown again and again): each text's figures are kept (arena/textmemo.py).

# Han (the unified ideographs, extension A, compatibility ideographs, the
# supplementary planes' extensions), Hiragana, Katakana (with the phonetic
# extensions and the half-width forms), Hangul syllables and jamo.
_CJK = (
    "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
# one CJK character, or a run of other word characters, or one punctuation mark
_TOKEN = re.compile(f"[{_CJK}]|[^\\W{_CJK}]+|[^\\w\\s]")
_HEADER = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)


@per_text()
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


# --------------------------------------------------------------------------
# category signals (LMArena's leaderboard categories, by rule rather than a model)

_CODE_HINT = re.compile(
    r"```|^\s*(?:def |class |import |from \S+ import |#include|public static|function\s*\w*\(|const \w+ =|"
    r"SELECT .+ FROM |for \(.*;.*;|console\.log|print\()",
    re.MULTILINE | re.IGNORECASE,
)
_SCRIPTS = [
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("th", re.compile(r"[\u0e00-\u0e7f]")),
]
_STOPWORDS = {
    "en": {"the", "and", "is", "of", "to", "what", "how", "you", "a", "in", "it", "for", "with", "that"},
    "de": {"der", "die", "das", "und", "ist", "nicht", "ich", "wie", "was", "ein", "eine", "mit", "für"},
    "fr": {"le", "la", "les", "et", "est", "des", "une", "un", "pour", "que", "qui", "dans", "comment"},
    "es": {"el", "la", "los", "las", "y", "es", "que", "una", "por", "para", "cómo", "qué", "con"},
    "it": {"il", "lo", "gli", "e", "è", "che", "una", "per", "come", "non", "della", "con"},
    "pt": {"o", "os", "as", "e", "é", "que", "uma", "para", "como", "não", "com", "você"},
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@per_text()
def language(text: str) -> str:
    """A two-letter guess from the script, then from common words; '' if unsure."""
    text = text or ""
    for code, pattern in _SCRIPTS:
        if len(pattern.findall(text)) >= 2:
            return code
    words = [w.lower() for w in _WORD.findall(text)[:400]]
    if not words:
        return ""
    scores = {code: sum(w in stop for w in words) for code, stop in _STOPWORDS.items()}
    best = max(scores, key=lambda c: scores[c])
    return best if scores[best] >= 1 else ""


def has_code(*texts: str) -> bool:
    """Coding category: the prompt or an answer holds code."""
    return any(_holds_code(t or "") for t in texts)


@per_text()
def _holds_code(text: str) -> bool:
    return _CODE_HINT.search(text) is not None


@per_text()
def token_count(text: str) -> int:
    return len(_TOKEN.findall(text or ""))

"""Identity leaks: an answer that names its own model or maker ("I am
Claude, made by Anthropic") breaks the arena's anonymity. Such a battle is
marked and its vote stored but excluded (reason ``identity_leak``), as
LMArena drops them; the voter still gets the reveal."""

from __future__ import annotations

import re
from functools import lru_cache

from .models import ArenaModel
from .textmemo import per_text


def identity_words(model: ArenaModel) -> list[str]:
    """The words that give a model away: its own list, else its name, display
    name, organization and the name's leading part (``claude`` of
    ``claude-v1``). Words under 3 characters are ignored."""
    words = list(model.identity_words or [])
    if not words:
        words = [model.name, model.display_name, model.organization]
        head = re.split(r"[-_ .:/]", model.name)[0]
        if not head.isdigit():
            words.append(head)
    return sorted({w.strip() for w in words if w and len(w.strip()) >= 3}, key=str.lower)


def names_itself(text: str, words: list[str]) -> bool:
    return bool(words) and _names_any(text, tuple(words))


@per_text()
def _names_any(text: str, words: tuple[str, ...]) -> bool:
    """Kept per text and words: an answer set's answers are checked on every
    battle that shows them."""
    return _identity_pattern(words).search(text) is not None


@lru_cache(maxsize=1024)
def _identity_pattern(words: tuple[str, ...]) -> re.Pattern:
    """Any of the words, standing alone (not inside a longer word or a hyphenated name)."""
    return re.compile(rf"(?<![\w-])(?:{'|'.join(map(re.escape, words))})(?!\w)", re.IGNORECASE)


def battle_leaks(turns: list[dict], model_a: ArenaModel, model_b: ArenaModel) -> bool:
    """Does any answer of either side name its own model or maker?"""
    words = {"a": identity_words(model_a), "b": identity_words(model_b)}
    return any(names_itself(turn[side], words[side]) for turn in turns for side in ("a", "b"))

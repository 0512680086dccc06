"""Figures of a text kept per process, keyed by the text's hash and length
rather than the text itself.

The vote path computes the same figures for the same answers again and
again (an answer set is shown over and over): style counts, the coding
signal, the identity-leak check. A cache keyed on the texts would keep a
copy of each (answers of live models can be tens of KB); this one keeps two
integers and the result per text (about 250 bytes: 16,384 texts in 4 MB),
so it can remember many. Two different
texts with the same length and the same 64-bit hash would share figures: a
chance of about 10⁻¹¹ among a million texts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable


def per_text(size: int = 16384) -> Callable:
    """Decorate ``fn(text, *args)`` (hashable args) to remember its result
    per (text, args); the memory is emptied when it holds ``size`` results.
    Thread-safe (single dict operations); an empty text is not kept."""

    def decorate(fn):
        memo: dict = {}

        @functools.wraps(fn)
        def remembered(text, *args):
            if not text:
                return fn(text, *args)
            key = (hash(text), len(text), args)
            try:
                return memo[key]
            except KeyError:
                pass
            value = fn(text, *args)
            if len(memo) >= size:
                memo.clear()
            memo[key] = value
            return value

        remembered.memo = memo  # (key, result) pairs, for tests and a debugger
        return remembered

    return decorate

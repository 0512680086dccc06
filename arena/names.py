"""The one rule for model names, used at every entrance: answer import,
battle import (and ``rate_battles``' reader), the admin and the API.

Names are spelled the way registries spell them: ``gpt-3.5-turbo``,
``meta-llama/Llama-3.1-8B-Instruct`` (Hugging Face, vLLM), ``llama3.1:8b``
(Ollama), ``org/model@rev``, ``模型-1``. Allowed: up to 200 characters of
letters and digits (any script), and ``. _ - / : @ +``. Nothing else, so no
whitespace (at the ends or inside), no control characters, no markup.

A name goes into URL paths (``/leaderboard/models/<name>/``): so a ``/``
must separate two non-empty segments, and no segment may be ``.`` or ``..``,
which browsers and proxies collapse (even percent-encoded, per the WHATWG
URL standard) before the request reaches us. No registry uses such names.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

MODEL_NAME_MAX = 200
PUNCTUATION = "._-/:@+"
ALLOWED = "letters, digits and . _ - / : @ +"


def _bad_char(ch: str) -> str:
    code = f"U+{ord(ch):04X}"
    if unicodedata.category(ch).startswith("C"):
        return f"contains a control or invisible character ({code})"
    if ch.isspace():
        return f"contains whitespace ({code}); allowed are {ALLOWED}"
    return f"contains {ch!r} ({code}); allowed are {ALLOWED}"


def model_name_problem(name) -> str | None:
    """Why ``name`` is not a valid model name, or None when it is."""
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    return _str_problem(name)


# Cached: importers ask about the same few hundred names millions of times.
@lru_cache(maxsize=65536)
def _str_problem(name: str) -> str | None:
    if not name:
        return "must not be empty"
    if len(name) > MODEL_NAME_MAX:
        return f"is {len(name)} characters long; at most {MODEL_NAME_MAX} are allowed"
    if name[0].isspace() or name[-1].isspace():
        return "must not start or end with whitespace"
    for ch in name:
        if not (ch.isalnum() or ch in PUNCTUATION):
            return _bad_char(ch)
    if any(seg in ("", ".", "..") for seg in name.split("/")):
        return "must not start or end with '/', contain '//', or be or have a '.' or '..' segment"
    return None


def model_name_error(name, what: str = "model name") -> str | None:
    """``model_name_problem`` as a sentence about ``what`` (a field or column)."""
    if type(name) is str and _str_problem(name) is None:  # the importers' hot path
        return None
    if not isinstance(name, str) or not name:
        return f"{what} must be a non-empty string"
    problem = model_name_problem(name)
    if problem is None:
        return None
    shown = repr(name[:60] + ("…" if len(name) > 60 else "")) if isinstance(name, str) else ""
    return f"{what} {shown} {problem}".replace("  ", " ")


def validate_model_name(value) -> None:
    """Django validator (model field, admin form, serializers).

    Django is imported here, not at the top: the rule itself is plain Python,
    so ``rate_battles``' reader (no Django) shares it."""
    from django.core.exceptions import ValidationError

    problem = model_name_problem(value)
    if problem is not None:
        raise ValidationError(f"A model name {problem}.", code="invalid_model_name")


def is_valid_model_name(name) -> bool:
    return isinstance(name, str) and model_name_problem(name) is None

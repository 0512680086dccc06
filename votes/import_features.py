"""Per-vote feature columns of an imported row (language, code, prompt length,
turns, style counts), from whatever the row holds: conversations, prompts and
responses, or the precomputed fields our own export writes."""

from __future__ import annotations

from . import features
from .battlefile.reader import meta_style, text_list
from .models import style_columns

# LMArena labels languages by name; Vote.language holds a short code.
LANGUAGE_CODES = {
    "english": "en", "chinese": "zh", "german": "de", "french": "fr", "spanish": "es", "russian": "ru",
    "japanese": "ja", "korean": "ko", "portuguese": "pt", "italian": "it", "arabic": "ar", "hindi": "hi",
    "greek": "el", "hebrew": "he", "thai": "th", "polish": "pl", "dutch": "nl", "turkish": "tr",
    "vietnamese": "vi", "indonesian": "id", "ukrainian": "uk", "persian": "fa", "swedish": "sv",
    "czech": "cs", "hungarian": "hu", "romanian": "ro", "danish": "da", "finnish": "fi", "norwegian": "no",
}  # fmt: skip


def _language(label, prompt: str | None) -> str:
    if isinstance(label, str) and label.strip():
        text = label.strip()
        code = LANGUAGE_CODES.get(text.lower())
        if code:
            return code
        if len(text) <= 8 and text.replace("-", "").isalpha():
            return text.lower()
    return features.language(prompt) if prompt else ""


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


def row_features(get) -> dict | None:
    """The per-vote feature columns (votes.services.text_features) from
    whatever the row holds: conversations, prompts/responses, or the
    precomputed fields our own export writes. None: nothing to go on."""
    from .services import (
        text_features,  # Django app code; imported late so parsing stays importable
    )

    conv_a, conv_b = get("conversation_a"), get("conversation_b")
    if isinstance(conv_a, list) and isinstance(conv_b, list):
        users, answers_a = _conversation(conv_a)
        users_b, answers_b = _conversation(conv_b)
        users = users or users_b
        prompt = users[0] if users else ""
        out = text_features(prompt, answers_a, answers_b, n_turns=len(users))
        out["language"] = _language(get("language"), prompt)
        return out
    prompts = text_list(get("prompt")) or text_list(get("turns"))
    resp_a, resp_b = get("response_a"), get("response_b")
    if prompts or resp_a is not None or resp_b is not None:
        prompt = prompts[0] if prompts else ""
        answers_a, answers_b = text_list(resp_a), text_list(resp_b)
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
           **style_columns(meta_style(meta) if isinstance(meta, dict) else None)}  # fmt: skip
    is_code = get("is_code")
    out["is_code"] = is_code is True or (isinstance(is_code, str) and is_code.strip().lower() in ("true", "1"))
    for column, name in (("prompt_tokens", "prompt_tokens"), ("turn", "turns")):
        value = get(column)
        if value not in (None, ""):
            try:
                out[name] = max(0 if name == "prompt_tokens" else 1, int(float(value)))
            except (TypeError, ValueError):
                out[name] = 0 if name == "prompt_tokens" else 1  # the reader refuses such rows
    return out

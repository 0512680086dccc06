"""Operator writes on the model registry (the admin calls these): status
changes in bulk, and the live "test connection" call.

Status bookkeeping lives here so that every path sets it the same way:
pausing records when and why; activating clears the failure streak that
auto-pause counts, so a repaired model starts afresh.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils import timezone

from .models import ArenaModel
from .providers import OpenAICompatible, ProviderError

TEST_PROMPT = "Reply with one short sentence: are you there?"
TEST_MAX_TOKENS = 64
TEST_TIMEOUT_CAP = 30.0  # seconds; an admin request should not hang for a model's full timeout


def status_changes(status: str, *, reason: str = "") -> dict:
    """The field values that go with ``status``.

    paused: ``paused_at`` now and ``paused_reason``. active: failure streak
    and pause fields cleared. deprecated: never sampled again, kept on
    leaderboards and in votes.
    """
    if status not in ArenaModel.Status.values:
        raise ValueError(f"status must be one of {', '.join(ArenaModel.Status.values)}")
    if status == ArenaModel.Status.PAUSED:
        return {"status": status, "paused_at": timezone.now(), "paused_reason": reason[:300]}
    if status == ArenaModel.Status.ACTIVE:
        return {"status": status, "paused_at": None, "paused_reason": "", "consecutive_failures": 0}
    return {"status": status}


def set_status(model_ids: Iterable[int], status: str, *, reason: str = "") -> int:
    """Set ``status`` (and its bookkeeping) on these models; returns how many changed."""
    changes = status_changes(status, reason=reason)
    return ArenaModel.objects.filter(id__in=list(model_ids)).exclude(status=status).update(**changes)


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    seconds: float
    answer: str = ""
    error: str = ""
    kind: str = ""


def check_connection(model: ArenaModel) -> ConnectionResult:
    """One real chat completion against the model's endpoint: its answer, or
    the operator-facing error (never raises for a provider failure)."""
    started = time.perf_counter()
    if model.provider_kind != ArenaModel.Provider.OPENAI:
        return ConnectionResult(False, 0.0, error="answer-set models have no endpoint to call", kind="config")
    try:
        client = OpenAICompatible.from_settings(model.provider_settings or {})
        client.max_tokens = min(client.max_tokens, TEST_MAX_TOKENS)
        client.timeout = min(client.timeout, TEST_TIMEOUT_CAP)
        answer = client.complete([{"role": "user", "content": TEST_PROMPT}])
    except ProviderError as exc:
        return ConnectionResult(False, time.perf_counter() - started, error=exc.detail, kind=exc.kind)
    except (TypeError, ValueError) as exc:  # e.g. max_tokens "abc" in the stored settings
        return ConnectionResult(False, time.perf_counter() - started, error=f"bad provider settings: {exc}",
                                kind="config")  # fmt: skip
    return ConnectionResult(True, time.perf_counter() - started, answer=answer)

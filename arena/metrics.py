"""Prometheus figures observed in the process that does the work (the page
itself, ``GET /metrics``, and the figures read from the database at scrape
time are the project wiring's: arena/project/metrics.py): provider latency
and errors by model, observed by the web process that streams the answers.
With several gunicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory (created before the web starts, emptied at each start):
prometheus_client then keeps the values in files there and ``/metrics`` sums
every worker's. Without it each scrape sees only the worker that answered it.

Call sites use the small ``observe_*`` functions so that instrumenting a code
path is one line.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram

# Seconds; LLM answers take from a fraction of a second to minutes.
_FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
_ANSWER_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)

PROVIDER_FIRST_TOKEN = Histogram(
    "arena_provider_first_token_seconds",
    "Time from sending a live request to the provider until its first piece of text",
    ["model"],
    buckets=_FIRST_TOKEN_BUCKETS,
)
PROVIDER_ANSWER = Histogram(
    "arena_provider_answer_seconds",
    "Time from sending a live request to the provider until its answer completed",
    ["model"],
    buckets=_ANSWER_BUCKETS,
)
PROVIDER_ERRORS = Counter(
    "arena_provider_errors_total",
    "Live answers that failed, by model and kind (connection, http, timeout, stream, config, busy)",
    ["model", "kind"],
)


def observe_stream(model: str, chunks: Iterator[str]) -> Iterator[str]:
    """Pass a provider's text pieces through, observing time to the first
    piece, time to the end, and a ProviderError (re-raised). A stream the
    caller closes early (the voter left) is neither a success nor an error."""
    started = time.monotonic()
    first = True
    try:
        for piece in chunks:
            if first:
                PROVIDER_FIRST_TOKEN.labels(model).observe(time.monotonic() - started)
                first = False
            yield piece
    except GeneratorExit:
        raise
    except Exception as exc:
        observe_provider_error(model, exc)
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    PROVIDER_ANSWER.labels(model).observe(time.monotonic() - started)


async def observe_astream(model: str, chunks: AsyncIterator[str]) -> AsyncIterator[str]:
    """``observe_stream`` for an async provider stream."""
    started = time.monotonic()
    first = True
    try:
        async for piece in chunks:
            if first:
                PROVIDER_FIRST_TOKEN.labels(model).observe(time.monotonic() - started)
                first = False
            yield piece
    except GeneratorExit:
        raise
    except Exception as exc:
        observe_provider_error(model, exc)
        raise
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose:
            await aclose()
    PROVIDER_ANSWER.labels(model).observe(time.monotonic() - started)


def observe_provider_error(model: str, exc: BaseException) -> None:
    PROVIDER_ERRORS.labels(model, getattr(exc, "kind", None) or "crash").inc()


def observed_registry() -> CollectorRegistry:
    """The figures observed in processes: this one's, or every process's
    sharing PROMETHEUS_MULTIPROC_DIR."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY

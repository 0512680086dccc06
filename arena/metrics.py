"""Prometheus metrics for operators: ``GET /metrics`` with
``Authorization: Bearer $ARENA_METRICS_TOKEN`` (unset: the page does not exist).

Two kinds of figures:

- Read from the database at scrape time (``ArenaCollector``): votes stored by
  winner, battles opened by status, skipped and abandoned, recompute durations, streams
  in progress, snapshot age; and the broker's queue depth, read from the
  broker. These are true across every web and worker process and survive
  restarts, so they need no shared state between processes.
- Observed in the process that does the work: provider latency and errors by
  model, observed by the web process that streams the answers. With several
  gunicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory
  (created before the web starts, emptied at each start): prometheus_client
  then keeps the values in files there and ``/metrics`` sums every worker's.
  Without it each scrape sees only the worker that answered it.

Call sites use the small ``observe_*`` functions so that instrumenting a code
path is one line.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import AsyncIterator, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

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


# --- scrape-time figures -------------------------------------------------------


class ArenaCollector:
    """Figures read at scrape time from the database and the broker."""

    def collect(self):
        from datetime import timedelta

        from django.conf import settings
        from django.db.models import Count, Sum
        from django.utils import timezone

        from arena.health import broker_queue_depth
        from arena.models import Battle
        from ratings.models import Snapshot
        from votes.models import Vote

        votes = CounterMetricFamily(
            "arena_votes_stored", "Votes stored, by winner (counted and excluded)", labels=["winner"]
        )
        for winner, n in Vote.objects.order_by().values_list("winner").annotate(n=Count("id")):
            votes.add_metric([winner], n)
        yield votes

        by_status = dict(Battle.objects.order_by().values_list("status").annotate(n=Count("id")))
        opened = CounterMetricFamily("arena_battles_opened", "Battles opened (live and pre-generated)")
        opened.add_metric([], sum(by_status.values()))
        yield opened
        status = GaugeMetricFamily("arena_battles", "Battles by status now", labels=["status"])
        for value in Battle.Status.values:
            status.add_metric([value], by_status.get(value, 0))
        yield status
        skipped = CounterMetricFamily("arena_battles_skipped", "Battles the voter ended with Skip, without a vote")
        skipped.add_metric([], by_status.get(Battle.Status.SKIPPED, 0))
        yield skipped
        # Abandoned: answers shown, neither voted on nor skipped, now past the vote window.
        window = timezone.now() - timedelta(seconds=settings.ARENA_VOTE_WINDOW_SECONDS)
        abandoned = CounterMetricFamily(
            "arena_battles_abandoned", "Battles whose answers were shown, left without a vote past the vote window"
        )
        abandoned.add_metric([], Battle.objects.filter(status=Battle.Status.READY, ready_at__lt=window).count())
        yield abandoned

        streams = GaugeMetricFamily("arena_streams_in_progress", "Live turns being answered now (all web processes)")
        # A streaming turn is always pending: the status index narrows the scan to those.
        streaming = Battle.objects.filter(status=Battle.Status.PENDING, streaming_since__isnull=False)
        streams.add_metric([], streaming.count())
        yield streams

        totals = Snapshot.objects.aggregate(n=Count("id"), seconds=Sum("duration"))
        recompute = SummaryMetricFamily(
            "arena_recompute_duration_seconds", "Duration of the recomputes that published a snapshot"
        )
        recompute.add_metric([], count_value=totals["n"] or 0, sum_value=totals["seconds"] or 0.0)
        yield recompute
        newest = Snapshot.objects.order_by("-created_at", "-id").values_list("created_at", "duration").first()
        last = GaugeMetricFamily("arena_recompute_last_duration_seconds", "Duration of the newest snapshot's recompute")
        age = GaugeMetricFamily("arena_snapshot_age_seconds", "Seconds since the newest snapshot was published")
        if newest:
            last.add_metric([], newest[1])
            age.add_metric([], (timezone.now() - newest[0]).total_seconds())
        yield last
        yield age

        depth = broker_queue_depth(timeout=1.0)
        queue = GaugeMetricFamily("arena_queue_depth", "Tasks waiting in the Celery queue (NaN: broker unreachable)")
        queue.add_metric([], float("nan") if depth is None else depth)
        yield queue


def token_ok(header: str, token: str) -> bool:
    """A constant-time check of ``Authorization: Bearer <token>``."""
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


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


def exposition() -> tuple[bytes, str]:
    """The text page Prometheus scrapes, and its content type."""
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(ArenaCollector())
    return generate_latest(observed_registry()) + generate_latest(scraped), CONTENT_TYPE_LATEST


def metrics_view(request):
    """GET /metrics with ``Authorization: Bearer $ARENA_METRICS_TOKEN``.
    No token configured: 404, as if the page did not exist."""
    from django.conf import settings
    from django.http import Http404, HttpResponse, JsonResponse

    token = settings.ARENA_METRICS_TOKEN
    if not token:
        raise Http404("metrics are off: set ARENA_METRICS_TOKEN")
    if request.method != "GET":
        return JsonResponse({"error": "method_not_allowed", "detail": "use GET"}, status=405, headers={"Allow": "GET"})
    if not token_ok(request.headers.get("Authorization", ""), token):
        return JsonResponse(
            {"error": "not_authenticated", "detail": "send Authorization: Bearer <ARENA_METRICS_TOKEN>"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})

"""``GET /metrics`` for operators, with ``Authorization: Bearer
$ARENA_METRICS_TOKEN`` (unset: the page does not exist). Project wiring: it
reads every app's tables.

Two kinds of figures:

- Read from the database at scrape time (``ArenaCollector``): votes stored by
  winner, battles opened by status, skipped and abandoned, recompute durations, streams
  in progress, snapshot age; and the broker's queue depth, read from the
  broker. These are true across every web and worker process and survive
  restarts, so they need no shared state between processes.
- Observed in the process that does the work (arena/metrics.py): provider
  latency and errors by model.
"""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from arena.metrics import observed_registry


class ArenaCollector:
    """Figures read at scrape time from the database and the broker."""

    def collect(self):
        from datetime import timedelta

        from django.conf import settings
        from django.db.models import Count, Sum
        from django.utils import timezone

        from arena.models import Battle
        from arena.project.health import broker_queue_depth
        from ratings.models import Snapshot
        from ratings.selectors import newest_snapshot
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
        snap = newest_snapshot()
        newest = (snap.created_at, snap.duration) if snap else None
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

"""The figures on the admin dashboard. Each is one bounded query (an index
range, or the newest snapshot), so the page stays fast at millions of votes;
the broker and worker check talks to the network and is served separately
(``worker_health``) so that a dead broker never slows or breaks the page.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from arena.models import Battle
from votes.models import Vote

from .models import RecomputeRun, Snapshot
from .selectors import leaderboard_rows, newest_snapshot, snapshot_view

DAYS = 14
AWAITING_WINDOW = timedelta(hours=1)


def votes_per_day(days: int = DAYS, *, today: date | None = None) -> list[tuple[date, int]]:
    """Votes stored per UTC day over the last ``days`` days (today included),
    zero-filled; read through the index on ``created_at``."""
    today = today or timezone.now().date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=UTC)
    counts = dict(
        Vote.objects.filter(created_at__gte=start)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
        .order_by()
    )
    return [(first + timedelta(days=i), counts.get(first + timedelta(days=i), 0)) for i in range(days)]


def exclusions() -> dict:
    """All votes, and the excluded ones by reason with their share of all votes."""
    total = Vote.objects.count()
    reasons = list(
        Vote.objects.filter(excluded=True).values_list("exclusion_reason").annotate(n=Count("id")).order_by("-n")
    )
    excluded = sum(n for _, n in reasons)
    return {
        "total": total,
        "excluded": excluded,
        "share": excluded / total if total else 0.0,
        "reasons": [{"reason": r, "votes": n, "share": n / total} for r, n in reasons],
    }


def battles_in_progress(*, now=None) -> dict:
    """Answers still streaming, and battles opened in the last hour still waiting for a vote."""
    now = now or timezone.now()
    return {
        "streaming": Battle.objects.filter(status=Battle.Status.PENDING).count(),
        "awaiting_vote": Battle.objects.filter(status=Battle.Status.READY, created_at__gte=now - AWAITING_WINDOW)
        .count(),
        "failed_last_hour": Battle.objects.filter(status=Battle.Status.FAILED, created_at__gte=now - AWAITING_WINDOW)
        .count(),
    }  # fmt: skip


def leaderboard_top(n: int = 10) -> tuple[Snapshot | None, list[dict]]:
    snap = newest_snapshot()
    if snap is None:
        return None, []
    view = snapshot_view(snap, "overall", False)
    return snap, (leaderboard_rows(view)[:n] if view else [])


def last_run() -> RecomputeRun | None:
    return RecomputeRun.objects.select_related("requested_by").order_by("-requested_at", "-id").first()


def worker_health(app=None, *, timeout: float = 1.0) -> dict:
    """Broker reachability, the task queue's length and the workers that
    answer a ping within ``timeout`` seconds. Never raises: an unreachable
    broker is reported as such."""
    from kombu.exceptions import ChannelError

    if app is None:
        from celery import current_app as app  # the project's app (arena/project/celery.py)
    queue = app.conf.task_default_queue
    found = {"broker": "unreachable", "transport": "", "queue": queue, "queued": None, "workers": None, "error": ""}
    try:
        with app.connection_for_read() as conn:
            found["transport"] = str(conn.transport_cls)
            conn.ensure_connection(max_retries=1, timeout=timeout)
            found["broker"] = "ok"
            try:
                found["queued"] = conn.default_channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:  # Redis drops an empty list: no queue is an empty queue
                found["queued"] = 0
    except Exception as exc:  # noqa: BLE001 - whatever the transport raises, the page reports it
        found["error"] = f"{type(exc).__name__}: {exc}"[:300]
        return found
    try:
        replies = app.control.ping(timeout=timeout)
        found["workers"] = sorted(name for reply in replies for name in reply)
    except Exception as exc:  # noqa: BLE001 - the page reports whatever the transport raises
        found["error"] = f"ping failed: {type(exc).__name__}: {exc}"[:300]
    return found

"""Operator-requested recomputes ("Recompute now" in the admin), tracked in
``RecomputeRun`` so the page can show queued → running → done / failed, how
long it took and which snapshot it published.

The web creates the row and queues ``ratings.recompute`` with its id; the
worker claims the row, runs ``services.recompute_publish`` and records the
outcome. A redelivered task (worker killed mid-run, acks_late) claims the row
again: the recompute is idempotent, so the second run is harmless.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import services
from .models import RecomputeRun
from .selectors import newest_snapshot

CI_CHOICES = ("sandwich", "bootstrap", "none")
TASK = "ratings.recompute"


class RecomputeNotQueued(Exception):
    """The broker refused the task; ``run`` is stored as failed with the reason."""

    def __init__(self, run: RecomputeRun):
        super().__init__(run.error)
        self.run = run


def request_run(*, by, ci: str | None = None, rounds: int = 100, force: bool = False) -> RecomputeRun:
    """Create a run and queue its task once the row is committed.

    Raises ValueError for a bad ``ci``/``rounds`` (nothing written) and
    RecomputeNotQueued when the broker is unreachable (the run is kept,
    failed, with the broker's error).
    """
    ci = ci or settings.ARENA_LEADERBOARD_CI
    if ci not in CI_CHOICES:
        raise ValueError(f"ci must be one of {', '.join(CI_CHOICES)}")
    if not 10 <= int(rounds) <= 1000:
        raise ValueError("rounds must be between 10 and 1000")
    run = RecomputeRun.objects.create(
        ci=ci, rounds=int(rounds), force=force, requested_by=by, task_id=str(uuid.uuid4())
    )

    def send() -> None:
        from celery import current_app as app  # the project's app (arena/project/celery.py)

        try:
            app.send_task(
                TASK, kwargs={"ci": ci, "rounds": run.rounds, "force": force, "run_id": run.id}, task_id=run.task_id
            )
        except Exception as exc:  # any broker failure: record it, tell the operator
            RecomputeRun.objects.filter(id=run.id, status=RecomputeRun.Status.QUEUED).update(
                status=RecomputeRun.Status.FAILED, finished_at=timezone.now(), error=f"could not queue the task: {exc}"
            )
            run.refresh_from_db()
            raise RecomputeNotQueued(run) from exc

    transaction.on_commit(send, robust=False)
    return run


def claim(run_id: int) -> RecomputeRun | None:
    """Mark the run running (again, after a redelivery). None when it is
    already done or does not exist: nothing left to do."""
    now = timezone.now()
    claimed = (
        RecomputeRun.objects.filter(id=run_id)
        .exclude(status=RecomputeRun.Status.DONE)
        .update(status=RecomputeRun.Status.RUNNING, started_at=now, finished_at=None, error="",
                attempts=F("attempts") + 1)
    )  # fmt: skip
    return RecomputeRun.objects.get(id=run_id) if claimed else None


def execute(run: RecomputeRun) -> int | None:
    """Run the recompute for a claimed run and record the result.

    Returns the snapshot id, or None when another recompute holds the lock
    (the run goes back to queued; the task retries). An exception marks the
    run failed with the error and propagates (the task's retry policy applies).
    """
    try:
        snap = services.recompute_publish(ci=run.ci, rounds=run.rounds, force=run.force)
    except Exception as exc:
        finish(run.id, error=f"{type(exc).__name__}: {exc}")
        raise
    if snap is None:
        RecomputeRun.objects.filter(id=run.id, status=RecomputeRun.Status.RUNNING).update(
            status=RecomputeRun.Status.QUEUED, error="waiting: another recompute is running"
        )
        return None
    finish(run.id, snapshot_id=snap.id)
    return snap.id


def finish(run_id: int, *, snapshot_id: int | None = None, error: str = "") -> None:
    RecomputeRun.objects.filter(id=run_id).update(
        status=RecomputeRun.Status.FAILED if error else RecomputeRun.Status.DONE,
        snapshot_id=snapshot_id,
        error=error[:2000],
        finished_at=timezone.now(),
    )


def status_payload(run: RecomputeRun) -> dict:
    """What the admin page polls: state, timings, and the result."""
    snap = run.snapshot
    expected = None
    if run.status in (RecomputeRun.Status.QUEUED, RecomputeRun.Status.RUNNING):
        previous = newest_snapshot()
        expected = round(previous.duration, 2) if previous else None
    return {
        "id": run.id,
        "status": run.status,
        "ci": run.ci,
        "requested_at": run.requested_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "seconds": round(run.seconds, 2) if run.seconds is not None else None,
        "expected_seconds": expected,
        "attempts": run.attempts,
        "error": run.error,
        "snapshot": None
        if snap is None
        else {
            "id": snap.id,
            "created_at": snap.created_at.isoformat(),
            "vote_count": snap.vote_count,
            "duration": round(snap.duration, 2),
            "fingerprint": snap.fingerprint,
            # A run that found nothing changed returns the newest snapshot, published before it started.
            "new": run.started_at is not None and snap.created_at >= run.started_at,
        },
    }

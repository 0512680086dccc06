"""Retention: what beat deletes so the tables stop growing.

- Snapshots: every one of the last RATINGS_KEEP_ALL_DAYS days, then the
  newest of each UTC day. Never the newest snapshot overall, nor one a
  RecomputeRun points at (the admin links to it). Its views and rating
  points go with it (ON DELETE CASCADE in the ORM, one DELETE per table).
- Idempotency records older than ARENA_IDEMPOTENCY_RETENTION_HOURS (by
  default the vote window: a retry after that could not vote anyway).

Deletes go in chunks of RETENTION_CHUNK rows, each its own short
transaction, so no long lock is held and a crash loses only the chunk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from arena.models import IdempotencyRecord

from .models import RatingPoint, RecomputeRun, Snapshot, SnapshotView
from .selectors import newest_snapshot

log = logging.getLogger(__name__)


@dataclass
class Pruned:
    snapshots: int = 0
    idempotency_records: int = 0


def keep_all_days() -> float:
    return float(settings.RATINGS_KEEP_ALL_DAYS)


def chunk_size() -> int:
    return int(settings.RETENTION_CHUNK)


def idempotency_hours() -> float:
    # Unset, the settings make it the vote window.
    return float(settings.ARENA_IDEMPOTENCY_RETENTION_HOURS)


def doomed_snapshots(now: datetime | None = None) -> list[int]:
    """Ids of the snapshots retention deletes: older than the keep-all
    window, not the newest of their UTC day, not the newest overall, not
    referenced by a RecomputeRun. Reads ids and times only."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=keep_all_days())
    snap = newest_snapshot()
    newest = snap.id if snap else None
    protected = set(RecomputeRun.objects.exclude(snapshot=None).values_list("snapshot_id", flat=True))
    protected.add(newest)
    old = Snapshot.objects.filter(created_at__lt=cutoff).order_by("-created_at", "-id").values_list("id", "created_at")
    doomed, seen_days = [], set()
    for sid, created in old.iterator(chunk_size=5000):
        day = created.astimezone(UTC).date()
        if day not in seen_days:  # newest first: the first of each day is the one kept
            seen_days.add(day)
            continue
        if sid not in protected:
            doomed.append(sid)
    return doomed


def prune_snapshots(now: datetime | None = None) -> int:
    ids = doomed_snapshots(now)
    size = chunk_size()
    for k in range(0, len(ids), size):
        part = ids[k : k + size]
        with transaction.atomic():
            # Re-checked here: a run may have come to point at one meanwhile.
            referenced = set(RecomputeRun.objects.filter(snapshot_id__in=part).values_list("snapshot_id", flat=True))
            part = [sid for sid in part if sid not in referenced]
            # Children first, explicitly: one DELETE each, no rows loaded.
            RatingPoint.objects.filter(snapshot_id__in=part).delete()
            SnapshotView.objects.filter(snapshot_id__in=part).delete()
            Snapshot.objects.filter(id__in=part).delete()
    return len(ids)


def prune_idempotency_records(now: datetime | None = None) -> int:
    now = now or timezone.now()
    cutoff = now - timedelta(hours=idempotency_hours())
    size = chunk_size()
    total = 0
    while True:
        part = list(IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("id", flat=True)[:size])
        if not part:
            return total
        total += IdempotencyRecord.objects.filter(id__in=part).delete()[0]


def prune(now: datetime | None = None) -> Pruned:
    done = Pruned(snapshots=prune_snapshots(now), idempotency_records=prune_idempotency_records(now))
    log.info("retention: %s snapshots, %s idempotency records deleted", done.snapshots, done.idempotency_records)
    return done

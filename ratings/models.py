"""Published rating snapshots.

A recompute writes one Snapshot and one SnapshotView per leaderboard view in
a single transaction: a reader sees all of a snapshot or none of it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Snapshot(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    method = models.CharField(max_length=16, default="bt")
    ci = models.CharField(max_length=16, default="sandwich")
    params = models.JSONField(default=dict, blank=True)
    vote_count = models.PositiveIntegerField(default=0)
    last_vote_id = models.BigIntegerField(default=0)
    vote_id_sum = models.BigIntegerField(default=0)
    fingerprint = models.CharField(
        max_length=64, help_text="sha256 of the sorted ids of the counted votes (8-byte little-endian each)"
    )
    duration = models.FloatField(default=0.0, help_text="seconds the recompute took")
    rows = models.JSONField(default=list, help_text="overall view: model, rating, lower, upper, rank, battles, …")
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = ["created_at", "id"]

    def __str__(self) -> str:
        return f"snapshot {self.id} ({self.vote_count} votes)"


class SnapshotView(models.Model):
    """One leaderboard view of a snapshot: overall, style control, a category."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="views")
    key = models.CharField(max_length=40)
    label = models.CharField(max_length=80)
    style_control = models.BooleanField(default=False)
    vote_count = models.PositiveIntegerField(default=0)
    counts_fingerprint = models.CharField(max_length=64, help_text="sha256 of this view's (a, b, outcome) count table")
    rows = models.JSONField(default=list)
    pairs = models.BinaryField(
        default=bytes, help_text="float64 rows (i, j, battles, points of i) per met pair; i, j index rows"
    )
    style_coefficients = models.JSONField(null=True, blank=True)
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "key", "style_control"], name="ratings_view_unique")]

    def __str__(self) -> str:
        return f"{self.snapshot_id}:{self.key}{' (style)' if self.style_control else ''}"

    def pair_table(self):
        import numpy as np

        return np.frombuffer(bytes(self.pairs), dtype="<f8").reshape(-1, 4)


class RecomputeRun(models.Model):
    """A recompute an operator asked for ("Recompute now" in the admin) and
    what became of it: the admin page polls this row while the worker runs.

    Vote-triggered and periodic recomputes have no row; their result is the
    snapshot itself.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    task_id = models.CharField(max_length=64, blank=True, help_text="Celery task id")
    ci = models.CharField("intervals", max_length=16, help_text="sandwich, bootstrap or none")
    rounds = models.PositiveIntegerField(default=100, help_text="bootstrap rounds (bootstrap only)")
    force = models.BooleanField(default=False, help_text="publish even when no counted vote changed")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="times a worker picked the task up")
    snapshot = models.ForeignKey(Snapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "done", "failed"]),
                name="ratings_recomputerun_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"recompute {self.id} ({self.status})"

    @property
    def seconds(self) -> float | None:
        """Wall time from pick-up to finish (or to now while running)."""
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()


class RatingPoint(models.Model):
    """One model's rating in one view of one snapshot: the narrow, indexed
    copy of SnapshotView.rows that history reads (a model's points, newest
    first, a page at a time) without loading any snapshot's row list.

    Written by the recompute in the snapshot's transaction; deleted with it.
    ``rank`` is the rank (UB) the leaderboard showed when the snapshot was
    published, null for a preliminary (unranked) row.
    """

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="points")
    key = models.CharField(max_length=40)
    style_control = models.BooleanField(default=False)
    model = models.ForeignKey("arena.ArenaModel", on_delete=models.CASCADE, related_name="+")
    rating = models.FloatField()
    lower = models.FloatField()
    upper = models.FloatField()
    rank = models.PositiveIntegerField(null=True, blank=True)
    battles = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(help_text="the snapshot's creation time, copied so history needs no join")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "key", "style_control", "model"], name="ratings_point_unique")
        ]
        indexes = [
            models.Index(
                fields=["model", "key", "style_control", "-created_at", "-snapshot"], name="ratings_point_history"
            )
        ]

    def __str__(self) -> str:
        return f"{self.snapshot_id}:{self.key}:{self.model_id}"


class JudgeBoard(models.Model):
    """One judge's leaderboard from its judge votes alone, and how the judge
    agrees with the human votes, published by the recompute (ratings/judges.py).

    ``rows`` have the snapshot views' shape (model_id, rating, lower, upper,
    rank, battles, …), so the API and page rank and join them the same way.
    ``agreement`` holds the figures of ratings.judges.agreement_figures.
    ``inputs_key`` digests what it was computed from (the judge's votes, the
    counted human votes, the human snapshot): a run with the same inputs
    publishes nothing.
    """

    judge = models.ForeignKey("arena.Judge", on_delete=models.CASCADE, related_name="boards")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    vote_count = models.PositiveIntegerField(default=0, help_text="judge votes counted (done)")
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the sorted ids of the judge votes counted")
    inputs_key = models.CharField(max_length=64)
    human_snapshot = models.ForeignKey(Snapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rows = models.JSONField(default=list)
    agreement = models.JSONField(default=dict)
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["judge", "-created_at", "-id"], name="ratings_judgeboard_newest")]

    def __str__(self) -> str:
        return f"judge board {self.id} ({self.judge_id}, {self.vote_count} votes)"

"""Published rating snapshots. A snapshot is written in one INSERT, so a reader
sees a complete leaderboard or the previous one, never a partial one."""

from __future__ import annotations

from django.db import models


class Snapshot(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    method = models.CharField(max_length=16, default="bt")
    ci = models.CharField(max_length=16, default="sandwich")
    params = models.JSONField(default=dict, blank=True)
    vote_count = models.PositiveIntegerField(default=0)
    last_vote_id = models.BigIntegerField(default=0)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of the aggregated vote counts used")
    duration = models.FloatField(default=0.0, help_text="seconds the recompute took")
    rows = models.JSONField(default=list, help_text="rows: model, rating, lower, upper, rank, battles, …")
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = ["created_at", "id"]

    def __str__(self) -> str:
        return f"snapshot {self.id} ({self.vote_count} votes)"

"""The vote record. Votes are never deleted by the system: exclusion is a flag."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from arena.models import ArenaModel, Battle, Voter


class Vote(models.Model):
    class Winner(models.TextChoices):
        A = "a", "model A"
        B = "b", "model B"
        TIE = "tie", "tie"
        BOTH_BAD = "both_bad", "both bad"

    class Source(models.TextChoices):
        ARENA = "arena", "voted in this arena"
        IMPORT = "import", "imported"

    # One vote per battle, enforced by the database (OneToOne is a unique index).
    # Imported votes have no battle here; their conversations may be gone.
    battle = models.OneToOneField(Battle, null=True, blank=True, on_delete=models.PROTECT, related_name="vote")
    voter = models.ForeignKey(Voter, on_delete=models.PROTECT, related_name="votes")
    # Denormalised from the battle so the recompute can GROUP BY without a join.
    model_a = models.ForeignKey(ArenaModel, on_delete=models.PROTECT, related_name="+")
    model_b = models.ForeignKey(ArenaModel, on_delete=models.PROTECT, related_name="+")
    winner = models.CharField(max_length=8, choices=Winner.choices)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ARENA)
    # Re-importing the same row finds this key and adds nothing.
    external_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # Computed once when the vote is stored (votes.features), read by every recompute.
    language = models.CharField(max_length=8, blank=True, db_index=True)
    is_code = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(default=0)
    turns = models.PositiveSmallIntegerField(default=1)
    style = models.JSONField(
        null=True, blank=True, help_text="[tokens, headers, list_items, bold] of side a, then of side b"
    )
    excluded = models.BooleanField(default=False, db_index=True)
    exclusion_reason = models.CharField(max_length=64, blank=True)
    excluded_at = models.DateTimeField(null=True, blank=True)
    excluded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(winner__in=["a", "b", "tie", "both_bad"]), name="votes_vote_winner_valid"
            ),
            models.CheckConstraint(
                condition=Q(excluded=False) | ~Q(exclusion_reason=""), name="votes_vote_exclusion_has_reason"
            ),
        ]
        indexes = [models.Index(fields=["excluded", "model_a", "model_b", "winner"], name="votes_vote_aggregate")]

    def __str__(self) -> str:
        return f"{self.battle_id}: {self.winner}"

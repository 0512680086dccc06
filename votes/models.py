"""The vote record. Votes are never deleted by the system: exclusion is a flag."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from arena.models import ArenaModel, Battle, Voter

# [tokens, headers, list_items, bold] of side a, then of side b.
STYLE_FIELDS = tuple(
    f"style_{side}_{feature}" for side in "ab" for feature in ("tokens", "headers", "list_items", "bold")
)
STYLE_COUNT_MAX = 2**31 - 1  # the columns are 4-byte integers


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
    # No single-column indexes: nothing looks votes up by one model (the
    # recompute reads them all), and each index costs a bulk import ~7% of
    # its speed (docs/VOTES.md). votes_vote_aggregate still leads to them.
    model_a = models.ForeignKey(ArenaModel, on_delete=models.PROTECT, related_name="+", db_index=False)
    model_b = models.ForeignKey(ArenaModel, on_delete=models.PROTECT, related_name="+", db_index=False)
    winner = models.CharField(max_length=8, choices=Winner.choices)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.ARENA)
    # Re-importing the same row finds this key and adds nothing. Unique through
    # Meta.constraints: one plain unique index, without the second
    # varchar_pattern_ops index PostgreSQL gets for unique=True (imports pay per index).
    external_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - NULL: no key, and many rows may have none under the unique index
    # Computed once when the vote is stored (votes.features), read by every recompute.
    language = models.CharField(max_length=8, blank=True)  # indexed in Meta.indexes (equality only)
    is_code = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(default=0)
    turns = models.PositiveSmallIntegerField(default=1)
    # The style counts of each side's answers (votes.features.style_counts),
    # one column each so that a recompute reads plain integers; all NULL when
    # the answers are unknown (some imports). STYLE_FIELDS lists them in order.
    style_a_tokens = models.PositiveIntegerField(null=True, blank=True)
    style_a_headers = models.PositiveIntegerField(null=True, blank=True)
    style_a_list_items = models.PositiveIntegerField(null=True, blank=True)
    style_a_bold = models.PositiveIntegerField(null=True, blank=True)
    style_b_tokens = models.PositiveIntegerField(null=True, blank=True)
    style_b_headers = models.PositiveIntegerField(null=True, blank=True)
    style_b_list_items = models.PositiveIntegerField(null=True, blank=True)
    style_b_bold = models.PositiveIntegerField(null=True, blank=True)
    # Filters on ``excluded`` use votes_vote_aggregate, whose first column it is.
    excluded = models.BooleanField(default=False)
    exclusion_reason = models.CharField(max_length=64, blank=True)
    excluded_at = models.DateTimeField(null=True, blank=True)
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(winner__in=["a", "b", "tie", "both_bad"]), name="votes_vote_winner_valid"
            ),
            models.CheckConstraint(
                condition=Q(excluded=False) | ~Q(exclusion_reason=""), name="votes_vote_exclusion_has_reason"
            ),
            # Re-importing the same row finds this key and adds nothing.
            models.UniqueConstraint(fields=["external_key"], name="votes_vote_external_key_unique"),
            # The recompute takes style_a_tokens IS NOT NULL to mean "all eight known".
            models.CheckConstraint(
                condition=Q(**{f"{name}__isnull": True for name in STYLE_FIELDS})
                | Q(**{f"{name}__isnull": False for name in STYLE_FIELDS}),
                name="votes_vote_style_all_or_none",
            ),
        ]
        indexes = [
            models.Index(fields=["excluded", "model_a", "model_b", "winner"], name="votes_vote_aggregate"),
            models.Index(fields=["language"], name="votes_vote_language"),
            # The admin's "excluded for reason X" filter, newest first. Partial:
            # counted votes (nearly all, and every arena vote) never touch it.
            models.Index(
                fields=["exclusion_reason", "-created_at"],
                condition=Q(excluded=True),
                name="votes_vote_excluded_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.battle_id}: {self.winner}"

    @property
    def style(self) -> list[int] | None:
        """The eight style counts, side a then side b; None when unknown."""
        values = [getattr(self, name) for name in STYLE_FIELDS]
        return None if values[0] is None else values


def style_columns(counts: Sequence[int] | None) -> dict[str, int | None]:
    """Vote keyword arguments for the eight style counts (None: unknown)."""
    if counts is None:
        return dict.fromkeys(STYLE_FIELDS)
    if len(counts) != len(STYLE_FIELDS):
        raise ValueError(f"expected {len(STYLE_FIELDS)} style counts, got {len(counts)}")
    return dict(zip(STYLE_FIELDS, counts, strict=True))


class ExclusionReason:
    """Reasons this codebase writes into ``Vote.exclusion_reason``.

    Only ``ANOMALOUS_VOTER`` is ever undone automatically (by unflagging the
    voter); the others are facts about the battle itself.
    """

    NAMED = "named"  # model identities were visible when the vote was cast
    SELF_BATTLE = "self_battle"  # a model against itself carries no information
    ANOMALOUS_VOTER = "anomalous_voter"  # the voter is flagged (votes.anomaly)
    IDENTITY_LEAK = "identity_leak"  # an answer named its model or maker (arena.leaks)
    IMPORTED_PREFIX = "imported:"  # excluded in the system the file came from


class VoterFlag(models.Model):
    """The anomaly detector's latest verdict on one voter, and the flag that
    excludes their votes (reason ``anomalous_voter``) while it is set.

    p-values are probabilities; ``score`` is −log10 of the adjusted p-value,
    capped at 300, so larger is more anomalous.
    """

    voter = models.OneToOneField(Voter, on_delete=models.PROTECT, related_name="anomaly")
    votes_tested = models.PositiveIntegerField(default=0)
    fisher_statistic = models.FloatField(default=0.0, help_text="M = Σ −2 log p over the voter's votes")
    outcome_p = models.FloatField(default=1.0, help_text="Fisher combination of the per-vote outcome p-values")
    side_p = models.FloatField(default=1.0, help_text="side-bias test (A vs B choices), two-sided")
    favour_p = models.FloatField(default=1.0, help_text="favouritism test (one model's points), Bonferroni over models")
    p_value = models.FloatField(default=1.0, help_text="the three tests combined (Bonferroni over 3)")
    adjusted_p = models.FloatField(default=1.0, help_text="after Holm's correction over the voters tested in the run")
    score = models.FloatField(default=0.0, db_index=True, help_text="−log10(adjusted_p), capped at 300")
    scored_at = models.DateTimeField(null=True, blank=True)
    flagged = models.BooleanField(default=False, db_index=True)
    # A person's decision (flag or clear) stands: the detector keeps scoring
    # this voter but no longer changes ``flagged``.
    manual = models.BooleanField(default=False)
    changed_at = models.DateTimeField(null=True, blank=True, help_text="when ``flagged`` last changed")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="who last changed ``flagged``; empty = the detector",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(adjusted_p__gte=0) & Q(adjusted_p__lte=1), name="votes_voterflag_adjusted_p_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.voter_id}: {'flagged' if self.flagged else 'clear'} (score {self.score:.1f})"


class VoteExclusionEvent(models.Model):
    """Audit trail: one row per vote each time it is excluded or reinstated
    after it was stored. ``by`` empty = the system."""

    class Action(models.TextChoices):
        EXCLUDE = "exclude", "excluded"
        REINSTATE = "reinstate", "reinstated"

    vote = models.ForeignKey(Vote, on_delete=models.PROTECT, related_name="exclusion_events")
    action = models.CharField(max_length=10, choices=Action.choices)
    reason = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"vote {self.vote_id} {self.action} ({self.reason})"


class JudgeVote(models.Model):
    """An automatic judge's verdict on one conversation: a table of its own,
    never mixed with ``Vote`` (the human leaderboard reads only Vote).

    The conversation is a battle's (``battle`` set: a human-voted battle,
    for agreement) or, before anyone voted, a pair of an answer set's answers
    to one question (``battle`` empty, ``question`` and ``turns`` set;
    ``manage.py judge_battles``). ``model_a`` is the answer shown first in
    the first order; the second order shows the two swapped.
    ``verdict_ab``/``verdict_ba`` are each order's verdict mapped back to
    these models (a: model_a better); ``verdict`` is theirs when they agree,
    a tie when they do not (position bias cancelled). Latencies in seconds.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "waiting (queued, over the concurrency cap or the daily budget)"
        RUNNING = "running", "being judged"
        DONE = "done", "judged"
        FAILED = "failed", "failed"

    class Verdict(models.TextChoices):
        A = "a", "model A"
        B = "b", "model B"
        TIE = "tie", "tie"

    judge = models.ForeignKey("arena.Judge", on_delete=models.PROTECT, related_name="votes")
    battle = models.ForeignKey(Battle, null=True, blank=True, on_delete=models.PROTECT, related_name="judge_votes")
    question = models.ForeignKey(
        "arena.Question", null=True, blank=True, on_delete=models.PROTECT, related_name="judge_votes"
    )
    turns = models.PositiveSmallIntegerField(default=1, help_text="turns of the conversation judged")
    model_a = models.ForeignKey(ArenaModel, on_delete=models.PROTECT, related_name="+")
    model_b = models.ForeignKey(ArenaModel, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    verdict = models.CharField(max_length=4, choices=Verdict.choices, blank=True)
    verdict_ab = models.CharField(max_length=4, choices=Verdict.choices, blank=True)
    verdict_ba = models.CharField(max_length=4, choices=Verdict.choices, blank=True)
    reason_ab = models.TextField(blank=True)
    reason_ba = models.TextField(blank=True)
    raw_ab = models.TextField(blank=True)
    raw_ba = models.TextField(blank=True)
    latency_ab = models.FloatField(null=True, blank=True)
    latency_ba = models.FloatField(null=True, blank=True)
    calls = models.PositiveSmallIntegerField(default=0, help_text="calls made, retries included")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    judged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One judging per judge and conversation: a task that runs twice finds the row.
            models.UniqueConstraint(
                fields=["judge", "battle"], condition=Q(battle__isnull=False), name="votes_judgevote_one_per_battle"
            ),
            models.UniqueConstraint(
                fields=["judge", "question", "model_a", "model_b", "turns"],
                condition=Q(battle__isnull=True),
                name="votes_judgevote_one_per_pair",
            ),
            models.CheckConstraint(
                condition=Q(battle__isnull=False) | Q(question__isnull=False), name="votes_judgevote_has_conversation"
            ),
            models.CheckConstraint(condition=~Q(model_a=models.F("model_b")), name="votes_judgevote_distinct_models"),
            models.CheckConstraint(
                condition=~Q(status="done") | Q(verdict__in=["a", "b", "tie"]), name="votes_judgevote_done_has_verdict"
            ),
        ]
        indexes = [
            models.Index(fields=["judge", "status"], name="votes_judgevote_status"),
            models.Index(fields=["question", "model_a", "model_b", "turns"], name="votes_judgevote_pair"),
        ]

    def __str__(self) -> str:
        return f"{self.judge_id}:{self.battle_id or self.question_id}: {self.verdict or self.status}"

    @property
    def inconsistent(self) -> bool:
        """The two orders disagreed (position bias): counted as a tie."""
        return bool(self.verdict_ab and self.verdict_ba and self.verdict_ab != self.verdict_ba)

"""The battle domain: who competes (the model registry), what they answered
(answer sets), and the battles voters are shown."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from .names import MODEL_NAME_MAX, validate_model_name


class ArenaModel(models.Model):
    """A competitor. ``name`` is its public identity, revealed only after a vote."""

    class Status(models.TextChoices):
        ACTIVE = "active", "active"
        PAUSED = "paused", "paused"
        DEPRECATED = "deprecated", "deprecated"

    class Provider(models.TextChoices):
        ANSWER_SET = "answer_set", "pre-generated answer set"
        OPENAI = "openai", "OpenAI-compatible endpoint"

    # Spelled as registries spell them (gpt-3.5-turbo, meta-llama/Llama-3.1-8B-Instruct,
    # llama3.1:8b); arena/names.py has the one rule every entrance checks.
    name = models.CharField(
        max_length=MODEL_NAME_MAX,
        unique=True,
        validators=[validate_model_name],
        help_text="public identity as its registry spells it, e.g. gpt-4o or meta-llama/Llama-3.1-8B-Instruct: "
        "letters, digits and . _ - / : @ +",
    )
    display_name = models.CharField(max_length=200, blank=True)
    organization = models.CharField(max_length=200, blank=True)
    license = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=500, blank=True, help_text="the model's page, e.g. its model card")
    provider_kind = models.CharField(max_length=20, choices=Provider.choices, default=Provider.ANSWER_SET)
    provider_settings = models.JSONField(default=dict, blank=True)
    weight = models.FloatField(default=1.0, help_text="sampling weight; 0 never samples it")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    identity_words = models.JSONField(default=list, blank=True)
    max_concurrency = models.PositiveSmallIntegerField(
        default=4, help_text="live models: answers in flight at once; 0 = no limit"
    )
    # Live models: consecutive failed answers; ARENA_AUTO_PAUSE_FAILURES in a
    # row pause the model (status paused, with the reason and time below).
    consecutive_failures = models.PositiveIntegerField(default=0)
    paused_reason = models.CharField(max_length=300, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Case-insensitive, as people read lists: alpaca before RWKV.
        ordering = [Lower("name"), "name"]
        verbose_name = "model"
        constraints = [models.CheckConstraint(condition=Q(weight__gte=0), name="arena_model_weight_non_negative")]

    def __str__(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return self.display_name or self.name


class AnswerSet(models.Model):
    """A batch of pre-generated answers (FastChat llm_judge layout)."""

    name = models.CharField(max_length=120, unique=True)
    source = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Question(models.Model):
    answer_set = models.ForeignKey(AnswerSet, on_delete=models.CASCADE, related_name="questions")
    external_id = models.CharField(max_length=64)
    category = models.CharField(max_length=64, blank=True)
    turns = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["answer_set", "external_id"], name="arena_question_unique_per_set")
        ]

    def __str__(self) -> str:
        return f"{self.answer_set.name}:{self.external_id}"

    @property
    def prompt(self) -> str:
        return self.turns[0] if self.turns else ""


class Answer(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    model = models.ForeignKey(ArenaModel, on_delete=models.CASCADE, related_name="answers")
    turns = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["question", "model"], name="arena_answer_unique_per_model")]

    def __str__(self) -> str:
        return f"answer of model {self.model_id} to question {self.question_id}"

    @property
    def text(self) -> str:
        return self.turns[0] if self.turns else ""


class Voter(models.Model):
    """A pseudonymous voter: one per browser session or API token."""

    key = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    banned = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.key[:12]


class Battle(models.Model):
    """Two anonymous answers to one prompt, bound to the voter who opened it.

    Side "a" is ``model_a``; sides are shuffled when the battle is created.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "answers streaming"
        READY = "ready", "ready to vote"
        VOTED = "voted", "voted"
        FAILED = "failed", "failed"
        # The voter passed without voting: never counted, never revealed.
        SKIPPED = "skipped", "skipped"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: arena_battle_history leads with voter (issue #14:
    # every index is written on the open's insert and the vote's update).
    voter = models.ForeignKey(Voter, on_delete=models.PROTECT, related_name="battles", db_index=False)
    model_a = models.ForeignKey(ArenaModel, on_delete=models.PROTECT, related_name="battles_as_a")
    model_b = models.ForeignKey(ArenaModel, on_delete=models.PROTECT, related_name="battles_as_b")
    question = models.ForeignKey(Question, null=True, blank=True, on_delete=models.SET_NULL)
    prompt = models.TextField()
    response_a = models.TextField(blank=True)
    response_b = models.TextField(blank=True)
    # The whole conversation, one {"prompt", "a", "b"} per turn; the fields
    # above repeat its first turn (search, list pages, single-turn votes).
    turns = models.JSONField(default=list, blank=True)
    # Indexed as the first column of arena_battle_status_a and _b.
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.READY)
    # An answer named its own model or maker: the vote is kept but excluded
    # (reason identity_leak), as LMArena drops such battles.
    identity_leak = models.BooleanField(default=False)
    failure = models.CharField(max_length=500, blank=True, help_text="operator detail of a failed side")
    client_hash = models.CharField(max_length=64, blank=True, help_text="salted hash of the client address")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ready_at = models.DateTimeField(null=True, blank=True, help_text="when the last answer completed")
    # Set while a live turn is being answered: the models' concurrency slots
    # and the one-stream-per-battle rule count these (arena/live.py).
    streaming_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(model_a=models.F("model_b")), name="arena_battle_distinct_models")
        ]
        # Opening a battle reads these without touching the wide rows (the
        # answers' text): the voter's history for the question rotation and
        # the reveals (arena.services.voter_history), and each model's voted
        # battles for the end of the new-model boost (_voted_battles).
        indexes = [
            models.Index(fields=["voter", "question", "status", "model_a", "model_b"], name="arena_battle_history"),
            models.Index(fields=["status", "model_a"], name="arena_battle_status_a"),
            models.Index(fields=["status", "model_b"], name="arena_battle_status_b"),
            # Claiming a live stream counts the battles streaming now
            # (arena/live.py): a few rows among millions, so a partial index.
            models.Index(
                fields=["streaming_since"], name="arena_battle_streaming", condition=Q(streaming_since__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return str(self.id)


class IdempotencyRecord(models.Model):
    """The stored answer to an API request sent with an ``Idempotency-Key``
    header: a retry with the same key gets the same answer and changes nothing."""

    voter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64, help_text="sha256 of method, path and body")
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["voter", "key"], name="arena_idempotency_unique_per_voter")]

    def __str__(self) -> str:
        return f"{self.voter_id}:{self.key}"


# MT-bench's pairwise judge convention (Zheng et al., 2023): the question,
# each answer between start/end markers, a short explanation, then a verdict
# in double brackets. {question}, {answer_a} and {answer_b} are filled in
# (votes/judging.py); a multi-turn conversation lists every turn in each.
DEFAULT_JUDGE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
    "assistants to the user question displayed below. Choose the assistant that follows the user's "
    "instructions and answers the user's question better, considering helpfulness, relevance, accuracy, "
    "depth, creativity and level of detail. Begin by comparing the two responses and give a short "
    "explanation. Avoid any position bias: the order in which the responses were presented must not "
    "influence your decision. Do not let the length of the responses or the names of the assistants "
    "influence your evaluation. Be as objective as possible. After your explanation, output your final "
    'verdict by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B '
    'is better, and "[[C]]" for a tie.'
)
DEFAULT_JUDGE_TEMPLATE = (
    "[User Question]\n{question}\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)


class Judge(models.Model):
    """An automatic judge: an OpenAI-compatible endpoint asked which of two
    answers is better. Its verdicts are judge votes (votes.JudgeVote), kept
    apart from human votes and rated on their own leaderboard.

    ``provider_settings`` has the live models' shape (base_url, model,
    api_key_env: the NAME of the variable holding the key, temperature,
    max_tokens, timeout). Each order of a battle is one call against
    ``daily_budget``; a judge whose judgings fail ARENA_AUTO_PAUSE_FAILURES
    times in a row is paused, as a live model is.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "active"
        PAUSED = "paused", "paused"

    name = models.CharField(
        max_length=MODEL_NAME_MAX, unique=True, validators=[validate_model_name],
        help_text="the judge's name in ?source=judge:NAME; letters, digits and . _ - / : @ +",
    )  # fmt: skip
    provider_settings = models.JSONField(default=dict, blank=True)
    system_prompt = models.TextField(default=DEFAULT_JUDGE_SYSTEM, blank=True)
    prompt_template = models.TextField(
        default=DEFAULT_JUDGE_TEMPLATE,
        help_text="filled with {question}, {answer_a} and {answer_b}; the judge must answer [[A]], [[B]] or [[C]]",
    )
    daily_budget = models.PositiveIntegerField(
        default=1000, help_text="calls per UTC day (each order of a battle is one call; retries count); 0 = none"
    )
    max_concurrency = models.PositiveSmallIntegerField(default=2, help_text="judgings in flight at once; 0 = no limit")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    paused_reason = models.CharField(max_length=300, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    # The budget's counter: calls made on ``calls_day`` (UTC).
    calls_day = models.DateField(null=True, blank=True)
    calls_today = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = [Lower("name"), "name"]

    def __str__(self) -> str:
        return self.name

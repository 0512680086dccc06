"""Admin for the battle domain: the model registry (add, edit, activate /
pause / deprecate in bulk, test a live endpoint, see battles, votes and the
current rating) and the battles (read-only, both sides side by side).

The admin is the top layer, like ``arena/urls.py``: it reads the votes and
ratings apps to show a model's votes and rating. Writes go through
``arena.registry``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import DateFieldListFilter
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from . import registry, standings
from .admin_tools import EitherSideModelFilter, EstimatedCountPaginator, log_bulk_change
from .models import Answer, AnswerSet, ArenaModel, Battle, Question
from .names import MODEL_NAME_MAX, validate_model_name
from .rendering import render_markdown

admin.site.site_header = "Arena admin"
admin.site.site_title = "Arena admin"
admin.site.index_title = "Run the arena"
admin.site.index_template = "admin/arena_index.html"

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROVIDER_FIELDS = ("base_url", "model", "api_key_env", "temperature", "max_tokens", "timeout")


class ArenaModelForm(forms.ModelForm):
    """Provider settings as separate, validated fields (stored together in
    ``provider_settings``); identity words as one comma-separated line."""

    # Not stripped: " gpt-4" is refused with the reason (arena.names), not silently changed.
    name = forms.CharField(
        max_length=MODEL_NAME_MAX, strip=False, validators=[validate_model_name],
        help_text=ArenaModel._meta.get_field("name").help_text,
    )  # fmt: skip
    url = forms.URLField(
        required=False, max_length=500, assume_scheme="https", help_text=ArenaModel._meta.get_field("url").help_text
    )

    base_url = forms.CharField(
        required=False, max_length=500, label="Base URL",
        help_text="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1 or http://vllm:8000/v1",
    )  # fmt: skip
    model = forms.CharField(required=False, max_length=200, label="Model id at the provider")
    api_key_env = forms.CharField(
        required=False, max_length=100, label="API key variable",
        help_text="the NAME of the environment variable holding the key (e.g. OPENAI_API_KEY); "
        "the key itself is never stored",
    )  # fmt: skip
    temperature = forms.FloatField(required=False, min_value=0, max_value=2, initial=0.7)
    max_tokens = forms.IntegerField(required=False, min_value=1, max_value=100_000, initial=1024)
    timeout = forms.FloatField(required=False, min_value=1, max_value=600, initial=60, help_text="seconds")
    identity_words_text = forms.CharField(
        required=False, label="Identity words", widget=forms.Textarea(attrs={"rows": 2}),
        help_text="comma-separated; an answer containing one reveals the model and its vote is excluded",
    )  # fmt: skip

    class Meta:
        model = ArenaModel
        fields = [
            "name", "display_name", "organization", "license", "url", "provider_kind", "weight", "max_concurrency",
            "status", "paused_reason",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.provider_settings or {}
        for name in PROVIDER_FIELDS:
            if name in stored:
                self.initial[name] = stored[name]
        self.initial["identity_words_text"] = ", ".join(self.instance.identity_words or [])

    def clean_base_url(self) -> str:
        url = self.cleaned_data["base_url"].strip()
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise forms.ValidationError("enter an http:// or https:// URL, e.g. https://api.openai.com/v1")
        return url.rstrip("/")

    def clean_api_key_env(self) -> str:
        name = self.cleaned_data["api_key_env"].strip()
        if name and not ENV_NAME_RE.match(name):
            raise forms.ValidationError(
                "enter the name of an environment variable (letters, digits, _), not the key itself"
            )
        return name

    def clean_identity_words_text(self) -> list[str]:
        words = [w.strip() for w in self.cleaned_data["identity_words_text"].replace("\n", ",").split(",")]
        return list(dict.fromkeys(w for w in words if w))

    def clean(self):
        data = super().clean()
        if data.get("provider_kind") == ArenaModel.Provider.OPENAI:
            for name in ("base_url", "model"):
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, "required for an OpenAI-compatible endpoint")
        return data

    def save(self, commit: bool = True):
        model = super().save(commit=False)
        data = self.cleaned_data
        if data.get("provider_kind") == ArenaModel.Provider.OPENAI:
            settings = {"base_url": data["base_url"], "model": data["model"]}
            for name in ("api_key_env", "temperature", "max_tokens", "timeout"):
                if data.get(name) not in (None, ""):
                    settings[name] = data[name]
            model.provider_settings = settings
        else:
            model.provider_settings = {}
        model.identity_words = data["identity_words_text"]
        if commit:
            model.save()
        return model


def newest_overall_rows() -> dict[int, dict]:
    """model id → its overall row as the leaderboard listing it shows it
    (arena/standings.py, filled in by the ratings app): the same rank as the
    leaderboard, the model page and the model API."""
    return standings.overall_rows()


class AnswerSetFilter(admin.SimpleListFilter):
    """Models with at least one answer in the chosen answer set."""

    title = "answer set"
    parameter_name = "answer_set"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in AnswerSet.objects.order_by(Lower("name")).values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        # EXISTS, not a join: a model has many answers in a set, the list wants it once.
        return queryset.filter(Exists(Answer.objects.filter(model=OuterRef("pk"), question__answer_set_id=value)))


@admin.register(ArenaModel)
class ArenaModelAdmin(admin.ModelAdmin):
    form = ArenaModelForm
    list_display = [
        "name", "display_name", "organization", "provider_kind", "status", "weight", "rating", "rank",
        "counted_votes", "links",
    ]  # fmt: skip
    list_filter = ["status", "provider_kind", AnswerSetFilter]
    search_fields = ["name", "display_name", "organization"]
    actions = ["activate", "pause", "deprecate"]
    readonly_fields = ["consecutive_failures", "paused_at", "created_at", "standing"]
    fieldsets = [
        (None, {"fields": ["name", "display_name", "organization", "license", "url"]}),
        ("Provider", {"fields": ["provider_kind", "base_url", "model", "api_key_env", "temperature", "max_tokens",
                                 "timeout"]}),
        ("Sampling", {"fields": ["status", "weight", "max_concurrency", "identity_words_text"]}),
        ("Health", {"fields": ["consecutive_failures", "paused_reason", "paused_at", "created_at"]}),
        ("Battles, votes, rating", {"fields": ["standing"]}),
    ]  # fmt: skip
    list_per_page = 100

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # nothing to show about battles before the model exists
            return self.fieldsets[:-1]
        return self.fieldsets

    def get_changelist_instance(self, request):
        # One query for every row's rating: the newest snapshot's overall rows.
        cl = super().get_changelist_instance(request)
        rows = newest_overall_rows()
        for obj in cl.result_list:
            obj.standing_row = rows.get(obj.pk)
        return cl

    @admin.display(description="rating")
    def rating(self, obj) -> str:
        row = getattr(obj, "standing_row", None)
        return f"{row['rating']:.0f}" if row else "–"

    @admin.display(description="rank")
    def rank(self, obj) -> str:
        row = getattr(obj, "standing_row", None)
        return str(row["rank"]) if row and row["rank"] is not None else ("preliminary" if row else "–")

    @admin.display(description="counted votes")
    def counted_votes(self, obj) -> str:
        row = getattr(obj, "standing_row", None)
        return f"{row['battles']:,}" if row else "0"

    @admin.display(description="")
    def links(self, obj) -> str:
        return format_html(
            '<a href="{}?model={}">battles</a> · <a href="{}?model={}">votes</a>',
            reverse("admin:arena_battle_changelist"), obj.pk, reverse("admin:votes_vote_changelist"), obj.pk,
        )  # fmt: skip

    @admin.display(description="standing")
    def standing(self, obj) -> str:
        row = newest_overall_rows().get(obj.pk)
        battles = Battle.objects.filter(Q(model_a=obj) | Q(model_b=obj))
        rating = (
            format_html(
                "rating <b>{}</b> (95% CI {}–{}), rank {}; {} counted votes: {} wins, {} losses, {} ties",
                f"{row['rating']:.0f}", f"{row['lower']:.0f}", f"{row['upper']:.0f}",
                "preliminary (" + "; ".join(row["caveats"]) + ")" if row["rank"] is None else row["rank"],
                f"{row['battles']:,}", row.get("wins", "?"), row.get("losses", "?"), row.get("ties", "?"),
            )
            if row
            else "not rated yet (no counted votes in the newest snapshot)"
        )  # fmt: skip
        return format_html(
            '{}<br>{} battles ({} waiting for a vote, {} failed) · <a href="{}?model={}">see battles</a> · '
            '<a href="{}?model={}">see votes</a>',
            rating, f"{battles.count():,}", battles.filter(status=Battle.Status.READY).count(),
            battles.filter(status=Battle.Status.FAILED).count(),
            reverse("admin:arena_battle_changelist"), obj.pk, reverse("admin:votes_vote_changelist"), obj.pk,
        )  # fmt: skip

    def save_model(self, request, obj, form, change):
        if "status" in form.changed_data:
            reason = obj.paused_reason or f"paused by {request.user.get_username()}"
            for field, value in registry.status_changes(obj.status, reason=reason).items():
                setattr(obj, field, value)
        super().save_model(request, obj, form, change)

    def _set_status(self, request, queryset, status: str) -> None:
        ids = list(queryset.values_list("id", flat=True))
        changing = list(ArenaModel.objects.filter(id__in=ids).exclude(status=status))
        reason = f"paused by {request.user.get_username()}" if status == ArenaModel.Status.PAUSED else ""
        registry.set_status([m.id for m in changing], status, reason=reason)
        log_bulk_change(request, ArenaModel, changing, f"Set status to {status}.")
        self.message_user(
            request, f"{len(changing)} model(s) now {status}; {len(ids) - len(changing)} already were.",
            messages.SUCCESS,
        )  # fmt: skip

    @admin.action(description="Activate selected models", permissions=["change"])
    def activate(self, request, queryset):
        self._set_status(request, queryset, ArenaModel.Status.ACTIVE)

    @admin.action(description="Pause selected models", permissions=["change"])
    def pause(self, request, queryset):
        self._set_status(request, queryset, ArenaModel.Status.PAUSED)

    @admin.action(description="Deprecate selected models", permissions=["change"])
    def deprecate(self, request, queryset):
        self._set_status(request, queryset, ArenaModel.Status.DEPRECATED)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="arena_arenamodel_test_connection",
            ),
            *super().get_urls(),
        ]

    def test_connection_view(self, request: HttpRequest, object_id: str):
        """GET: a button; POST: one real call to the endpoint, its answer or error."""
        if not object_id.isdigit():
            raise Http404("no such model")
        model = get_object_or_404(ArenaModel, pk=object_id)
        if not self.has_change_permission(request, model):
            raise PermissionDenied
        result = None
        if request.method == "POST":
            result = registry.check_connection(model)
            outcome = f"answered in {result.seconds:.2f} s" if result.ok else f"failed ({result.kind}): {result.error}"
            self.log_change(request, model, f"Tested the connection: {outcome}"[:1000])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": model,
            "title": f"Test connection: {model.name}",
            "result": result,
            "endpoint": (model.provider_settings or {}).get("base_url", ""),
            "provider_model": (model.provider_settings or {}).get("model", ""),
            "prompt": registry.TEST_PROMPT,
            "is_live": model.provider_kind == ArenaModel.Provider.OPENAI,
        }
        return TemplateResponse(request, "admin/arena/arenamodel/test_connection.html", context)


class BattleVoteFilter(admin.SimpleListFilter):
    title = "vote"
    parameter_name = "vote"

    def lookups(self, request, model_admin):
        return [("none", "no vote"), ("counted", "counted"), ("excluded", "excluded")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(vote__isnull=True)
        if value == "counted":
            return queryset.filter(vote__excluded=False)
        if value == "excluded":
            return queryset.filter(vote__excluded=True)
        return queryset


@admin.register(Battle)
class BattleAdmin(admin.ModelAdmin):
    """Read-only: a battle is evidence."""

    list_display = ["short_id", "created_at", "status", "model_a", "model_b", "vote_winner", "vote_state",
                    "identity_leak"]  # fmt: skip
    list_select_related = ["model_a", "model_b", "vote"]
    list_filter = [EitherSideModelFilter, "status", ("created_at", DateFieldListFilter), BattleVoteFilter,
                   "identity_leak"]  # fmt: skip
    search_fields = ["prompt"]
    search_help_text = "prompt text (contains), or a battle id"
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    fieldsets = [
        ("Conversation", {"fields": ["side_by_side"]}),
        ("Vote", {"fields": ["vote_detail"]}),
        ("Battle", {"fields": ["id", "status", "created_at", "ready_at", "voter_link", "question", "identity_leak",
                               "failure"]}),
    ]  # fmt: skip
    readonly_fields = ["side_by_side", "vote_detail", "id", "status", "created_at", "ready_at", "voter_link",
                       "question", "identity_leak", "failure"]  # fmt: skip

    class Media:
        css = {"all": ["arena/admin.css", "arena/pygments.css"]}

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("model_a", "model_b", "voter", "vote__excluded_by")

    def get_search_results(self, request, queryset, search_term):
        import uuid

        term = search_term.strip()
        try:
            return queryset.filter(id=uuid.UUID(term)), False
        except ValueError:
            return super().get_search_results(request, queryset, search_term)

    @staticmethod
    def _vote(obj):
        return getattr(obj, "vote", None)

    @admin.display(description="battle", ordering="id")
    def short_id(self, obj) -> str:
        return str(obj.id)[:8]

    @admin.display(description="winner")
    def vote_winner(self, obj) -> str:
        vote = self._vote(obj)
        if vote is None:
            return "–"
        return {"a": obj.model_a.name, "b": obj.model_b.name}.get(vote.winner, vote.get_winner_display())

    @admin.display(description="vote")
    def vote_state(self, obj) -> str:
        vote = self._vote(obj)
        if vote is None:
            return "–"
        return f"excluded: {vote.exclusion_reason}" if vote.excluded else "counted"

    @admin.display(description="voter")
    def voter_link(self, obj) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:arena_voter_change", args=[obj.voter_id]), obj.voter)

    @admin.display(description="both sides")
    def side_by_side(self, obj) -> str:
        turns = obj.turns or [{"prompt": obj.prompt, "a": obj.response_a, "b": obj.response_b}]
        # Rendered as the voter saw them (arena/rendering.py escapes raw HTML).
        rows = format_html_join(
            "",
            '<tr><th colspan="2" class="arena-prompt"><span class="arena-turn">Turn {}</span>{}</th></tr>'
            '<tr><td class="arena-answer">{}</td><td class="arena-answer">{}</td></tr>',
            (
                (i + 1, *(mark_safe(render_markdown(t.get(k, ""))) for k in ("prompt", "a", "b")))  # noqa: S308 - render_markdown escapes raw HTML (docs/RENDERING.md)
                for i, t in enumerate(turns)
            ),
        )
        return format_html(
            '<table class="arena-battle"><thead><tr><th>Model A: {}</th><th>Model B: {}</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            obj.model_a.name, obj.model_b.name, rows,
        )  # fmt: skip

    @admin.display(description="vote")
    def vote_detail(self, obj) -> str:
        vote = self._vote(obj)
        if vote is None:
            return "no vote"
        winner = {"a": f"A ({obj.model_a.name})", "b": f"B ({obj.model_b.name})"}.get(
            vote.winner, vote.get_winner_display()
        )
        link = reverse("admin:votes_vote_change", args=[vote.pk])
        if not vote.excluded:
            return format_html('<a href="{}">vote {}</a>: {} — counted', link, vote.pk, winner)
        who = vote.excluded_by.get_username() if vote.excluded_by else "the system"
        when = vote.excluded_at.strftime("%Y-%m-%d %H:%M UTC") if vote.excluded_at else "at import"
        return format_html(
            '<a href="{}">vote {}</a>: {} — <strong>excluded</strong>, reason <code>{}</code>, by {}, {}',
            link, vote.pk, winner, vote.exclusion_reason, who, when,
        )  # fmt: skip


class QuestionInline(admin.TabularInline):
    model = Question
    fields = ["external_id", "category", "turns"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    max_num = 0


@admin.register(AnswerSet)
class AnswerSetAdmin(admin.ModelAdmin):
    list_display = ["name", "source", "created_at"]
    search_fields = ["name"]
    inlines = [QuestionInline]


from . import judge_admin  # noqa: E402,F401 - the judges, registered like live models

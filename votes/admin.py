"""Admin for moderators: votes (filter, exclude / reinstate in bulk with a
reason), their audit trail, and voters (anomaly score, vote history,
flag / unflag, ban / unban).

Votes are read-only here: the only writes are the actions, through
``votes.moderation`` and ``votes.anomaly``, each recorded with who and when
(``VoteExclusionEvent``, ``VoterFlag.changed_by``) and in the admin log.

The votes changelist must stay fast at millions of rows: every column comes
from one joined query (``list_select_related``), the count is PostgreSQL's
estimate above 20,000 rows, and each filter is served by an index
(``created_at``, ``voter``, and ``votes_vote_aggregate`` whose leading
columns are ``excluded, model_a, model_b``).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import DateFieldListFilter
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.cache import cache
from django.db.models import Count, F, Q
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from arena.admin_tools import LOG_PER_OBJECT_MAX, EitherSideModelFilter, EstimatedCountPaginator, log_bulk_change
from arena.models import Voter

from . import anomaly, moderation
from .models import ExclusionReason, Vote, VoteExclusionEvent, VoterFlag

REASONS_CACHE_KEY = "admin:vote-exclusion-reasons"
REASONS_CACHE_SECONDS = 300


def exclusion_reasons() -> list[str]:
    """The exclusion reasons present in the data. Reading them visits every
    excluded row (~0.1 s at 20,000 of a million), so the list is cached for
    five minutes; a moderator's new reason is added to it at once."""
    try:
        found = cache.get(REASONS_CACHE_KEY)
    except Exception:  # noqa: BLE001 - no cache: read them every time
        found = None
    if found is None:
        found = sorted(
            Vote.objects.filter(excluded=True).order_by().values_list("exclusion_reason", flat=True).distinct()
        )
        remember_reasons(found)
    return found


def remember_reasons(reasons: list[str]) -> None:
    try:
        cache.set(REASONS_CACHE_KEY, sorted(reasons), REASONS_CACHE_SECONDS)
    except Exception:  # noqa: BLE001, S110 - no cache: the reasons are read from the votes next time
        pass


class ReasonFilter(admin.SimpleListFilter):
    """Exclusion reasons present in the data; choosing one implies ``excluded``."""

    title = "exclusion reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return [(r, r) for r in exclusion_reasons()]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(excluded=True, exclusion_reason=value) if value else queryset


class VoterFilter(admin.SimpleListFilter):
    """One voter's votes (``?voter=<id>``, linked from the voter page); the
    choices are the chosen voter and the currently flagged ones."""

    title = "voter"
    parameter_name = "voter"

    def lookups(self, request, model_admin):
        flagged = list(
            VoterFlag.objects.filter(flagged=True).order_by("-score").values_list("voter_id", flat=True)[:20]
        )
        value = self.value() or ""
        ids = list(dict.fromkeys(([int(value)] if value.isdigit() else []) + flagged))
        voters = Voter.objects.in_bulk(ids)
        return [(str(i), f"{voters[i]} (flagged)" if i in flagged else str(voters[i])) for i in ids if i in voters]

    def has_output(self) -> bool:
        return bool(self.value()) or super().has_output()

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(voter_id=int(value)) if value.isdigit() else queryset.none()


class ModelSideFilter(EitherSideModelFilter):
    """Either side; written as ``excluded IN (f, t) AND model_x = id`` so
    PostgreSQL can read it from votes_vote_aggregate (excluded, model_a, model_b, …)."""

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        both = [False, True]
        return queryset.filter(
            Q(excluded__in=both, model_a_id=int(value)) | Q(excluded__in=both, model_b_id=int(value))
        )


class ExclusionEventInline(admin.TabularInline):
    model = VoteExclusionEvent
    fields = ["at", "action", "reason", "by"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")


class ReasonForm(forms.Form):
    """The reason asked for by the exclude / reinstate actions."""

    reason_choice = forms.ChoiceField(label="Reason", required=False)
    reason_other = forms.CharField(
        label="Other reason", required=False, max_length=moderation.REASON_MAX,
        help_text="a short code such as brigading or model_swap (letters, digits, _ : . -)",
    )  # fmt: skip

    def __init__(self, *args, reinstate: bool, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "other (type it below)")]
        if reinstate:
            choices += [("mistake", "excluded by mistake"), ("appeal_upheld", "appeal upheld")]
        else:
            choices += list(moderation.MODERATOR_REASONS.items())
        self.fields["reason_choice"].choices = choices

    def clean(self):
        data = super().clean()
        reason = (data.get("reason_other") or "").strip() or data.get("reason_choice") or ""
        try:
            data["reason"] = moderation.clean_reason(reason)
        except moderation.ModerationError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "model_a", "model_b", "winner_name", "voter_link", "excluded",
                    "exclusion_reason", "excluded_by"]  # fmt: skip
    list_display_links = ["id"]
    list_select_related = ["model_a", "model_b", "voter", "excluded_by"]
    list_filter = ["winner", "excluded", ReasonFilter, ModelSideFilter, VoterFilter, "source",
                   ("created_at", DateFieldListFilter)]  # fmt: skip
    search_fields = ["=external_key"]  # and a voter key: get_search_results
    search_help_text = "a voter key or an imported vote's external key (exact)"
    ordering = ["-created_at", "-id"]
    # Only indexed columns sort: ORDER BY anything else sorts every row.
    sortable_by = ["id", "created_at"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 100
    actions = ["exclude_selected", "reinstate_selected"]
    inlines = [ExclusionEventInline]
    fieldsets = [
        (None, {"fields": ["battle_link", "created_at", "voter_link", "source", "external_key"]}),
        ("Verdict", {"fields": ["model_a", "model_b", "winner_name"]}),
        ("Exclusion", {"fields": ["excluded", "exclusion_reason", "excluded_at", "excluded_by", "why"]}),
        ("Features", {"fields": ["language", "is_code", "prompt_tokens", "turns", "style"]}),
    ]
    readonly_fields = ["battle_link", "created_at", "voter_link", "source", "external_key", "model_a", "model_b",
                       "winner_name", "excluded", "exclusion_reason", "excluded_at", "excluded_by", "why",
                       "language", "is_code", "prompt_tokens", "turns", "style"]  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # votes are never deleted; exclude them

    def get_search_results(self, request, queryset, search_term):
        # The voter is looked up first by its unique key, so the votes are then
        # read through the index on voter_id (a join on the key made
        # PostgreSQL walk the created_at index instead).
        term = search_term.strip()
        voter_id = Voter.objects.filter(key=term).values_list("id", flat=True).first() if term else None
        if voter_id is not None:
            return queryset.filter(voter_id=voter_id), False
        return super().get_search_results(request, queryset, search_term)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Every field is read-only: changes happen only through the actions.
        extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False,
                         "show_save_and_add_another": False}  # fmt: skip
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="winner")
    def winner_name(self, obj) -> str:
        if obj.winner == Vote.Winner.A:
            return f"A: {obj.model_a.name}"
        if obj.winner == Vote.Winner.B:
            return f"B: {obj.model_b.name}"
        return obj.get_winner_display()

    @admin.display(description="voter")
    def voter_link(self, obj) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:arena_voter_change", args=[obj.voter_id]), obj.voter)

    @admin.display(description="battle")
    def battle_link(self, obj) -> str:
        if obj.battle_id is None:
            return "– (imported; no conversation stored)"
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:arena_battle_change", args=[obj.battle_id]), obj.battle_id
        )

    @admin.display(description="why")
    def why(self, obj) -> str:
        if not obj.excluded:
            return "counted"
        reason = obj.exclusion_reason
        explained = {
            ExclusionReason.NAMED: "identities were visible when the vote was cast",
            ExclusionReason.SELF_BATTLE: "a model against itself carries no information",
            ExclusionReason.ANOMALOUS_VOTER: "the voter is flagged as anomalous; unflag the voter to reinstate",
            **moderation.MODERATOR_REASONS,
        }
        text = explained.get(reason)
        if text is None and reason.startswith(ExclusionReason.IMPORTED_PREFIX):
            text = "excluded in the system the vote was imported from"
        return text or "a moderator's reason"

    def _reason_step(self, request, queryset, *, reinstate: bool):
        """The action's second page: ask for a reason, then apply it."""
        verb = "reinstate" if reinstate else "exclude"
        form = ReasonForm(request.POST if "apply" in request.POST else None, reinstate=reinstate)
        if "apply" in request.POST and form.is_valid():
            reason = form.cleaned_data["reason"]
            ids = list(queryset.values_list("id", flat=True).order_by())
            if reinstate:
                changed = moderation.reinstate_votes(ids, reason=reason, by=request.user)
            else:
                changed = moderation.exclude_votes(ids, reason=reason, by=request.user)
                if changed and reason not in exclusion_reasons():
                    remember_reasons([*exclusion_reasons(), reason])
            done = "Reinstated" if reinstate else "Excluded"
            many = len(changed) > LOG_PER_OBJECT_MAX
            log_bulk_change(request, Vote, changed if many else list(Vote.objects.filter(id__in=changed)),
                            f"{done} ({reason}).")  # fmt: skip
            skipped = len(ids) - len(changed)
            note = ""
            if skipped:
                note = f"; {skipped:,} left as they were" + (
                    " (votes of flagged voters follow their voter's flag)" if reinstate else " (already excluded)"
                )
            self.message_user(request, f"{done} {len(changed):,} vote(s), reason {reason}{note}.", messages.SUCCESS)
            return None
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        return TemplateResponse(
            request,
            "admin/votes/vote/reason.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": f"{verb.capitalize()} votes",
                "verb": verb,
                "form": form,
                "action": f"{verb}_selected",
                "selected": selected,
                "select_across": request.POST.get("select_across", "0"),
                "count": len(selected) if request.POST.get("select_across") != "1" else None,
                "preview": queryset.select_related("model_a", "model_b")[:10],
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description="Exclude selected votes…", permissions=["change"])
    def exclude_selected(self, request, queryset):
        return self._reason_step(request, queryset, reinstate=False)

    @admin.action(description="Reinstate selected votes…", permissions=["change"])
    def reinstate_selected(self, request, queryset):
        return self._reason_step(request, queryset, reinstate=True)


@admin.register(VoteExclusionEvent)
class VoteExclusionEventAdmin(admin.ModelAdmin):
    list_display = ["at", "vote_link", "action", "reason", "by"]
    list_select_related = ["by"]
    list_filter = ["action", ("at", DateFieldListFilter)]
    search_fields = ["=reason"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 100
    ordering = ["-at", "-id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="vote", ordering="vote_id")
    def vote_link(self, obj) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:votes_vote_change", args=[obj.vote_id]), obj.vote_id)


class FlaggedFilter(admin.SimpleListFilter):
    title = "anomaly flag"
    parameter_name = "flag"

    def lookups(self, request, model_admin):
        return [("flagged", "flagged"), ("manual", "decided by a person"), ("clear", "not flagged")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "flagged":
            return queryset.filter(anomaly__flagged=True)
        if value == "manual":
            return queryset.filter(anomaly__manual=True)
        if value == "clear":
            return queryset.filter(Q(anomaly__isnull=True) | Q(anomaly__flagged=False))
        return queryset


@admin.register(Voter)
class VoterAdmin(admin.ModelAdmin):
    list_display = ["voter", "user", "created_at", "banned", "score", "flagged", "votes_tested"]
    list_select_related = ["anomaly", "user"]
    list_filter = ["banned", FlaggedFilter]
    search_fields = ["^key", "user__username"]
    search_help_text = "voter key (prefix) or user name"
    ordering = ["-id"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 100
    actions = ["flag", "unflag", "ban", "unban"]
    fields = ["key", "user", "created_at", "banned", "anomaly_detail", "history"]
    readonly_fields = ["key", "user", "created_at", "anomaly_detail", "history"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_flag_permission(self, request) -> bool:
        return request.user.has_perm("votes.change_voterflag")

    @staticmethod
    def _flag(obj) -> VoterFlag | None:
        return getattr(obj, "anomaly", None)

    @admin.display(description="voter", ordering="key")
    def voter(self, obj) -> str:
        return str(obj)

    # Reversed for "highest first": descending with never-scored voters last.
    @admin.display(description="anomaly score", ordering=F("anomaly__score").asc(nulls_first=True))
    def score(self, obj) -> str:
        flag = self._flag(obj)
        return f"{flag.score:.1f}" if flag and flag.scored_at else "–"

    @admin.display(description="flagged", boolean=True, ordering="anomaly__flagged")
    def flagged(self, obj) -> bool:
        flag = self._flag(obj)
        return bool(flag and flag.flagged)

    @admin.display(description="votes tested")
    def votes_tested(self, obj) -> str:
        flag = self._flag(obj)
        return str(flag.votes_tested) if flag else "–"

    @admin.display(description="anomaly")
    def anomaly_detail(self, obj) -> str:
        flag = self._flag(obj)
        if flag is None:
            return "never scored (too few votes, or the detector has not run yet)"
        who = flag.changed_by.get_username() if flag.changed_by else "the detector"
        return format_html(
            "score <b>{}</b> (−log10 of the adjusted p-value {}); {} votes tested; p-values: outcome {}, side {}, "
            "favourite model {}; <b>{}</b>{}; last changed {} by {}",
            f"{flag.score:.1f}", f"{flag.adjusted_p:.3g}", flag.votes_tested, f"{flag.outcome_p:.3g}",
            f"{flag.side_p:.3g}", f"{flag.favour_p:.3g}", "flagged" if flag.flagged else "not flagged",
            " (a person's decision: the detector will not change it)" if flag.manual else "",
            flag.changed_at.strftime("%Y-%m-%d %H:%M UTC") if flag.changed_at else "never", who,
        )  # fmt: skip

    @admin.display(description="vote history")
    def history(self, obj) -> str:
        totals = Vote.objects.filter(voter=obj).aggregate(n=Count("id"), excluded=Count("id", filter=Q(excluded=True)))
        recent = Vote.objects.filter(voter=obj).select_related("model_a", "model_b").order_by("-created_at", "-id")
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (reverse("admin:votes_vote_change", args=[v.id]), v.id, v.created_at.strftime("%Y-%m-%d %H:%M"),
                 v.model_a.name, v.model_b.name, v.get_winner_display(),
                 f"excluded: {v.exclusion_reason}" if v.excluded else "counted")
                for v in recent[:50]
            ),
        )  # fmt: skip
        return format_html(
            '{} votes, {} excluded · <a href="{}?voter={}">all of them in the votes list</a>'
            '<table><thead><tr><th>vote</th><th>when</th><th>model A</th><th>model B</th><th>winner</th><th></th>'
            "</tr></thead><tbody>{}</tbody></table>",
            totals["n"], totals["excluded"], reverse("admin:votes_vote_changelist"), obj.pk, rows,
        )  # fmt: skip

    def save_model(self, request, obj, form, change):
        if "banned" in form.changed_data:  # the same write as the ban / unban actions
            moderation.set_banned([obj.pk], obj.banned)
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Flag selected voters (exclude their votes)", permissions=["flag"])
    def flag(self, request, queryset):
        voters = list(queryset)
        excluded = sum(anomaly.flag_voter(v.id, by=request.user) for v in voters)
        log_bulk_change(request, Voter, voters, f"Flagged as anomalous; {excluded} vote(s) excluded.")
        self.message_user(request, f"Flagged {len(voters)} voter(s); {excluded} vote(s) excluded.", messages.SUCCESS)

    @admin.action(description="Unflag selected voters (reinstate their flagged votes)", permissions=["flag"])
    def unflag(self, request, queryset):
        voters = list(queryset)
        reinstated = sum(anomaly.unflag_voter(v.id, by=request.user) for v in voters)
        log_bulk_change(request, Voter, voters, f"Unflagged; {reinstated} vote(s) reinstated.")
        self.message_user(
            request, f"Unflagged {len(voters)} voter(s); {reinstated} vote(s) reinstated.", messages.SUCCESS
        )

    def _ban(self, request, queryset, banned: bool) -> None:
        voters = list(queryset.exclude(banned=banned))
        moderation.set_banned([v.id for v in voters], banned)
        log_bulk_change(request, Voter, voters, "Banned." if banned else "Unbanned.")
        self.message_user(request, f"{'Banned' if banned else 'Unbanned'} {len(voters)} voter(s).", messages.SUCCESS)

    @admin.action(description="Ban selected voters (refuse their new votes)", permissions=["change"])
    def ban(self, request, queryset):
        self._ban(request, queryset, True)

    @admin.action(description="Unban selected voters", permissions=["change"])
    def unban(self, request, queryset):
        self._ban(request, queryset, False)


from . import judge_admin  # noqa: E402,F401 - judge votes, read-only

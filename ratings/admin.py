"""Admin for published ratings: snapshots (read-only, with parameters and
fingerprints; compare two), and "Recompute now" (``RecomputeRun``: queue the
Celery task, then watch it run)."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from . import admin_views, runs
from .models import RecomputeRun, Snapshot
from .selectors import registry, standings


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "method", "ci", "vote_count", "seconds", "view_count", "short_fingerprint"]
    list_filter = ["ci", "method"]
    ordering = ["-created_at", "-id"]
    list_per_page = 50
    actions = ["compare_two"]
    fields = ["created_at", "method", "ci", "parameters", "vote_count", "last_vote_id", "fingerprint", "duration",
              "views_table", "rows_table", "warnings"]  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False  # snapshots are published by a recompute

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name == "ratings_snapshot_changelist":
            qs = qs.defer("rows", "warnings", "params").annotate(n_views=Count("views"))
        return qs

    def get_urls(self):
        return [
            path("compare/", self.admin_site.admin_view(self.compare_view), name="ratings_snapshot_compare"),
            *super().get_urls(),
        ]

    def compare_view(self, request):
        return admin_views.compare_page(self, request)

    @admin.display(description="seconds", ordering="duration")
    def seconds(self, obj) -> str:
        return f"{obj.duration:.2f}"

    @admin.display(description="views")
    def view_count(self, obj) -> int:
        return obj.n_views

    @admin.display(description="fingerprint")
    def short_fingerprint(self, obj) -> str:
        return format_html('<code title="{}">{}…</code>', obj.fingerprint, obj.fingerprint[:12])

    @admin.display(description="parameters")
    def parameters(self, obj) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.params, indent=2, sort_keys=True))

    @admin.display(description="views")
    def views_table(self, obj) -> str:
        views = obj.views.order_by("style_control", "key").values_list(
            "key", "label", "style_control", "vote_count", "counts_fingerprint"
        )
        return format_html(
            "<table><thead><tr><th>key</th><th>label</th><th>style control</th><th>votes</th>"
            "<th>count-table fingerprint</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                             ((k, lbl, "yes" if s else "", f"{n:,}", fp) for k, lbl, s, n, fp in views)),
        )  # fmt: skip

    @admin.display(description="overall ranking")
    def rows_table(self, obj) -> str:
        # Ranked as the leaderboard ranks them (among the listed, established
        # models), with today's names and statuses.
        rows = sorted(
            standings(obj.rows, registry()).values(), key=lambda r: (r["rank"] is None, r["rank"] or 0, -r["rating"])
        )
        return format_html(
            "<table><thead><tr><th>rank</th><th>model</th><th>rating</th><th>95% CI</th><th>votes</th>"
            "<th>status</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}–{}</td><td>{}</td><td>{}</td></tr>",
                             ((r["rank"] or "–", r["model"], f"{r['rating']:.1f}", f"{r['lower']:.1f}", f"{r['upper']:.1f}",
                               f"{r['battles']:,}", r["status"]) for r in rows)),
        )  # fmt: skip

    @admin.action(description="Compare the two selected snapshots")
    def compare_two(self, request, queryset):
        pair = list(queryset.order_by("created_at", "id").values_list("id", flat=True)[:3])
        if len(pair) != 2:
            self.message_user(request, "Select exactly two snapshots to compare.", messages.ERROR)
            return None
        return HttpResponseRedirect(f"{reverse('admin:ratings_snapshot_compare')}?a={pair[0]}&b={pair[1]}")


class RecomputeForm(forms.Form):
    ci = forms.ChoiceField(
        label="Intervals", choices=[(c, c) for c in runs.CI_CHOICES],
        help_text="sandwich (fast, the default), bootstrap (resampled; slower), none",
    )  # fmt: skip
    rounds = forms.IntegerField(min_value=10, max_value=1000, initial=100, help_text="bootstrap rounds")
    force = forms.BooleanField(
        required=False, label="Publish even if no vote changed",
        help_text="otherwise a run that finds the counted votes unchanged returns the newest snapshot",
    )  # fmt: skip


@admin.register(RecomputeRun)
class RecomputeRunAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "ci", "requested_by", "requested_at", "run_seconds", "snapshot_link",
                    "short_error"]  # fmt: skip
    list_select_related = ["requested_by"]
    list_filter = ["status"]
    ordering = ["-requested_at", "-id"]
    list_per_page = 50
    fields = ["status", "ci", "rounds", "force", "requested_by", "requested_at", "started_at", "finished_at",
              "attempts", "task_id", "snapshot_link", "error"]  # fmt: skip
    readonly_fields = fields

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        return [
            path("<path:object_id>/status/", self.admin_site.admin_view(self.status_view),
                 name="ratings_recomputerun_status"),
            *super().get_urls(),
        ]  # fmt: skip

    def status_view(self, request, object_id):
        return admin_views.run_status_json(self, request, object_id)

    @admin.display(description="seconds")
    def run_seconds(self, obj) -> str:
        return f"{obj.seconds:.2f}" if obj.seconds is not None else "–"

    @admin.display(description="snapshot")
    def snapshot_link(self, obj) -> str:
        if obj.snapshot_id is None:
            return "–"
        return format_html(
            '<a href="{}">snapshot {}</a>', reverse("admin:ratings_snapshot_change", args=[obj.snapshot_id]),
            obj.snapshot_id,
        )  # fmt: skip

    @admin.display(description="error")
    def short_error(self, obj) -> str:
        return obj.error[:80]

    def add_view(self, request, form_url="", extra_context=None):
        """ "Recompute now": choose the interval method, queue the task, watch it."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RecomputeForm(request.POST or None, initial={"ci": settings.ARENA_LEADERBOARD_CI})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                run = runs.request_run(by=request.user, ci=data["ci"], rounds=data["rounds"], force=data["force"])
            except runs.RecomputeNotQueued as exc:
                self.log_addition(request, exc.run, f"Recompute requested; not queued: {exc}")
                self.message_user(request, f"The recompute was not queued: {exc}", messages.ERROR)
                form.add_error(None, f"the task queue is unreachable: {exc}")
            else:
                self.log_addition(request, run, f"Recompute requested ({run.ci}).")
                self.message_user(request, "Recompute queued.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:ratings_recomputerun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Recompute now",
            "form": form,
            "last": RecomputeRun.objects.order_by("-requested_at").first(),
        }
        return TemplateResponse(request, "admin/ratings/recomputerun/recompute_form.html", context)

"""Admin pages that are not a model's list or form: the dashboard and its
worker-health JSON, the snapshot comparison, a recompute run's status JSON.

All are wrapped in ``admin_site.admin_view`` (staff login required; anyone
else is sent to the login page) and check the model permission they show.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from . import dashboard, runs
from .compare import compare_rows
from .models import RecomputeRun, Snapshot, SnapshotView
from .selectors import registry, standings


def dashboard_page(request: HttpRequest):
    per_day = dashboard.votes_per_day()
    peak = max((n for _, n in per_day), default=0)
    snap, top = dashboard.leaderboard_top()
    exclusions = dashboard.exclusions()
    exclusions["percent"] = 100 * exclusions["share"]
    for reason in exclusions["reasons"]:
        reason["percent"] = 100 * reason["share"]
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "per_day": [(day, n, round(100 * n / peak) if peak else 0) for day, n in per_day],
        "votes_last_days": sum(n for _, n in per_day),
        "exclusions": exclusions,
        "battles": dashboard.battles_in_progress(),
        "snapshot": snap,
        "top": top,
        "last_run": dashboard.last_run(),
        "can_recompute": request.user.has_perm("ratings.add_recomputerun"),
    }
    return TemplateResponse(request, "admin/arena/dashboard.html", context)


def health_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(dashboard.worker_health())


def _view_choices(snap: Snapshot) -> dict[str, tuple[str, bool, str]]:
    """``key`` or ``key+style`` → (key, style_control, label) of the snapshot's views."""
    return {
        f"{key}{'+style' if style else ''}": (key, style, f"{label}{' (style control)' if style else ''}")
        for key, style, label in SnapshotView.objects.filter(snapshot=snap)
        .order_by("style_control", "key")
        .values_list("key", "style_control", "label")
    }


def compare_page(model_admin, request: HttpRequest):
    """``?a=<id>&b=<id>&view=<key>``: rating and rank changes per model from a to b."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    recent = list(Snapshot.objects.order_by("-created_at", "-id").only("id", "created_at", "vote_count", "ci")[:200])
    context = {
        **admin.site.each_context(request),
        "opts": Snapshot._meta,
        "title": "Compare snapshots",
        "recent": recent,
        "rows": None,
    }
    a_id, b_id = request.GET.get("a", ""), request.GET.get("b", "")
    if a_id or b_id:
        if not (a_id.isdigit() and b_id.isdigit()):
            context["error"] = "choose two snapshots"
            return TemplateResponse(request, "admin/ratings/snapshot/compare.html", context, status=400)
        older = Snapshot.objects.defer("rows").filter(id=int(a_id)).first()
        newer = Snapshot.objects.defer("rows").filter(id=int(b_id)).first()
        if older is None or newer is None:
            context["error"] = f"no snapshot {a_id if older is None else b_id}"
            return TemplateResponse(request, "admin/ratings/snapshot/compare.html", context, status=404)
        views_a, views_b = _view_choices(older), _view_choices(newer)
        common = {k: v for k, v in views_b.items() if k in views_a}
        chosen = request.GET.get("view") or "overall"
        if chosen not in common:
            context["error"] = f"view {chosen!r} is not in both snapshots"
            chosen = "overall" if "overall" in common else next(iter(common), None)
        rows = []
        if chosen is not None:
            key, style, _ = common[chosen]
            view_a = SnapshotView.objects.defer("pairs").get(snapshot=older, key=key, style_control=style)
            view_b = SnapshotView.objects.defer("pairs").get(snapshot=newer, key=key, style_control=style)
            reg = registry()
            old_rows, new_rows = standings(view_a.rows, reg).values(), standings(view_b.rows, reg).values()
            rows = [_shown(r) for r in compare_rows(list(old_rows), list(new_rows))]
        context.update(older=older, newer=newer, views=common, chosen=chosen, rows=rows,
                       changed=sum(1 for r in rows if r["rank_change"] or r["state"] != "both"))  # fmt: skip
    return TemplateResponse(request, "admin/ratings/snapshot/compare.html", context)


def _shown(row: dict) -> dict:
    """The comparison row with its changes as text and a direction."""
    rating, rank = row["rating_change"], row["rank_change"]
    row["rating_change_text"] = "–" if rating is None else f"{rating:+.1f}"
    row["rank_change_text"] = "–" if rank is None else ("=" if rank == 0 else f"{'▲' if rank > 0 else '▼'} {abs(rank)}")
    row["direction"] = "" if not rank else ("up" if rank > 0 else "down")
    return row


def run_status_json(model_admin, request: HttpRequest, object_id: str) -> JsonResponse:
    if not object_id.isdigit():
        raise Http404("no such run")
    run = get_object_or_404(RecomputeRun.objects.select_related("snapshot").defer("snapshot__rows"), pk=object_id)
    if not model_admin.has_view_permission(request, run):
        raise PermissionDenied
    return JsonResponse(runs.status_payload(run))

"""The ratings API, read from published snapshots.

Every response derived from a snapshot carries an ETag and Last-Modified
taken from that snapshot, so clients and proxies revalidate with a 304.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils.http import http_date, quote_etag
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from arena.models import ArenaModel

from . import selectors
from .models import Snapshot

CI_CHOICES = ("sandwich", "bootstrap", "none")


def _bool(request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValidationError({name: f"must be true or false, got {raw!r}"})


def _etag(snap: Snapshot, extra: str) -> str:
    return quote_etag(f"s{snap.id}-{extra}")


def not_modified(request, snap: Snapshot | None, extra: str = "") -> Response | None:
    """A 304 when the client already has this snapshot's answer; checked
    before any view data is loaded, so revalidation costs one small query."""
    if snap is None:
        return None
    etag = _etag(snap, extra)
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return _validators(Response(status=status.HTTP_304_NOT_MODIFIED), snap, etag)
    return None


def _validators(resp: Response, snap: Snapshot, etag: str) -> Response:
    resp["ETag"] = etag
    resp["Last-Modified"] = http_date(snap.created_at.timestamp())
    resp["Cache-Control"] = "public, max-age=0, must-revalidate"
    return resp


def cached_response(request, snap: Snapshot | None, data, extra: str = "") -> Response:
    """A Response with validators from the snapshot; 304 when the client has it."""
    if snap is None:
        return Response(data)
    return not_modified(request, snap, extra) or _validators(Response(data), snap, _etag(snap, extra))


def _query_key(request) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(request.query_params.items()))


class LeaderboardRow(serializers.Serializer):
    model = serializers.CharField()
    rating = serializers.FloatField(help_text="rating points (400/ln10 scale, base 1000)")
    lower = serializers.FloatField(help_text="95% interval, lower bound")
    upper = serializers.FloatField(help_text="95% interval, upper bound")
    rank = serializers.IntegerField(help_text="rank (UB) among the listed models")
    battles = serializers.IntegerField()
    organization = serializers.CharField()
    license = serializers.CharField()
    status = serializers.CharField()
    preliminary = serializers.BooleanField(help_text="fewer votes than the minimum for a settled rating")


LeaderboardOut = inline_serializer(
    "Leaderboard",
    {
        "updated_at": serializers.DateTimeField(allow_null=True),
        "votes": serializers.IntegerField(),
        "snapshot": serializers.IntegerField(allow_null=True),
        "category": serializers.CharField(),
        "style_control": serializers.BooleanField(),
        "ci": serializers.CharField(),
        "style_coefficients": serializers.DictField(child=serializers.FloatField(), allow_null=True),
        "models": LeaderboardRow(many=True),
    },
)


class LeaderboardApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("category", str, description="a key from /api/v1/categories/ (default overall)"),
            OpenApiParameter("style_control", bool),
            OpenApiParameter("ci", str, enum=list(CI_CHOICES), description="interval method of the snapshot"),
            OpenApiParameter("include_deprecated", bool),
        ],
        responses=LeaderboardOut,
        summary="The leaderboard: rank (UB), rating points, 95% interval",
    )
    def get(self, request):
        category = request.query_params.get("category") or "overall"
        style = _bool(request, "style_control")
        ci = request.query_params.get("ci") or None
        if ci is not None and ci not in CI_CHOICES:
            raise ValidationError({"ci": f"must be one of {', '.join(CI_CHOICES)}"})
        include_deprecated = _bool(request, "include_deprecated")
        snap = selectors.latest_snapshot(ci=ci)
        if snap is None:
            if ci and selectors.latest_snapshot() is not None:
                raise NotFound(f"no snapshot with {ci} intervals yet; staff can request one at /api/v1/snapshots/")
            return Response(
                {"updated_at": None, "votes": 0, "snapshot": None, "category": category, "style_control": style,
                 "ci": ci or settings.ARENA_LEADERBOARD_CI, "style_coefficients": None, "models": []}
            )
        early = not_modified(request, snap, _query_key(request))
        if early is not None:
            return early
        view = selectors.snapshot_view(snap, category, style)
        if view is None:
            raise NotFound(f"no view {category!r}{' with style control' if style else ''} in snapshot {snap.id}; "
                           "see /api/v1/categories/")
        rows = selectors.leaderboard_rows(view, include_deprecated=include_deprecated)
        keys = ("model", "rating", "lower", "upper", "rank", "battles", "organization", "license", "status",
                "preliminary")
        data = {
            "updated_at": snap.created_at,
            "votes": view.vote_count,
            "snapshot": snap.id,
            "category": category,
            "style_control": style,
            "ci": snap.ci,
            "style_coefficients": view.style_coefficients,
            "models": [{k: r.get(k) for k in keys} for r in rows],
        }
        return cached_response(request, snap, data, _query_key(request))


class HistoryApi(APIView):
    pagination_class = LimitOffsetPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("model", str, required=True),
            OpenApiParameter("category", str),
            OpenApiParameter("style_control", bool),
        ],
        summary="A model's rating and interval over the published snapshots (newest first)",
    )
    def get(self, request):
        name = request.query_params.get("model")
        if not name:
            raise ValidationError({"model": "required"})
        if not ArenaModel.objects.filter(name=name).exists():
            raise NotFound(f"no model {name!r}")
        category = request.query_params.get("category") or "overall"
        style = _bool(request, "style_control")
        points = selectors.model_history(name, category, style)
        pager = self.pagination_class()
        page = pager.paginate_queryset(points, request, view=self)
        return pager.get_paginated_response(page)


class ModelListApi(APIView):
    pagination_class = LimitOffsetPagination

    @extend_schema(summary="Registered models with their current overall rating")
    def get(self, request):
        snap = selectors.latest_snapshot()
        ratings = {}
        if snap is not None:
            view = selectors.snapshot_view(snap, "overall", False)
            ratings = {r["model"]: r for r in (view.rows if view else [])}
        models = [
            {
                "name": m.name,
                "display_name": m.label,
                "organization": m.organization,
                "license": m.license,
                "status": m.status,
                "rating": ratings.get(m.name, {}).get("rating"),
                "battles": ratings.get(m.name, {}).get("battles", 0),
            }
            for m in ArenaModel.objects.order_by("name")
        ]
        pager = self.pagination_class()
        page = pager.paginate_queryset(models, request, view=self)
        return pager.get_paginated_response(page)


class ModelDetailApi(APIView):
    @extend_schema(summary="A model's card: ratings per category, battles, win rate against each opponent")
    def get(self, request, name):
        model = get_object_or_404(ArenaModel, name=name)
        snap = selectors.latest_snapshot()
        data = {
            "name": model.name,
            "display_name": model.label,
            "organization": model.organization,
            "license": model.license,
            "status": model.status,
            "ratings": [],
            "opponents": [],
        }
        if snap is not None:
            data["ratings"] = selectors.model_ratings(snap, model.name)
            data["opponents"] = selectors.model_opponents(snap, model.name)
        return cached_response(request, snap, data, f"model-{model.name}")


class MatrixApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=["winrate", "count", "predicted"]),
            OpenApiParameter("category", str),
            OpenApiParameter("style_control", bool),
        ],
        summary="Pairwise matrix: observed win rate (a tie is half a win), battle counts, or BT-predicted win rate",
    )
    def get(self, request):
        kind = request.query_params.get("kind") or "winrate"
        if kind not in ("winrate", "count", "predicted"):
            raise ValidationError({"kind": "must be winrate, count or predicted"})
        category = request.query_params.get("category") or "overall"
        style = _bool(request, "style_control")
        snap = selectors.latest_snapshot()
        if snap is None:
            raise NotFound("no snapshot published yet")
        early = not_modified(request, snap, _query_key(request))
        if early is not None:
            return early
        view = selectors.snapshot_view(snap, category, style, with_pairs=True)
        if view is None:
            raise NotFound(f"no view {category!r} in snapshot {snap.id}")
        models, matrix = selectors.matrix(view, kind)
        clean = [[None if (v is None or (isinstance(v, float) and math.isnan(v))) else v for v in row] for row in matrix]
        data = {"kind": kind, "category": category, "style_control": style, "snapshot": snap.id, "models": models,
                "matrix": clean}
        return cached_response(request, snap, data, _query_key(request))


class SnapshotSummary(serializers.ModelSerializer):
    class Meta:
        model = Snapshot
        fields = ["id", "created_at", "method", "ci", "params", "vote_count", "fingerprint", "duration"]


class SnapshotListApi(APIView):
    pagination_class = LimitOffsetPagination

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAdminUser()]
        return super().get_permissions()

    @extend_schema(responses=SnapshotSummary(many=True), summary="Published snapshots, newest first")
    def get(self, request):
        pager = self.pagination_class()
        page = pager.paginate_queryset(Snapshot.objects.order_by("-created_at", "-id"), request, view=self)
        return pager.get_paginated_response(SnapshotSummary(page, many=True).data)

    @extend_schema(
        request=inline_serializer("RecomputeRequest", {"ci": serializers.ChoiceField(choices=CI_CHOICES),
                                                      "rounds": serializers.IntegerField(min_value=10,
                                                                                         max_value=1000)}),
        responses={202: inline_serializer("RecomputeQueued", {"queued": serializers.BooleanField()})},
        summary="Queue a recompute (staff), e.g. with bootstrap intervals",
    )
    def post(self, request):
        ci = (request.data or {}).get("ci", settings.ARENA_LEADERBOARD_CI)
        if ci not in CI_CHOICES:
            raise ValidationError({"ci": f"must be one of {', '.join(CI_CHOICES)}"})
        try:
            rounds = int((request.data or {}).get("rounds", 100))
        except (TypeError, ValueError) as exc:
            raise ValidationError({"rounds": "must be an integer"}) from exc
        if not 10 <= rounds <= 1000:
            raise ValidationError({"rounds": "must be between 10 and 1000"})
        from arena.celery import app

        try:
            app.send_task("ratings.recompute", kwargs={"ci": ci, "rounds": rounds, "force": True})
        except Exception as exc:  # noqa: BLE001 - broker down: say so, change nothing
            return Response({"error": "broker_unavailable", "detail": f"could not queue the recompute: {exc}"},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


class SnapshotDetailApi(APIView):
    @extend_schema(summary="One snapshot: parameters, fingerprint and its views")
    def get(self, request, snapshot_id: int):
        snap = get_object_or_404(Snapshot, id=snapshot_id)
        data = dict(SnapshotSummary(snap).data)
        data["views"] = [
            {"key": v.key, "label": v.label, "style_control": v.style_control, "votes": v.vote_count,
             "counts_fingerprint": v.counts_fingerprint, "style_coefficients": v.style_coefficients,
             "warnings": v.warnings}
            for v in snap.views.order_by("style_control", "key")
        ]
        data["warnings"] = snap.warnings
        return cached_response(request, snap, data, "detail")


class CategoriesApi(APIView):
    @extend_schema(summary="The leaderboard views of the newest snapshot and their vote counts")
    def get(self, request):
        snap = selectors.latest_snapshot()
        if snap is None:
            return Response({"snapshot": None, "categories": []})
        views = [
            {"key": v.key, "label": v.label, "style_control": v.style_control, "votes": v.vote_count}
            for v in snap.views.order_by("style_control", "key").only("key", "label", "style_control", "vote_count")
        ]
        return cached_response(request, snap, {"snapshot": snap.id, "categories": views}, "categories")

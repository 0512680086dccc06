"""The ratings API, read from published snapshots.

Every response derived from a snapshot carries an ETag and Last-Modified
taken from that snapshot, so clients and proxies revalidate with a 304.
The leaderboard, the most requested answer, is rendered once per process
for each snapshot, query and registry version (a snapshot never changes;
model names and details are joined from the registry when read) and then
served from memory: two small queries (the newest snapshot, the registry),
then bytes. Answers that show registry details carry the registry version
in their ETag too, so an admin edit is never answered with a stale 304.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections import OrderedDict

from django.conf import settings
from django.db.models.functions import Lower
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import http_date, quote_etag
from django.views.decorators.http import condition
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from arena.models import ArenaModel
from arena.names import is_valid_model_name, model_name_problem
from arena.schema import ErrorSerializer

from . import intervals, judge_api, runs, selectors
from .models import Snapshot

CI_CHOICES = ("sandwich", "bootstrap", "none")
MAX_ID = 2**63 - 1
# Text parameters: PostgreSQL text cannot hold NUL, so a NUL is refused (400).
NO_NUL = {"type": "string", "pattern": "^[^\\x00]*$"}

ErrorOut = ErrorSerializer
MAX_PAGE_SIZE = 10_000
MAX_OFFSET = 2**31 - 1
PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        description=f"page size (default 50, at most {MAX_PAGE_SIZE})",
    ),
    OpenApiParameter("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}, description="rows to skip"),
]


def _int(request, name: str, default: int, minimum: int, maximum: int) -> int:
    """An integer query parameter within [minimum, maximum]; anything else is a
    400 (an unchecked value would reach SQL, where it is out of range)."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not minimum <= int(raw) <= maximum:
        raise ValidationError({name: f"must be an integer from {minimum} to {maximum}"})
    return int(raw)


class Pages(LimitOffsetPagination):
    """limit/offset pages whose parameters are checked, not silently replaced."""

    def get_limit(self, request):
        return _int(request, self.limit_query_param, self.default_limit, 1, MAX_PAGE_SIZE)

    def get_offset(self, request):
        return _int(request, self.offset_query_param, 0, 0, MAX_OFFSET)


class CanRecompute(IsAdminUser):
    """Staff with the recompute permission: the admin group and superusers,
    as on the admin pages (arena/roles.py); a moderator may not."""

    message = "only the admin group may request a recompute"

    def has_permission(self, request, view):
        return super().has_permission(request, view) and request.user.has_perm("ratings.add_recomputerun")


def paginated(name: str, row: serializers.Serializer) -> serializers.Serializer:
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": row,
        },
    )


def _text(request, name: str, default: str = "") -> str:
    """A query parameter; NUL characters are refused (PostgreSQL text cannot hold them)."""
    value = request.query_params.get(name) or default
    if "\x00" in value:
        raise ValidationError({name: "must not contain NUL characters"})
    return value


def _choice(request, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    """An enum query parameter: absent → default; present, it must be one of
    the choices (an empty value too: the schema's enum has no "")."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw not in choices:
        raise ValidationError({name: f"must be one of {', '.join(choices)}"})
    return raw


def _bool(request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValidationError({name: f"must be true or false, got {raw!r}"})


def _etag(snap: Snapshot, extra: str) -> str:
    """The snapshot and a digest of what else the answer depends on (a
    header value must stay short and latin-1, whatever the query holds)."""
    return quote_etag(f"s{snap.id}-{hashlib.sha256(extra.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}")


def snapshot_conditional(method):
    """Conditional GET for an APIView handler, by Django's ``condition()``:
    the ETag is the snapshot's and a digest of what else the answer depends
    on, from ``self.validators(request, *args, **kwargs) -> (snapshot,
    extra)``, run before the handler (it may keep what it read on ``self``
    for the handler, so revalidation costs only the queries it needs). A 304
    when If-None-Match names it, weak (``W/"…"``) or strong, alone or in a
    list, or is ``*``. No snapshot: no validators, no 304.

    Last-Modified (the snapshot's publication) is sent but not used for
    If-Modified-Since: an admin edit of the registry changes an answer
    without a new snapshot, which the ETag carries and a date cannot.
    """

    @functools.wraps(method)
    def handler(self, request, *args, **kwargs):
        found: dict = {}

        def etag(_request, *_args, **_kwargs) -> str | None:
            found["snap"], extra = self.validators(request, *args, **kwargs)
            return _etag(found["snap"], extra) if found["snap"] is not None else None

        def respond(_request, *_args, **_kwargs):
            return method(self, request, *args, **kwargs)

        response = condition(etag_func=etag)(respond)(request, *args, **kwargs)
        snap = found.get("snap")
        if snap is not None and response.status_code in (200, 304):
            response.headers.setdefault("Last-Modified", http_date(snap.created_at.timestamp()))
            response["Cache-Control"] = "public, max-age=0, must-revalidate"
        return response

    return handler


class RenderedBodies:
    """A small per-process LRU of rendered JSON bodies. Keys must name the
    snapshot (id and creation time) and the registry version, so an entry is
    never stale."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict[tuple, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self.lock:
            body = self.items.get(key)
            if body is not None:
                self.items.move_to_end(key)
            return body

    def put(self, key: tuple, body: bytes) -> None:
        with self.lock:
            self.items[key] = body
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


LEADERBOARD_BODIES = RenderedBodies(256)


class LeaderboardRow(serializers.Serializer):
    model = serializers.CharField()
    rating = serializers.FloatField(help_text="rating points (400/ln10 scale, base 1000)")
    lower = serializers.FloatField(help_text="95% interval, lower bound")
    upper = serializers.FloatField(help_text="95% interval, upper bound")
    rank = serializers.IntegerField(
        allow_null=True, help_text="rank (UB) among the listed established models; null for a preliminary row"
    )
    battles = serializers.IntegerField()
    display_name = serializers.CharField()
    organization = serializers.CharField()
    license = serializers.CharField()
    status = serializers.CharField()
    preliminary = serializers.BooleanField(
        help_text="unranked: fewer votes than RATINGS_MIN_VOTES, or flagged (see flags and caveats)"
    )
    flags = serializers.ListField(
        child=serializers.CharField(),
        help_text="why a row is preliminary: few_votes, one_battle, only_wins, only_losses, separated, disconnected",
    )
    caveats = serializers.ListField(child=serializers.CharField(), help_text="the flags in words")


LeaderboardOut = inline_serializer(
    "Leaderboard",
    {
        "updated_at": serializers.DateTimeField(allow_null=True),
        "votes": serializers.IntegerField(),
        "snapshot": serializers.IntegerField(allow_null=True),
        "category": serializers.CharField(),
        "style_control": serializers.BooleanField(),
        "ci": serializers.CharField(),
        "intervals": serializers.ChoiceField(
            choices=intervals.CHOICES,
            help_text="which 95% intervals lower/upper and rank (UB) use: per model, or all models at once",
        ),
        "style_coefficients": serializers.DictField(child=serializers.FloatField(), allow_null=True),
        "models": LeaderboardRow(many=True),
        "judge_preliminary": judge_api.ColdStartRows,
        "source": serializers.CharField(required=False, help_text="judge:NAME on a judge's board"),
    },
)


class LeaderboardApi(APIView):
    def validators(self, request) -> tuple[Snapshot | None, str]:
        self.category = _text(request, "category", "overall")
        self.style = _bool(request, "style_control")
        self.ci = _choice(request, "ci", CI_CHOICES, None)
        self.include_deprecated = _bool(request, "include_deprecated")
        self.shown = _choice(request, "intervals", intervals.CHOICES, None) or intervals.default()
        self.judge = judge_api.parse_source(request)
        if self.judge is not None:  # a judge's board: answered in full, no conditional GET
            self.snap = None
            return None, ""
        self.snap = selectors.newest_snapshot(ci=self.ci)
        if self.snap is None:
            return None, ""
        # The answer depends on these, on the snapshot and on the registry
        # (names, organizations, statuses are joined when read): an admin
        # edit changes reg.version, hence the ETag and the cache key.
        self.reg = selectors.registry()
        floor = selectors.min_votes()
        self.query = (
            f"{self.category}|{int(self.style)}|{self.ci or ''}|{int(self.include_deprecated)}|m{floor}|{self.shown}"
            f"|r{self.reg.version}|j{judge_api.boards_version()}"  # + the judges' preliminary rows (cold start)
        )
        return self.snap, self.query

    @extend_schema(
        parameters=[
            OpenApiParameter("category", NO_NUL, description="a key from /api/v1/categories/ (default overall)"),
            OpenApiParameter("style_control", bool),
            OpenApiParameter("ci", str, enum=list(CI_CHOICES), description="interval method of the snapshot"),
            OpenApiParameter("include_deprecated", bool),
            OpenApiParameter(
                "intervals",
                str,
                enum=list(intervals.CHOICES),
                description="marginal (default, as LMArena) or simultaneous 95% intervals",
            ),
            OpenApiParameter(
                "source",
                {"type": "string", "pattern": "^(human|judge:[^\\x00]+)$"},
                description="human (default) or judge:NAME, a judge's own board (/api/v1/judges/)",
            ),
        ],
        responses={200: LeaderboardOut, 400: ErrorOut, 404: ErrorOut},
        summary="The leaderboard: rank (UB), rating points, 95% interval",
    )
    @snapshot_conditional
    def get(self, request):
        if self.judge is not None:  # a judge's board, never mixed with people's
            return Response(
                judge_api.judge_leaderboard(
                    self.judge,
                    category=self.category,
                    style=self.style,
                    include_deprecated=self.include_deprecated,
                    shown=self.shown,
                )
            )
        snap, category, style, shown = self.snap, self.category, self.style, self.shown
        if snap is None:
            if self.ci and selectors.newest_snapshot() is not None:
                raise NotFound(f"no snapshot with {self.ci} intervals yet; staff can request one at /api/v1/snapshots/")
            return Response(
                {"updated_at": None, "votes": 0, "snapshot": None, "category": category, "style_control": style,
                 "ci": self.ci or settings.ARENA_LEADERBOARD_CI, "intervals": shown, "style_coefficients": None,
                 "models": [], "judge_preliminary": judge_api.cold_start([], selectors.registry())}
            )  # fmt: skip
        data = functools.partial(self.data, snap, category, style, self.include_deprecated, self.reg, shown)
        if not isinstance(request.accepted_renderer, JSONRenderer):  # the browsable API renders the data itself
            return Response(data())
        key = (snap.id, snap.created_at, self.query)
        body = LEADERBOARD_BODIES.get(key)
        if body is None:
            body = JSONRenderer().render(data())
            LEADERBOARD_BODIES.put(key, body)
        return HttpResponse(body, content_type="application/json")

    @staticmethod
    def data(
        snap: Snapshot,
        category: str,
        style: bool,
        include_deprecated: bool,
        reg: selectors.Registry | None = None,
        shown: str = "marginal",
    ) -> dict:
        view = selectors.snapshot_view(snap, category, style)
        if view is None:
            raise NotFound(
                f"no view {category!r}{' with style control' if style else ''} in snapshot {snap.id}; "
                "see /api/v1/categories/"
            )
        view = intervals.view_with(view, shown)  # rank (UB) below comes from the chosen bounds
        if view is None:
            raise NotFound(intervals.missing_detail(snap.id))
        rows = selectors.leaderboard_rows(view, include_deprecated=include_deprecated, reg=reg)
        keys = (
            "model",
            "rating",
            "lower",
            "upper",
            "rank",
            "battles",
            "display_name",
            "organization",
            "license",
            "status",
            "preliminary",
            "flags",
            "caveats",
        )
        return {
            "updated_at": snap.created_at,
            "votes": view.vote_count,
            "snapshot": snap.id,
            "category": category,
            "style_control": style,
            "ci": snap.ci,
            "intervals": shown,
            "style_coefficients": view.style_coefficients,
            "models": [{k: r.get(k) for k in keys} for r in rows],
            "judge_preliminary": judge_api.cold_start(view.rows, reg) if category == "overall" and not style else [],
        }


HistoryPoint = inline_serializer(
    "HistoryPoint",
    {
        "snapshot": serializers.IntegerField(),
        "created_at": serializers.DateTimeField(),
        "rating": serializers.FloatField(),
        "lower": serializers.FloatField(),
        "upper": serializers.FloatField(),
        "rank": serializers.IntegerField(allow_null=True, help_text="as the leaderboard showed it; null: preliminary"),
        "battles": serializers.IntegerField(),
    },
    many=True,
)


class HistoryApi(APIView):
    pagination_class = Pages

    @extend_schema(
        parameters=[
            OpenApiParameter("model", {**NO_NUL, "minLength": 1}, required=True),
            OpenApiParameter("category", NO_NUL),
            OpenApiParameter("style_control", bool),
            *PAGE_PARAMETERS,
        ],
        responses={200: paginated("PaginatedHistory", HistoryPoint), 400: ErrorOut, 404: ErrorOut},
        summary="A model's rating and interval over the published snapshots (newest first)",
    )
    def get(self, request):
        name = _text(request, "model")
        if not name:
            raise ValidationError({"model": "required"})
        if (problem := model_name_problem(name)) is not None:
            # No model can have such a name (arena.names), so none is found.
            raise NotFound(f"no model {name!r}: a model name {problem}")
        model_id = ArenaModel.objects.filter(name=name).values_list("id", flat=True).first()
        if model_id is None:
            raise NotFound(f"no model {name!r}")
        category = _text(request, "category", "overall")
        style = _bool(request, "style_control")
        # Paginated in SQL: a COUNT and one page of the indexed RatingPoint table.
        pager = self.pagination_class()
        page = pager.paginate_queryset(selectors.model_history(model_id, category, style), request, view=self)
        return pager.get_paginated_response(selectors.history_points(page))


ModelSummary = inline_serializer(
    "ModelSummary",
    {
        "name": serializers.CharField(),
        "display_name": serializers.CharField(),
        "organization": serializers.CharField(),
        "license": serializers.CharField(),
        "url": serializers.CharField(help_text="the model's page, empty when not given"),
        "status": serializers.CharField(),
        "rating": serializers.FloatField(allow_null=True, help_text="overall rating points; null before any vote"),
        "rank": serializers.IntegerField(
            allow_null=True, help_text="overall rank (UB), as the leaderboard shows it; null: unranked"
        ),
        "battles": serializers.IntegerField(),
    },
    many=True,
)


class ModelListApi(APIView):
    pagination_class = Pages

    @extend_schema(
        operation_id="v1_models_list",
        parameters=PAGE_PARAMETERS,
        responses=paginated("PaginatedModels", ModelSummary),
        summary="Registered models with their current overall rating",
    )
    def get(self, request):
        ratings = selectors.overall_standings()
        models = [
            {
                "name": m.name,
                "display_name": m.label,
                "organization": m.organization,
                "license": m.license,
                "url": m.url,
                "status": m.status,
                "rating": ratings.get(m.id, {}).get("rating"),
                "rank": ratings.get(m.id, {}).get("rank"),
                "battles": ratings.get(m.id, {}).get("battles", 0),
            }
            for m in ArenaModel.objects.order_by(Lower("name"), "name")
        ]
        pager = self.pagination_class()
        page = pager.paginate_queryset(models, request, view=self)
        return pager.get_paginated_response(page)


ModelCard = inline_serializer(
    "ModelCard",
    {
        "name": serializers.CharField(),
        "display_name": serializers.CharField(),
        "organization": serializers.CharField(),
        "license": serializers.CharField(),
        "url": serializers.CharField(help_text="the model's page, empty when not given"),
        "status": serializers.CharField(),
        "ratings": inline_serializer(
            "ModelRating",
            {
                "category": serializers.CharField(),
                "label": serializers.CharField(),
                "style_control": serializers.BooleanField(),
                "rating": serializers.FloatField(),
                "lower": serializers.FloatField(),
                "upper": serializers.FloatField(),
                "rank": serializers.IntegerField(
                    allow_null=True, help_text="as the leaderboard listing the model ranks it; null: preliminary"
                ),
                "preliminary": serializers.BooleanField(),
                "caveats": serializers.ListField(child=serializers.CharField()),
                "battles": serializers.IntegerField(),
                "wins": serializers.IntegerField(),
                "losses": serializers.IntegerField(),
                "ties": serializers.IntegerField(),
            },
            many=True,
        ),
        "opponents": inline_serializer(
            "Opponent",
            {
                "opponent": serializers.CharField(),
                "battles": serializers.IntegerField(),
                "win_rate": serializers.FloatField(help_text="share of points scored; a tie is half"),
            },
            many=True,
        ),
    },
)


class ModelDetailApi(APIView):
    def validators(self, request, name) -> tuple[Snapshot | None, str]:
        if not is_valid_model_name(name):  # e.g. NUL, which PostgreSQL refuses in a query
            raise NotFound(f"no model {name!r}")
        self.model = get_object_or_404(ArenaModel, name=name)
        self.snap = selectors.newest_snapshot()
        self.reg = selectors.registry()
        # The registry version too: a status or organization edit is a new answer, never a 304.
        return self.snap, f"model-{self.model.name}|r{self.reg.version}"

    @extend_schema(
        responses={200: ModelCard, 404: ErrorOut},
        summary="A model's card: ratings per category, battles, win rate against each opponent",
    )
    @snapshot_conditional
    def get(self, request, name):
        model, snap, reg = self.model, self.snap, self.reg
        data = {
            "name": model.name,
            "display_name": model.label,
            "organization": model.organization,
            "license": model.license,
            "url": model.url,
            "status": model.status,
            "ratings": [],
            "opponents": [],
        }
        if snap is not None:
            data["ratings"] = selectors.model_ratings(snap, model, reg)
            data["opponents"] = selectors.model_opponents(snap, model, reg)
        return Response(data)


MatrixOut = inline_serializer(
    "Matrix",
    {
        "kind": serializers.CharField(),
        "category": serializers.CharField(),
        "style_control": serializers.BooleanField(),
        "snapshot": serializers.IntegerField(),
        "models": serializers.ListField(child=serializers.CharField(), help_text="rows and columns, leaderboard order"),
        "matrix": serializers.ListField(
            child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
            help_text="null where two models never met",
        ),
    },
)


class MatrixApi(APIView):
    def validators(self, request) -> tuple[Snapshot | None, str]:
        self.kind = _choice(request, "kind", ("winrate", "count", "predicted"), "winrate")
        self.category = _text(request, "category", "overall")
        self.style = _bool(request, "style_control")
        self.snap = selectors.newest_snapshot()
        if self.snap is None:
            raise NotFound("no snapshot published yet")
        self.reg = selectors.registry()
        return self.snap, f"matrix|{self.kind}|{self.category}|{int(self.style)}|r{self.reg.version}"

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=["winrate", "count", "predicted"]),
            OpenApiParameter("category", NO_NUL),
            OpenApiParameter("style_control", bool),
        ],
        responses={200: MatrixOut, 400: ErrorOut, 404: ErrorOut},
        summary="Pairwise matrix: observed win rate (a tie is half a win), battle counts, or BT-predicted win rate",
    )
    @snapshot_conditional
    def get(self, request):
        kind, category, style, snap, reg = self.kind, self.category, self.style, self.snap, self.reg
        view = selectors.snapshot_view(snap, category, style, with_pairs=True)
        if view is None:
            raise NotFound(f"no view {category!r} in snapshot {snap.id}")
        models, matrix = selectors.matrix(view, kind, reg)
        clean = [
            [None if (v is None or (isinstance(v, float) and math.isnan(v))) else v for v in row] for row in matrix
        ]
        data = {
            "kind": kind,
            "category": category,
            "style_control": style,
            "snapshot": snap.id,
            "models": models,
            "matrix": clean,
        }
        return Response(data)


class SnapshotSummary(serializers.ModelSerializer):
    class Meta:
        model = Snapshot
        fields = ["id", "created_at", "method", "ci", "params", "vote_count", "fingerprint", "duration"]


class RecomputeIn(serializers.Serializer):
    ci = serializers.ChoiceField(choices=CI_CHOICES, required=False, help_text="default: the site's interval method")
    rounds = serializers.IntegerField(min_value=10, max_value=1000, default=100, help_text="bootstrap rounds")


class SnapshotListApi(APIView):
    pagination_class = Pages

    def get_permissions(self):
        if self.request.method == "POST":
            return [CanRecompute()]
        return super().get_permissions()

    @extend_schema(
        operation_id="v1_snapshots_list",
        parameters=PAGE_PARAMETERS,
        responses=paginated("PaginatedSnapshots", SnapshotSummary(many=True)),
        summary="Published snapshots, newest first",
    )
    def get(self, request):
        pager = self.pagination_class()
        page = pager.paginate_queryset(Snapshot.objects.order_by("-created_at", "-id"), request, view=self)
        return pager.get_paginated_response(SnapshotSummary(page, many=True).data)

    @extend_schema(
        request=RecomputeIn,
        responses={
            202: inline_serializer(
                "RecomputeQueued", {"queued": serializers.BooleanField(), "run": serializers.IntegerField()}
            ),
            400: ErrorOut,
            403: ErrorOut,
            503: ErrorOut,
        },
        summary="Queue a recompute (staff), e.g. with bootstrap intervals",
    )
    def post(self, request):
        params = RecomputeIn(data=request.data)
        params.is_valid(raise_exception=True)
        ci = params.validated_data.get("ci") or settings.ARENA_LEADERBOARD_CI
        rounds = params.validated_data["rounds"]
        # Through a RecomputeRun: a task redelivered after a worker crash finds
        # its run done and publishes no duplicate snapshot.
        try:
            run = runs.request_run(by=request.user, ci=ci, rounds=rounds, force=True)
        except runs.RecomputeNotQueued as exc:  # broker down: say so, the run is recorded as failed
            return Response(
                {"error": "broker_unavailable", "detail": f"could not queue the recompute: {exc}"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response({"queued": True, "run": run.id}, status=status.HTTP_202_ACCEPTED)


SnapshotDetailOut = inline_serializer(
    "SnapshotDetail",
    {
        **SnapshotSummary().get_fields(),
        "views": inline_serializer(
            "SnapshotViewSummary",
            {
                "key": serializers.CharField(),
                "label": serializers.CharField(),
                "style_control": serializers.BooleanField(),
                "votes": serializers.IntegerField(),
                "counts_fingerprint": serializers.CharField(),
                "style_coefficients": serializers.DictField(child=serializers.FloatField(), allow_null=True),
                "warnings": serializers.ListField(child=serializers.CharField()),
            },
            many=True,
        ),
        "warnings": serializers.ListField(child=serializers.CharField()),
    },
)


class SnapshotDetailApi(APIView):
    def validators(self, request, snapshot_id: int) -> tuple[Snapshot | None, str]:
        if snapshot_id > MAX_ID:  # past bigint: no such row, and SQL would refuse the value
            raise NotFound(f"no snapshot {snapshot_id}")
        self.snap = get_object_or_404(Snapshot, id=snapshot_id)
        return self.snap, "detail"

    @extend_schema(
        responses={200: SnapshotDetailOut, 404: ErrorOut},
        summary="One snapshot: parameters, fingerprint and its views",
    )
    @snapshot_conditional
    def get(self, request, snapshot_id: int):
        snap = self.snap
        data = dict(SnapshotSummary(snap).data)
        data["views"] = [
            {
                "key": v.key,
                "label": v.label,
                "style_control": v.style_control,
                "votes": v.vote_count,
                "counts_fingerprint": v.counts_fingerprint,
                "style_coefficients": v.style_coefficients,
                "warnings": v.warnings,
            }
            for v in snap.views.order_by("style_control", "key")
        ]
        data["warnings"] = snap.warnings
        return Response(data)


CategoriesOut = inline_serializer(
    "Categories",
    {
        "snapshot": serializers.IntegerField(allow_null=True),
        "categories": inline_serializer(
            "Category",
            {
                "key": serializers.CharField(),
                "label": serializers.CharField(),
                "style_control": serializers.BooleanField(),
                "votes": serializers.IntegerField(),
            },
            many=True,
        ),
    },
)


class CategoriesApi(APIView):
    def validators(self, request) -> tuple[Snapshot | None, str]:
        self.snap = selectors.newest_snapshot()
        return self.snap, "categories"

    @extend_schema(
        responses=CategoriesOut, summary="The leaderboard views of the newest snapshot and their vote counts"
    )
    @snapshot_conditional
    def get(self, request):
        snap = self.snap
        if snap is None:
            return Response({"snapshot": None, "categories": []})
        views = [
            {"key": v.key, "label": v.label, "style_control": v.style_control, "votes": v.vote_count}
            for v in snap.views.order_by("style_control", "key").only("key", "label", "style_control", "vote_count")
        ]
        return Response({"snapshot": snap.id, "categories": views})

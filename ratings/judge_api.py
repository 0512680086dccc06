"""The judges in the API: ``GET /api/v1/judges/`` (each judge's agreement
with people) and the judge leaderboards behind
``GET /api/v1/leaderboard/?source=judge:NAME`` (ratings/api.py hands over).
"""

from __future__ import annotations

from django.db.models import Max
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from arena.models import Judge

from . import intervals, judges, selectors
from .models import JudgeBoard

ROW_KEYS = ("model", "rating", "lower", "upper", "rank", "battles", "display_name", "organization", "license",
            "status", "preliminary", "flags", "caveats")  # fmt: skip
COLD_START_KEYS = ("model", "display_name", "organization", "license", "status", "judge", "source", "rating", "lower",
                   "upper", "judge_battles", "human_battles")  # fmt: skip


def boards_version() -> str:
    """Changes whenever a judge board is published or the set of active
    judges changes (cache keys, ETags of people's board): one small query."""
    from django.db import connection

    board, judge = JudgeBoard._meta.db_table, Judge._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT (SELECT MAX(id) FROM {board}), (SELECT COUNT(*) FROM {judge} WHERE status = %s), "
            f"(SELECT SUM(id) FROM {judge} WHERE status = %s)",
            [Judge.Status.ACTIVE, Judge.Status.ACTIVE],
        )
        top, count, total = cur.fetchone()
    return f"{top or 0}.{count or 0}.{total or 0}"


def parse_source(request) -> str | None:
    """``?source=``: None for human (the default); a judge's name; 400 otherwise."""
    raw = request.query_params.get("source")
    if raw is not None and "\x00" in raw:
        raise ValidationError({"source": "must not contain NUL characters"})
    try:
        return judges.parse_source(raw)
    except ValueError as exc:
        raise ValidationError({"source": str(exc)}) from None


def judge_leaderboard(name: str, *, category: str, style: bool, include_deprecated: bool, shown: str) -> dict:
    """A judge's board in the leaderboard's shape (plus ``source``)."""
    judge = Judge.objects.filter(name=name).first()
    if judge is None:
        raise NotFound(f"no judge {name!r}; see /api/v1/judges/")
    if category != "overall" or style:
        raise NotFound("a judge's leaderboard has the overall view only, without style control")
    board = judges.newest_board(judge.id)
    source = judges.SOURCE_PREFIX + judge.name
    if board is None:
        return {"updated_at": None, "votes": 0, "snapshot": None, "category": "overall", "style_control": False,
                "ci": "sandwich", "intervals": shown, "style_coefficients": None, "models": [], "source": source}  # fmt: skip
    reg = selectors.registry()
    rows = intervals.rows_with(board.rows, shown)
    if rows is None:
        raise NotFound("this judge board has no simultaneous intervals")
    rows = [r for r in selectors.joined(rows, reg) if include_deprecated or r["status"] != "deprecated"]
    rows = selectors.rank_rows(rows)
    return {
        "updated_at": board.created_at,
        "votes": board.vote_count,
        "snapshot": board.human_snapshot_id,
        "category": "overall",
        "style_control": False,
        "ci": "sandwich",
        "intervals": shown,
        "style_coefficients": None,
        "models": [{k: r.get(k) for k in ROW_KEYS} for r in rows],
        "source": source,
    }


def cold_start(human_rows: list[dict], reg) -> list[dict]:
    return [{k: r.get(k) for k in COLD_START_KEYS} for r in judges.cold_start_rows(human_rows, reg)]


ColdStartRows = inline_serializer(
    "JudgePreliminaryRow",
    {
        "model": serializers.CharField(),
        "display_name": serializers.CharField(),
        "organization": serializers.CharField(),
        "license": serializers.CharField(),
        "status": serializers.CharField(),
        "judge": serializers.CharField(),
        "source": serializers.CharField(help_text="judge:NAME: the rating is the judge's, not people's"),
        "rating": serializers.FloatField(help_text="the judge's rating points"),
        "lower": serializers.FloatField(),
        "upper": serializers.FloatField(),
        "judge_battles": serializers.IntegerField(),
        "human_battles": serializers.IntegerField(),
    },
    many=True,
    required=False,
    help_text="human board (overall): models short of RATINGS_MIN_VOTES human votes, rated by a judge instead",
)

AgreementOut = inline_serializer(
    "JudgeAgreement",
    {
        "battles_judged": serializers.IntegerField(help_text="judge votes counted (both orders judged)"),
        "both_voted": serializers.IntegerField(help_text="counted human votes on battles the judge judged"),
        "agreement": serializers.FloatField(allow_null=True, help_text="same pick, ties and both-bad excluded"),
        "agreement_battles": serializers.IntegerField(),
        "three_way_agreement": serializers.FloatField(allow_null=True, help_text="A / B / tie labels equal"),
        "kappa": serializers.FloatField(allow_null=True, help_text="Cohen's kappa, A / B / tie (both bad = tie)"),
        "kappa_battles": serializers.IntegerField(),
        "position_bias_rate": serializers.FloatField(allow_null=True, help_text="share whose two orders disagree"),
        "position_bias_battles": serializers.IntegerField(),
        "rank_correlation": serializers.FloatField(allow_null=True, help_text="vs the human overall board"),
        "rank_correlation_method": serializers.CharField(help_text="spearman"),
        "rank_correlation_models": serializers.IntegerField(),
    },
)

JudgeOut = inline_serializer(
    "Judge",
    {
        "name": serializers.CharField(),
        "source": serializers.CharField(help_text="the leaderboard's ?source= value"),
        "status": serializers.CharField(),
        "paused_reason": serializers.CharField(),
        "daily_budget": serializers.IntegerField(help_text="calls per UTC day; 0 = none"),
        "calls_today": serializers.IntegerField(),
        "updated_at": serializers.DateTimeField(allow_null=True),
        "agreement": AgreementOut,
    },
    many=True,
)

JudgesOut = inline_serializer("Judges", {"judges": JudgeOut})

EMPTY_FIGURES = {
    "battles_judged": 0, "both_voted": 0, "agreement": None, "agreement_battles": 0, "three_way_agreement": None,
    "kappa": None, "kappa_battles": 0, "position_bias_rate": None, "position_bias_battles": 0,
    "rank_correlation": None, "rank_correlation_method": judges.RANK_METHOD, "rank_correlation_models": 0,
}  # fmt: skip


def judges_data() -> list[dict]:
    from django.utils import timezone

    today = timezone.now().date()
    out = []
    # Two queries whatever the number of judges: the judges with their newest board's id, then those boards.
    listed = list(Judge.objects.annotate(board_id=Max("boards__id")).order_by("name"))
    boards = JudgeBoard.objects.in_bulk([j.board_id for j in listed if j.board_id is not None])
    for judge in listed:
        board = boards.get(judge.board_id)
        out.append({
            "name": judge.name,
            "source": judges.SOURCE_PREFIX + judge.name,
            "status": judge.status,
            "paused_reason": judge.paused_reason,
            "daily_budget": judge.daily_budget,
            "calls_today": judge.calls_today if judge.calls_day == today else 0,
            "updated_at": board.created_at if board else None,
            "agreement": {**EMPTY_FIGURES, **(board.agreement if board else {})},
        })  # fmt: skip
    return out


class JudgesApi(APIView):
    @extend_schema(
        responses={200: JudgesOut},
        summary="Automatic judges: battles judged, agreement and kappa with people, position bias, rank correlation",
    )
    def get(self, request):
        return Response({"judges": judges_data()})

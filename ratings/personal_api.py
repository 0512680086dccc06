"""A voter's own leaderboard and votes: ``/leaderboard/me/``,
``GET /api/v1/me/leaderboard/`` and ``GET /api/v1/me/votes/``.

The voter is the one making the request (account, else cookie session);
there is no parameter naming a voter, so nobody sees anyone else's. A
request without a voter yet gets the "vote N more times" answer and creates
nothing. Responses are marked private and never stored by caches.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from arena.models import Voter

from . import personal_selectors


def own_voter(request: HttpRequest) -> Voter | None:
    """The requester's voter, without creating one (arena.services creates on first battle)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Voter.objects.filter(key=f"user:{user.pk}").first()
    key = request.session.get("voter_key") if hasattr(request, "session") else None
    return Voter.objects.filter(key=key).first() if key else None


def _private(resp):
    resp["Cache-Control"] = "private, no-store"
    patch_vary_headers(resp, ("Cookie", "Authorization"))
    return resp


PersonalRow = inline_serializer(
    "PersonalRow",
    {
        "model": serializers.CharField(),
        "rating": serializers.FloatField(help_text="your rating, in the global board's points"),
        "lower": serializers.FloatField(help_text="95% interval (posterior), lower bound"),
        "upper": serializers.FloatField(help_text="95% interval (posterior), upper bound"),
        "rank": serializers.IntegerField(help_text="rank (UB) among the models you met"),
        "global_rating": serializers.FloatField(),
        "difference": serializers.FloatField(help_text="your rating minus the global one, in points"),
        "battles": serializers.IntegerField(help_text="your counted votes with this model"),
    },
    many=True,
)
PersonalOut = inline_serializer(
    "PersonalLeaderboard",
    {
        "votes": serializers.IntegerField(help_text="your counted votes"),
        "min_votes": serializers.IntegerField(),
        "needed": serializers.IntegerField(help_text="counted votes still needed for a personal board (0: shown)"),
        "snapshot": serializers.IntegerField(allow_null=True, help_text="the global snapshot shrunk toward"),
        "prior_sd": serializers.FloatField(help_text="prior standard deviation around the global ratings, points"),
        "models": PersonalRow,
        "most_different": inline_serializer(
            "PersonalDifference",
            {
                "model": serializers.CharField(),
                "difference": serializers.FloatField(),
                "z": serializers.FloatField(help_text="difference in posterior standard deviations"),
                "direction": serializers.ChoiceField(choices=["higher", "lower"]),
            },
            many=True,
        ),
    },
)


class PersonalLeaderboardApi(APIView):
    @extend_schema(
        responses={200: PersonalOut},
        summary="Your own leaderboard: your votes, shrunk toward the global ratings (only you see it)",
    )
    def get(self, request):
        return _private(Response(personal_selectors.personal_leaderboard(own_voter(request))))


class PersonalVotesApi(APIView):
    @extend_schema(
        responses={(200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="JSON Lines")},
        summary="Download your own votes as JSON Lines (only you see them)",
    )
    def get(self, request):
        resp = StreamingHttpResponse(
            personal_selectors.own_votes_jsonl(own_voter(request)), content_type="application/x-ndjson; charset=utf-8"
        )
        resp["Content-Disposition"] = f'attachment; filename="my-votes-{timezone.now():%Y%m%dT%H%M%SZ}.jsonl"'
        return _private(resp)


@require_safe
def personal_page(request: HttpRequest) -> HttpResponse:
    board = personal_selectors.personal_leaderboard(own_voter(request))
    return _private(render(request, "ratings/personal.html", {"board": board}))

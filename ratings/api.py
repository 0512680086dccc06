"""The ratings API: the leaderboard from the newest published snapshot."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .selectors import latest_snapshot

class LeaderboardRow(serializers.Serializer):
    model = serializers.CharField()
    rating = serializers.FloatField(help_text="rating points (400/ln10 scale, base 1000)")
    lower = serializers.FloatField(help_text="95% interval, lower bound")
    upper = serializers.FloatField(help_text="95% interval, upper bound")
    rank = serializers.IntegerField(help_text="rank (UB)")
    battles = serializers.IntegerField()


class LeaderboardApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            "Leaderboard",
            {
                "updated_at": serializers.DateTimeField(allow_null=True),
                "votes": serializers.IntegerField(),
                "models": LeaderboardRow(many=True),
            },
        ),
        summary="The current leaderboard (rank UB, rating points, 95% interval)",
    )
    def get(self, request):
        snap = latest_snapshot()
        if snap is None:
            return Response({"updated_at": None, "votes": 0, "models": []})
        keys = ("model", "rating", "lower", "upper", "rank", "battles")
        return Response(
            {
                "updated_at": snap.created_at,
                "votes": snap.vote_count,
                "models": [{k: row[k] for k in keys} for row in snap.rows],
            }
        )

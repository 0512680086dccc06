"""Endpoints of the votes app: the voter's vote, the staff export."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from arena import integrity
from arena.api import VoterApi, current_voter
from arena.schema import ErrorSerializer

from .exporters import export_chunks
from .services import vote_record

IDEMPOTENCY_PARAMETERS = [
    OpenApiParameter(
        "Idempotency-Key",
        # Printable ASCII; spaces inside only (HTTP drops them at the ends).
        {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]([ -~]*[!-~])?$"},
        OpenApiParameter.HEADER,
        required=False,
        description="A retry with the same key records one vote and returns the same answer (keys are per voter).",
    )
]

WINNERS = ["a", "b", "tie", "both_bad"]


class VoteIn(serializers.Serializer):
    winner = serializers.ChoiceField(
        choices=WINNERS,
        error_messages={
            "invalid_choice": "must be one of " + ", ".join(f'"{w}"' for w in WINNERS) + ', not "{input}".'
        },
    )


class VoteOut(serializers.Serializer):
    winner = serializers.CharField()
    model_a = serializers.CharField()
    model_b = serializers.CharField()


class BattleVoteApi(VoterApi):
    @extend_schema(
        request={"application/json": VoteIn},
        responses={
            201: VoteOut,
            404: ErrorSerializer,  # battle_not_found (also someone else's battle)
            409: ErrorSerializer,  # already_voted, idempotency_key_in_progress
            410: ErrorSerializer,  # battle_expired
            422: ErrorSerializer,  # idempotency_key_reused
            429: ErrorSerializer,  # rate_limited, daily_cap_reached
        },
        parameters=IDEMPOTENCY_PARAMETERS,
        summary="Vote on your battle; reveals the models",
    )
    def post(self, request, battle_id):
        data = request.data
        if isinstance(data, dict) and data.get("winner") in WINNERS:
            verdict = {"winner": data["winner"]}  # what VoteIn gives, without building it
        else:
            body = VoteIn(data=data)  # the serializer's own errors
            body.is_valid(raise_exception=True)
            verdict = dict(body.validated_data)
        voter = current_voter(request)
        integrity.check_rate("vote", request, voter)

        def handle() -> tuple[int, dict]:
            vote = vote_record(battle_id=battle_id, voter=voter, winner=verdict["winner"])
            return status.HTTP_201_CREATED, {
                "winner": vote.winner,
                "model_a": vote.model_a.name,
                "model_b": vote.model_b.name,
            }

        code, payload, replayed = integrity.idempotent(request, voter, {"battle": str(battle_id), **verdict}, handle)
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return Response(payload, status=code, headers=headers)


class VoteExportIn(serializers.Serializer):
    include_excluded = serializers.BooleanField(required=False, default=False)


class VoteExportApi(APIView):
    """Every counted vote as LMArena clean_battle JSON Lines, streamed.

    Voters appear only as keyed pseudonyms (``judge``)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "include_excluded", OpenApiTypes.BOOL, description="also excluded votes, with their reason"
            )
        ],
        responses={(200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="JSON Lines")},
        summary="Export votes as clean_battle JSONL (staff only)",
    )
    def get(self, request):
        params = VoteExportIn(data=request.query_params)
        params.is_valid(raise_exception=True)
        response = StreamingHttpResponse(
            export_chunks(include_excluded=params.validated_data["include_excluded"]),
            content_type="application/x-ndjson; charset=utf-8",
        )
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="battles-{stamp}.jsonl"'
        response["Cache-Control"] = "no-store"
        return response

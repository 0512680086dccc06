"""REST endpoints for voters: open a battle, vote on it."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from votes.services import vote_record

from . import integrity
from .services import battle_create, voter_for_session, voter_for_user


def current_voter(request):
    if request.user and request.user.is_authenticated:
        return voter_for_user(request.user)
    return voter_for_session(request.session)


class BattleCreateIn(serializers.Serializer):
    prompt = serializers.CharField(required=False, allow_blank=True, max_length=20000)


class BattleOut(serializers.Serializer):
    id = serializers.UUIDField()
    prompt = serializers.CharField()
    responses = inline_serializer("BattleResponses", {"a": serializers.CharField(), "b": serializers.CharField()})


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


def battle_payload(battle) -> dict:
    """What a voter may see before voting: no model identity in any field."""
    return {"id": str(battle.id), "prompt": battle.prompt, "responses": {"a": battle.response_a, "b": battle.response_b}}


class VoterApi(APIView):
    """A voter's write: CSRF-checked for cookie sessions (signed in or not),
    rate-limited per voter and per client address."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            integrity.enforce_csrf(request)


IDEMPOTENCY_PARAMETERS = [
    OpenApiParameter(
        "Idempotency-Key",
        str,
        OpenApiParameter.HEADER,
        required=False,
        description="A retry with the same key records one vote and returns the same answer (keys are per voter).",
    )
]


class BattleCreateApi(VoterApi):
    @extend_schema(request=BattleCreateIn, responses={201: BattleOut}, summary="Open an anonymous battle")
    def post(self, request):
        body = BattleCreateIn(data=request.data or {})
        body.is_valid(raise_exception=True)
        voter = current_voter(request)
        integrity.check_rate("battle", request, voter)
        battle = battle_create(voter=voter, client_hash=integrity.request_address_hash(request))
        return Response(battle_payload(battle), status=status.HTTP_201_CREATED)


class BattleVoteApi(VoterApi):
    @extend_schema(
        request=VoteIn,
        responses={201: VoteOut},
        parameters=IDEMPOTENCY_PARAMETERS,
        summary="Vote on your battle; reveals the models",
    )
    def post(self, request, battle_id):
        body = VoteIn(data=request.data)
        body.is_valid(raise_exception=True)
        voter = current_voter(request)
        integrity.check_rate("vote", request, voter)

        def handle() -> tuple[int, dict]:
            vote = vote_record(battle_id=battle_id, voter=voter, winner=body.validated_data["winner"])
            return status.HTTP_201_CREATED, {
                "winner": vote.winner,
                "model_a": vote.model_a.name,
                "model_b": vote.model_b.name,
            }

        code, payload, replayed = integrity.idempotent(
            request, voter, {"battle": str(battle_id), **body.validated_data}, handle
        )
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return Response(payload, status=code, headers=headers)

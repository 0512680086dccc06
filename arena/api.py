"""REST endpoints for voters: open a battle, vote on it."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from votes.services import BattleNotFound, vote_record

from . import integrity, live
from .services import battle_create, voter_for_session, voter_for_user


def current_voter(request):
    if request.user and request.user.is_authenticated:
        return voter_for_user(request.user)
    return voter_for_session(request.session)


class BattleCreateIn(serializers.Serializer):
    prompt = serializers.CharField(required=False, allow_blank=True, max_length=100000)


class TurnOut(serializers.Serializer):
    prompt = serializers.CharField()
    a = serializers.CharField(allow_blank=True)
    b = serializers.CharField(allow_blank=True)


class BattleOut(serializers.Serializer):
    id = serializers.UUIDField()
    prompt = serializers.CharField()
    responses = inline_serializer(
        "BattleResponses",
        {"a": serializers.CharField(allow_blank=True), "b": serializers.CharField(allow_blank=True)},
    )
    status = serializers.ChoiceField(choices=["pending", "ready", "voted", "failed"])
    turns = TurnOut(many=True)


class TurnIn(serializers.Serializer):
    prompt = serializers.CharField(max_length=100000)


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
    turns = battle.turns or [{"prompt": battle.prompt, "a": battle.response_a, "b": battle.response_b}]
    return {
        "id": str(battle.id),
        "prompt": battle.prompt,
        "responses": {"a": battle.response_a, "b": battle.response_b},
        "status": battle.status,
        "turns": [{"prompt": t["prompt"], "a": t["a"], "b": t["b"]} for t in turns],
    }


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
    @extend_schema(
        request=BattleCreateIn,
        responses={201: BattleOut},
        summary="Open an anonymous battle",
        description="Without a prompt: two pre-generated answers to a prompt from the answer sets (status ready). "
        "With a prompt: a live battle between two endpoints (status pending); "
        "POST its stream/ to receive both answers.",
    )
    def post(self, request):
        body = BattleCreateIn(data=request.data or {})
        body.is_valid(raise_exception=True)
        voter = current_voter(request)
        integrity.check_rate("battle", request, voter)
        client_hash = integrity.request_address_hash(request)
        prompt = body.validated_data.get("prompt", "")
        if prompt.strip():
            battle = live.live_battle_create(voter=voter, prompt=prompt, client_hash=client_hash)
        else:
            battle = battle_create(voter=voter, client_hash=client_hash)
        return Response(battle_payload(battle), status=status.HTTP_201_CREATED)


class BattleTurnApi(VoterApi):
    @extend_schema(request=TurnIn, responses={201: BattleOut}, summary="Ask both models a follow-up prompt")
    def post(self, request, battle_id):
        body = TurnIn(data=request.data)
        body.is_valid(raise_exception=True)
        voter = current_voter(request)
        integrity.check_rate("battle", request, voter)
        battle = live.battle_continue(
            battle_id=_battle_uuid(battle_id), voter=voter, prompt=body.validated_data["prompt"]
        )
        return Response(battle_payload(battle), status=status.HTTP_201_CREATED)


def _battle_uuid(battle_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(battle_id))
    except ValueError:
        raise BattleNotFound("no such battle for this voter") from None


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

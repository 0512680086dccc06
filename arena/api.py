"""REST endpoints for voters: open, continue and skip a battle (the vote is
votes/api.py's: it writes a vote)."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import integrity, live
from .schema import ErrorSerializer
from .services import BattleNotFound, battle_create, battle_skip, voter_for_session, voter_for_user


def current_voter(request):
    if request.user and request.user.is_authenticated:
        return voter_for_user(request.user)
    return voter_for_session(request.session)


class StrictStringMixin:
    """A string field that refuses numbers and booleans instead of turning
    them into text: the schema says "string", so 5 is invalid input."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(StrictStringMixin, serializers.CharField):
    pass


class StrictRegexField(StrictStringMixin, serializers.RegexField):
    pass


class BattleCreateIn(serializers.Serializer):
    prompt = StrictCharField(required=False, allow_blank=True, max_length=100000)


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
    status = serializers.ChoiceField(choices=["pending", "ready", "voted", "failed", "skipped"])
    turns = TurnOut(many=True)


class SkipOut(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["skipped"])


class TurnIn(serializers.Serializer):
    # The pattern puts "not blank" in the schema: at least one non-space character.
    prompt = StrictRegexField(r"\S", max_length=100000)


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


class BattleCreateApi(VoterApi):
    @extend_schema(
        request={"application/json": BattleCreateIn},
        responses={
            201: BattleOut,
            400: ErrorSerializer,
            403: ErrorSerializer,
            409: ErrorSerializer,
            429: ErrorSerializer,
            503: ErrorSerializer,
        },
        summary="Open an anonymous battle",
        description="Without a prompt: two pre-generated answers to the next question of the voter's rotation "
        "(status ready; `turns` holds every turn of a multi-turn question). 409 `nothing_left_to_show` when every "
        "answer this voter could be shown is by a model already revealed to them on that question. "
        "With a prompt: a live battle between two endpoints (status pending); "
        "POST its stream/ to receive both answers.",
    )
    def post(self, request):
        data = request.data
        if isinstance(data, dict) and not data:
            prompt = ""  # the page's open, {} (or no body): nothing to validate
        else:
            body = BattleCreateIn(data=data)  # a JSON null or list: 400
            body.is_valid(raise_exception=True)
            prompt = body.validated_data.get("prompt", "")
        voter = current_voter(request)
        integrity.check_rate("battle", request, voter)
        client_hash = integrity.request_address_hash(request)
        if prompt.strip():
            battle = live.live_battle_create(voter=voter, prompt=prompt, client_hash=client_hash)
        else:
            battle = battle_create(voter=voter, client_hash=client_hash)
        return Response(battle_payload(battle), status=status.HTTP_201_CREATED)


class BattleTurnApi(VoterApi):
    @extend_schema(
        request={"application/json": TurnIn}, responses={201: BattleOut}, summary="Ask both models a follow-up prompt"
    )
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


class BattleSkipApi(VoterApi):
    @extend_schema(
        request=None,
        responses={
            200: SkipOut,
            403: ErrorSerializer,
            404: ErrorSerializer,
            409: ErrorSerializer,
            429: ErrorSerializer,
        },
        summary="Skip your battle without voting",
        description="Ends the battle unvoted (status skipped): never counted, the models never revealed; "
        "the next POST /api/v1/battles/ gives another battle. 404 for a missing battle or another session's; "
        "409 `already_voted`, `already_skipped`, or `battle_streaming` while a live turn is being answered.",
    )
    def post(self, request, battle_id):
        voter = current_voter(request)
        integrity.check_rate("battle", request, voter)
        battle = battle_skip(battle_id=battle_id, voter=voter)
        return Response({"id": str(battle.id), "status": battle.status}, status=status.HTTP_200_OK)

"""Staff endpoints of the votes app."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.views import APIView

from .exporters import export_chunks


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

"""The live-battle stream endpoint.

``POST /api/v1/battles/{id}/stream/`` holds its connection for as long as
the two models take to answer (up to minutes). Under ASGI (uvicorn, see
README "Production") a waiting stream is a coroutine, not a thread: the
checks before the stream starts (session, CSRF, rate limit, ownership, the
claim) are this DRF view, run once on the request's thread with the rest
of the middleware chain (arena/project/asgi.py); the stream itself
(arena.live.stream_turn) is an async iterator the server drives on its
event loop once the view has returned.

Errors before the stream starts keep DRF's auth, CSRF, content negotiation
and ``{"error", "detail"}`` shape (or one SSE ``error`` event for a client
that accepts only text/event-stream).
"""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.renderers import BaseRenderer, JSONRenderer

from . import integrity, live
from .api import VoterApi, _battle_uuid, current_voter
from .schema import ErrorSerializer, ServerSentEvent


class EventStreamRenderer(BaseRenderer):
    """Lets a client that accepts only text/event-stream be answered; an
    error before the stream starts arrives as one ``error`` event."""

    media_type = "text/event-stream"
    format = "sse"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return live.sse("error", data if isinstance(data, dict) else {"detail": str(data)})


class BattleStreamApi(VoterApi):
    renderer_classes = [JSONRenderer, EventStreamRenderer]

    @extend_schema(
        request=None,
        # 400, 403, 404, 429 and 503 are added by arena.schema.ArenaAutoSchema,
        # as JSON and as an SSE "error" event, like every voter operation's.
        responses={
            (200, "text/event-stream"): ServerSentEvent,
            (409, "application/json"): ErrorSerializer,  # battle_busy: the turn is streaming in another tab
            (409, "text/event-stream"): ServerSentEvent,
        },
        summary="Stream both answers of the battle's current turn (server-sent events)",
        description="Events: start {turn, prompt_html}; delta {side, text} (the text since the side's previous "
        "delta, at most one per side per ARENA_STREAM_COALESCE_MS); side_done {side, html}; side_error "
        "{side, message}; end {status, turn, turns_left}. Also retries a failed turn.",
    )
    def post(self, request, battle_id):
        voter = current_voter(request)
        integrity.check_rate("battle", request, voter)
        battle = live.claim_stream(_battle_uuid(battle_id), voter)
        # An async iterator: under ASGI the server drives it on its event loop.
        response = StreamingHttpResponse(live.stream_turn(battle), content_type="text/event-stream")
        response["Cache-Control"] = "no-store"
        response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
        return response


# A sync view returning an async iterator: Django's ASGI handler sends it
# from the event loop. (DRF's as_view is csrf_exempt: VoterApi checks CSRF
# itself, integrity.enforce_csrf.)
battle_stream = BattleStreamApi.as_view()

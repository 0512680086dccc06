"""The OpenAPI schema documents every status an operation can return.

Each view declares its own answers (with ``extend_schema``); the statuses
every operation shares come from here, all with the ``Error`` body
``{"error", "detail"}`` (arena/api_errors.py):

- 400 a bad parameter or body (operations with parameters or a body);
- 403 not allowed: an invalid token, a failed CSRF check, staff-only;
- 404 nothing there; 406 an Accept header the operation cannot answer;
- 413 a body over the upload limit and 415 a body that is not JSON or a
  form (operations with a body);
- 429 a rate limit (the voter's writes);
- 503 the database unreachable (with Retry-After) or, for battles, no
  model available.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="a stable code, e.g. invalid, not_found, database_unavailable")
    detail = serializers.CharField(help_text="a sentence to show")
    fields = serializers.DictField(required=False, help_text="invalid: the message lists per field")

    class Meta:
        ref_name = "Error"


class ServerSentEvent(serializers.Serializer):
    """One event of a text/event-stream body; ``data`` is JSON text (for an
    ``error`` event, an Error object)."""

    event = serializers.CharField(required=False, help_text="start, delta, side_done, side_error, end or error")
    data = serializers.CharField(help_text="a JSON object")


class ArenaAutoSchema(AutoSchema):
    def _error_statuses(self) -> list[str]:
        codes = ["403", "404", "406", "503"]
        has_body = self.method in ("POST", "PUT", "PATCH")
        if has_body or self._get_parameters():
            codes.append("400")
        if has_body:
            codes += ["413", "415"]
        from arena.api import VoterApi  # the voter's writes are rate-limited

        if isinstance(self.view, VoterApi) and self.method == "POST":
            codes.append("429")
        return sorted(codes)

    def _get_response_bodies(self, direction="response"):
        bodies = super()._get_response_bodies(direction)
        # Errors come in the operation's own formats (the stream's as an SSE
        # "error" event when only text/event-stream is accepted), never HTML.
        media = tuple(r.media_type for r in self.view.get_renderers() if r.media_type not in ("text/html",)) or (
            "application/json",
        )
        for code in self._error_statuses():
            if code in bodies:
                continue
            json_media = tuple(m for m in media if m != "text/event-stream")
            response = self._get_response_for_code(ErrorSerializer, code, json_media or None, direction)
            if "text/event-stream" in media:
                sse = self._get_response_for_code(ServerSentEvent, code, ("text/event-stream",), direction)
                response["content"].update(sse["content"])
            bodies[code] = response
        return bodies

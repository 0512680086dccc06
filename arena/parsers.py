"""Request parsing for the API with the limits Django applies to forms.

Kept apart from arena.api_errors: DRF reads DEFAULT_PARSER_CLASSES while
rest_framework.views is being imported, which api_errors itself imports.
"""

from __future__ import annotations

import io

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser

# Deeper than any body the API accepts (a vote is one level); far below the
# depth at which Python's parser would exhaust the stack.
MAX_JSON_DEPTH = 32


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


class TooDeep(ParseError):
    default_code = "too_deep"


def too_large_message() -> str:
    return f"the request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"


class ArenaJSONParser(JSONParser):
    """DRF's JSON parser with the limits Django applies to forms: a body over
    DATA_UPLOAD_MAX_MEMORY_SIZE is a 413, nesting over MAX_JSON_DEPTH a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        if limit is not None and request is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise PayloadTooLarge(too_large_message())
        if limit is not None and stream is not None:
            raw = stream.read(limit + 1)
            if len(raw) > limit:
                raise PayloadTooLarge(too_large_message())
            stream = io.BytesIO(raw)
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise TooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
        if _depth_exceeds(data, MAX_JSON_DEPTH):
            raise TooDeep(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return data


def _depth_exceeds(value, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class ArenaContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answered at once for what API clients send (no
    Accept, ``*/*`` or ``application/json``, no format override): the JSON
    renderer, as DRF would choose. Parsing the Accept list on every request
    was a measurable part of a vote (issue #14)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        if (
            accept in ("*/*", "application/json")
            and not format_suffix
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
            and renderers
            and renderers[0].media_type == "application/json"
        ):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)

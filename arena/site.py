"""Two small site-wide endpoints: the favicon, and the CSRF cookie for
scripted clients.

``/favicon.ico``: browsers ask for it on every site whatever the pages link;
without it every first visit logs a 404. The pages link the SVG version.

``GET /api/v1/csrf/``: a cookie-session client (curl, a script) needs the
``csrftoken`` cookie before its first POST. Without this endpoint the only
way to get it was to open a battle, which spends a battle and a rate-limit
slot just to read a token.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils.decorators import method_decorator
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

FAVICON = Path(__file__).resolve().parent / "static" / "arena" / "favicon.ico"


@lru_cache(maxsize=1)
def _favicon_bytes() -> bytes:
    return FAVICON.read_bytes()


@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_favicon_bytes(), content_type="image/x-icon")


@method_decorator(ensure_csrf_cookie, name="dispatch")
class CsrfApi(APIView):
    # Nothing to authenticate: the token belongs to whoever holds the cookie,
    # and a stale Authorization header must not turn this into a 401.
    authentication_classes: list = []

    @extend_schema(
        operation_id="v1_csrf_retrieve",
        summary="Set the csrftoken cookie and return its token (for cookie-session clients)",
        description="Send the token back as the X-CSRFToken header, with the cookies, on every POST. "
        "Token-authenticated clients (Authorization: Token …) need no CSRF token.",
        responses={200: inline_serializer("CsrfOut", {"csrf_token": serializers.CharField()})},
    )
    def get(self, request):
        return Response({"csrf_token": get_token(request)}, headers={"Cache-Control": "no-store"})

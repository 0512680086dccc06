"""One error shape for the whole API: {"error": code, "detail": message}."""

from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from .services import ArenaError


def exception_handler(exc, context):
    if isinstance(exc, ArenaError):
        return Response(
            {"error": exc.code, "detail": exc.message}, status=exc.status, headers=getattr(exc, "headers", None)
        )
    response = drf_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.ValidationError):
        # "detail" stays a sentence a client can show as is (arena.js does);
        # the per-field lists go under "fields".
        return Response(
            {"error": "invalid", "detail": _sentence(response.data), "fields": response.data},
            status=status.HTTP_400_BAD_REQUEST,
        )
    detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
    response.data = {"error": code, "detail": detail}
    return response


def _sentence(errors, field: str = "") -> str:
    """Flatten DRF's nested validation errors into one readable line."""
    if isinstance(errors, dict):
        parts = [_sentence(v, k if k != "non_field_errors" else "") for k, v in errors.items()]
        return " ".join(p for p in parts if p)
    if isinstance(errors, list):
        return " ".join(_sentence(e, field) for e in errors)
    return f"{field}: {errors}" if field else str(errors)


def not_found(request, exception=None):
    """handler404: the API's error shape under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "not_found", "detail": f"no endpoint at {request.path}"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: the API's error shape under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "server_error", "detail": "unexpected error; it has been logged"}, status=500)
    return defaults.server_error(request)

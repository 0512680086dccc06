"""One error shape for the whole API: {"error": code, "detail": message}."""

from __future__ import annotations

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from .services import ArenaError


def exception_handler(exc, context):
    if isinstance(exc, ArenaError):
        return Response({"error": exc.code, "detail": exc.message}, status=exc.status)
    response = drf_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.ValidationError):
        return Response({"error": "invalid", "detail": response.data}, status=status.HTTP_400_BAD_REQUEST)
    detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
    response.data = {"error": code, "detail": detail}
    return response

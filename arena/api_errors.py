"""One error shape for the whole API: {"error": code, "detail": message}.

Every way a request can fail under /api/ ends here: DRF's exceptions and the
arena's ArenaError (exception_handler), errors raised outside DRF views or
by middleware (ApiErrorMiddleware, handler400/404/500), an unreachable
database (503 with Retry-After, never a 500), an oversized body (413), JSON
nested too deep (400 too_deep) and malformed JSON (400 parse_error).
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DataError, InterfaceError, OperationalError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from .parsers import too_large_message
from .services import ArenaError

log = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)


def unavailable_body() -> dict:
    return {"error": "database_unavailable", "detail": "the database is unreachable; try again shortly"}


def retry_after() -> dict:
    return {"Retry-After": str(settings.ARENA_DB_RETRY_AFTER)}


def exception_handler(exc, context):
    if isinstance(exc, ArenaError):
        return Response(
            {"error": exc.code, "detail": exc.message}, status=exc.status, headers=getattr(exc, "headers", None)
        )
    if isinstance(exc, DATABASE_ERRORS):
        log.warning("database unavailable: %s", exc)
        return Response(unavailable_body(), status=status.HTTP_503_SERVICE_UNAVAILABLE, headers=retry_after())
    if isinstance(exc, DataError):  # input the view should have refused; still the client's error
        log.warning("database refused a value: %s", exc)
        return Response({"error": "invalid", "detail": "a value is out of range or malformed"}, status=400)
    if isinstance(exc, RequestDataTooBig):
        return Response({"error": "payload_too_large", "detail": too_large_message()}, status=413)
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


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _unavailable(request):
    if _is_api(request):
        return JsonResponse(unavailable_body(), status=503, headers=retry_after())
    from django.http import HttpResponse

    return HttpResponse(
        "The service is briefly unavailable (database unreachable). Try again shortly.",
        status=503,
        content_type="text/plain; charset=utf-8",
        headers=retry_after(),
    )


class ApiErrorMiddleware:
    """Outside DRF's views (pages, middleware, the schema view): a database
    outage is a 503 with Retry-After, not a 500; under /api/ an oversized
    body is a 413 in the error shape. First in MIDDLEWARE, so it also sees
    what the middleware below it raise."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            return self.get_response(request)
        except DATABASE_ERRORS as exc:  # raised past convert_exception_to_response (rare)
            log.warning("database unavailable: %s", exc)
            return _unavailable(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_ERRORS):
            log.warning("database unavailable: %s", exception)
            return _unavailable(request)
        if isinstance(exception, RequestDataTooBig) and _is_api(request):
            return JsonResponse({"error": "payload_too_large", "detail": too_large_message()}, status=413)
        return None


def bad_request(request, exception=None):
    """handler400 (SuspiciousOperation, e.g. a body over the upload limit)."""
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse({"error": "payload_too_large", "detail": too_large_message()}, status=413)
        detail = str(exception) if isinstance(exception, SuspiciousOperation) and str(exception) else "bad request"
        return JsonResponse({"error": "bad_request", "detail": detail}, status=400)
    return defaults.bad_request(request, exception)


def not_found(request, exception=None):
    """handler404: the API's error shape under /api/, Django's page elsewhere."""
    if _is_api(request):
        return JsonResponse({"error": "not_found", "detail": f"no endpoint at {request.path}"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: the API's error shape under /api/, Django's page elsewhere.
    Called while the exception is being handled: a database outage that got
    this far (e.g. raised by a middleware) is still a 503."""
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        return _unavailable(request)
    if _is_api(request):
        return JsonResponse({"error": "server_error", "detail": "unexpected error; it has been logged"}, status=500)
    return defaults.server_error(request)

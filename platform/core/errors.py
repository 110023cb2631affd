"""One error shape for the whole API: {"error": {"code", "message", "request_id"}}.

Services raise `ApiError` subclasses: plain exceptions with an HTTP status and a stable code,
free of DRF, so tasks and commands can raise and catch them too. The DRF handler below turns
them (and DRF's own exceptions) into that shape.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/v1/", "/healthz", "/readyz", "/files/")


class ApiError(Exception):
    """An error with a stable code. Subclass or instantiate with code/message/status."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"
    default_detail = "The request is invalid."

    def __init__(
        self,
        message: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        details: dict | None = None,
        headers: dict | None = None,
    ):
        self.message = message or self.default_detail
        super().__init__(self.message)
        if status_code is not None:
            self.status_code = status_code
        self.error_code = code or self.default_code
        self.details = details or {}
        self.headers = headers or {}


class NotFound(ApiError):
    status_code = 404
    default_code = "not_found"
    default_detail = "The requested resource was not found."


class Forbidden(ApiError):
    status_code = 403
    default_code = "permission_denied"
    default_detail = "You do not have permission to perform this action."


class Unauthorized(ApiError):
    status_code = 401
    default_code = "not_authenticated"
    default_detail = "Authentication credentials were not provided."


class Conflict(ApiError):
    status_code = 409
    default_code = "conflict"
    default_detail = "The request conflicts with the current state of the resource."


class TooManyRequests(ApiError):
    status_code = 429
    default_code = "rate_limited"
    default_detail = "Too many requests."


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES) or "application/json" in request.headers.get(
        "Accept", ""
    )


def error_body(request, code: str, message: str, details: dict | None = None) -> dict:
    error = {"code": code, "message": message, "request_id": getattr(request, "request_id", None)}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(request, status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(request, code, message), status=status_code)


def _flatten_validation(detail, prefix: str = "") -> dict:
    """{"field": ["msg"]} -> {"field": "msg"}, nested with dots, for a readable message."""
    if isinstance(detail, dict):
        out = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten_validation(value, name))
        return out
    if isinstance(detail, list):
        if detail and all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "non_field_errors": " ".join(str(item) for item in detail)}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten_validation(item, f"{prefix}[{index}]"))
        return out
    return {prefix or "non_field_errors": str(detail)}


DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "malformed_request",
    exceptions.Throttled: "rate_limited",
}


def api_exception_handler(exc, context):
    request = context.get("request")
    if isinstance(exc, Http404):
        exc = NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = Forbidden()

    if isinstance(exc, ApiError):
        body = error_body(request, exc.error_code, exc.message, exc.details or None)
        response = Response(body, status=exc.status_code)
        for name, value in exc.headers.items():
            response[name] = value
        return response

    # Imported here: rest_framework.views imports the authentication classes, which import
    # this module.
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is None:
        # Unexpected: logged with the request id; the client gets the shape, not a traceback.
        logger.exception("Unhandled API error")
        return Response(
            error_body(request, "server_error", "An internal error occurred."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_validation(exc.detail)
        message = "; ".join(f"{k}: {v}" for k, v in fields.items()) or "Invalid input."
        body = error_body(request, "validation_error", message, {"fields": fields})
    else:
        code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), "error")
        body = error_body(request, code, str(getattr(exc, "detail", exc)))
    response.data = body
    return response


def _error_page(request, status_code: int, code: str, message: str, template: str):
    """API clients get the JSON shape; people in a browser (the console) get a page, never a
    traceback or a JSON blob."""
    if wants_json(request):
        return error_response(request, status_code, code, message)
    from django.shortcuts import render

    return render(request, template, {"message": message}, status=status_code)


def handler404(request, exception=None):
    return _error_page(
        request, 404, "not_found", "The requested resource was not found.", "404.html"
    )


def handler500(request):
    # Rendered without a context processor's help: the page must not fail in its turn.
    if wants_json(request):
        return error_response(request, 500, "server_error", "An internal error occurred.")
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)


def handler400(request, exception=None):
    return _error_page(request, 400, "bad_request", "The request is invalid.", "400.html")


def handler403(request, exception=None):
    return _error_page(request, 403, "forbidden", "Access denied.", "403.html")

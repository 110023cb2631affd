"""Request ids on every request and response, and JSON errors outside DRF views."""

from __future__ import annotations

import re
import uuid

from django.http import HttpRequest, HttpResponse

from core.errors import error_response, wants_json
from core.logging import current_request_id

# A client may supply its own id (to correlate with its logs) when it is short and plain.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def new_request_id() -> str:
    return "req_" + uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get("X-Request-Id", "")
        request.request_id = supplied if REQUEST_ID_PATTERN.match(supplied) else new_request_id()
        token = current_request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-Id"] = request.request_id
        return response


class JsonErrorMiddleware:
    """Django-level errors (unknown URL, CSRF, method) on API paths get the JSON error shape."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and wants_json(request)
            and not response.get("Content-Type", "").startswith("application/json")
            and not getattr(response, "streaming", False)
        ):
            code = {404: "not_found", 405: "method_not_allowed", 403: "forbidden"}.get(
                response.status_code, "error" if response.status_code < 500 else "server_error"
            )
            message = {
                404: "The requested resource was not found.",
                405: f"Method {request.method} is not allowed here.",
                403: "Forbidden (CSRF check failed or access denied).",
            }.get(response.status_code, "The request could not be completed.")
            return error_response(request, response.status_code, code, message)
        return response

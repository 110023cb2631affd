"""Stable error codes raised by tenancy services."""

from core.errors import ApiError, Forbidden, TooManyRequests, Unauthorized


class InvalidApiKey(Unauthorized):
    default_code = "invalid_api_key"
    default_detail = "The API key is invalid."


class ApiKeyExpired(Unauthorized):
    default_code = "api_key_expired"
    default_detail = "The API key has expired."


class ApiKeyRevoked(Unauthorized):
    default_code = "api_key_revoked"
    default_detail = "The API key has been revoked."


class IpNotAllowed(Forbidden):
    default_code = "ip_not_allowed"
    default_detail = "Requests from this IP address are not allowed for this API key."


class TenantSuspended(Forbidden):
    default_code = "tenant_suspended"
    default_detail = "This tenant is suspended. Contact your administrator."


class InsufficientScope(Forbidden):
    default_code = "insufficient_scope"
    default_detail = "The credential lacks the scope this action requires."


class QuotaExceeded(TooManyRequests):
    default_code = "quota_exceeded"
    default_detail = "The monthly character quota is exhausted."


class InvalidRequest(ApiError):
    default_code = "invalid_request"

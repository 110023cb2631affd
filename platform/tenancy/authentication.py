"""DRF authentication by API key: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication

from audit.services import client_ip
from tenancy.services import keys


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        token = request.headers.get("X-API-Key", "")
        if not token:
            header = request.headers.get("Authorization", "")
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value:
                return None
            token = value
        key = keys.authenticate(token.strip(), client_ip(request))
        return (None, key)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="timbre"'

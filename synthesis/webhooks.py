"""Signed completion webhooks for asynchronous synthesis.

Body: the job resource as JSON. Header `Timbre-Signature: t=<unix>,v1=<hex>` where
v1 = HMAC-SHA256(tenant webhook secret, "<t>.<body>"). Receivers recompute and compare, and
reject timestamps older than a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlparse

from django.conf import settings

from core.errors import ApiError
from tenancy.services.tenants import webhook_signing_secret


class WebhookDeliveryError(RuntimeError):
    pass


class InvalidWebhookUrl(ApiError):
    default_code = "invalid_webhook_url"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked address the delivery connects to, whatever DNS says later


def check_url(url: str) -> WebhookTarget:
    """Reject URLs that would make the platform call into its own network (SSRF), and pin
    the address that passed the check: delivery connects to it rather than resolving the
    name again (DNS rebinding)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise InvalidWebhookUrl("webhook_url must be an http(s) URL.")
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_HOSTS
    if parsed.scheme != "https" and not allow_private:
        raise InvalidWebhookUrl("webhook_url must use https.")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        infos = socket.getaddrinfo(parsed.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise InvalidWebhookUrl("webhook_url host does not resolve.") from exc
    addresses = [info[4][0] for info in infos]
    if not allow_private and not all(ipaddress.ip_address(a).is_global for a in addresses):
        raise InvalidWebhookUrl("webhook_url must point to a public address.")
    path = parsed.path or "/"
    if parsed.query:
        path += f"?{parsed.query}"
    return WebhookTarget(url, parsed.scheme, parsed.hostname, port, path, addresses[0])


def _connection(target: WebhookTarget, timeout: float) -> http.client.HTTPConnection:
    if target.scheme == "https":
        # TLS still verifies the certificate against the host name.
        connection = http.client.HTTPSConnection(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)

    def connect_to_pinned(address, timeout=timeout, source_address=None, **kwargs):
        return socket.create_connection(
            (target.address, address[1]), timeout, source_address, **kwargs
        )

    connection._create_connection = connect_to_pinned
    return connection


def deliver(job_id: str) -> None:
    from synthesis.api.serializers import SynthesisRequestSerializer
    from synthesis.models import SynthesisRequest

    job = SynthesisRequest.dangerously_unscoped.select_related("tenant").get(pk=job_id)
    target = check_url(job.webhook_url)
    body = json.dumps(
        {"type": f"synthesis.{job.status}", "data": SynthesisRequestSerializer(job).data}
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Timbre-Webhooks/1",
        "Timbre-Signature": sign(webhook_signing_secret(job.tenant), body),
    }
    connection = _connection(target, timeout=10)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        # Redirects are never followed: the new location would escape the SSRF check.
        if response.status >= 300:
            raise WebhookDeliveryError(f"receiver answered {response.status}")
    except OSError as exc:
        raise WebhookDeliveryError(str(exc)) from exc
    finally:
        connection.close()

"""Signed completion webhooks for asynchronous synthesis.

Body: the job resource as JSON. Header `Timbre-Signature: t=<unix>,v1=<hex>` where
v1 = HMAC-SHA256(tenant webhook secret, "<t>.<body>"). Receivers recompute and compare, and
reject timestamps older than a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
import urllib.request
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


def check_url(url: str) -> str:
    """Reject URLs that would make the platform call into its own network (SSRF)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise InvalidWebhookUrl("webhook_url must be an http(s) URL.")
    if settings.WEBHOOK_ALLOW_PRIVATE_HOSTS:
        return url
    if parsed.scheme != "https":
        raise InvalidWebhookUrl("webhook_url must use https.")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parsed.hostname, None)}
    except OSError as exc:
        raise InvalidWebhookUrl("webhook_url host does not resolve.") from exc
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if not ip.is_global:
            raise InvalidWebhookUrl("webhook_url must point to a public address.")
    return url


def deliver(job_id: str) -> None:
    from synthesis.api.serializers import SynthesisRequestSerializer
    from synthesis.models import SynthesisRequest

    job = SynthesisRequest.dangerously_unscoped.select_related("tenant").get(pk=job_id)
    check_url(job.webhook_url)
    body = json.dumps(
        {"type": f"synthesis.{job.status}", "data": SynthesisRequestSerializer(job).data}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        job.webhook_url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Timbre-Webhooks/1",
            "Timbre-Signature": sign(webhook_signing_secret(job.tenant), body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            if response.status >= 300:
                raise WebhookDeliveryError(f"receiver answered {response.status}")
    except OSError as exc:
        raise WebhookDeliveryError(str(exc)) from exc

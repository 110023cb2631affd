"""Webhook delivery connects only to the address its SSRF check approved, and never follows a
redirect (regression: the host was resolved twice and urlopen followed redirects)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.test import override_settings

from synthesis import webhooks

pytestmark = pytest.mark.django_db


class _Receiver:
    """A local HTTP server that records POSTs and answers with `status` (and `location`)."""

    def __init__(self, status: int = 204, location: str = ""):
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                self.rfile.read(int(self.headers["Content-Length"]))
                hits.append((self.path, self.headers["Host"]))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made = []

    def make(**kwargs) -> _Receiver:
        made.append(_Receiver(**kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True)
def test_redirects_are_not_followed(tenant, receivers, make_job):
    elsewhere = receivers()
    redirecting = receivers(status=307, location=f"http://127.0.0.1:{elsewhere.port}/stolen")
    job = make_job(
        tenant, mode="async", webhook_url=f"http://127.0.0.1:{redirecting.port}/hook?x=1"
    )
    with pytest.raises(webhooks.WebhookDeliveryError, match="307"):
        webhooks.deliver(str(job.pk))
    assert redirecting.hits == [("/hook?x=1", f"127.0.0.1:{redirecting.port}")]
    assert elsewhere.hits == []


@override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=True)
def test_delivery_connects_to_the_checked_address(tenant, receivers, make_job, monkeypatch):
    """A name that resolves to the receiver when checked and elsewhere afterwards (DNS
    rebinding) is still delivered to the checked address, with the original Host header."""
    receiver = receivers()
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["127.0.0.1"])

    def rebinding_dns(host, port, *args, **kwargs):
        if host != "hooks.example.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        # First answer: the receiver. Later ones: a loopback address where nothing listens.
        address = next(answers, "127.0.0.2")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    job = make_job(
        tenant, mode="async", webhook_url=f"http://hooks.example.test:{receiver.port}/hook"
    )
    webhooks.deliver(str(job.pk))
    assert receiver.hits == [("/hook", f"hooks.example.test:{receiver.port}")]


@override_settings(WEBHOOK_ALLOW_PRIVATE_HOSTS=False)
@pytest.mark.parametrize(
    "url",
    ["http://example.com/hook", "https://127.0.0.1/hook", "https://localhost/hook", "ftp://x/"],
)
def test_private_or_plain_http_targets_are_refused(url):
    with pytest.raises(webhooks.InvalidWebhookUrl):
        webhooks.check_url(url)

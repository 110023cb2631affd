"""Health endpoints, Prometheus metrics and signed local-file downloads."""

from __future__ import annotations

import mimetypes
import time

from django.core import signing
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from core.errors import error_response
from core.storage import LocalStorage, StorageError, get_storage


@require_GET
def liveness(request):
    return JsonResponse({"status": "ok"})


def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_cache():
    key = f"readyz:{time.monotonic_ns()}"
    cache.set(key, "1", 5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value written")
    cache.delete(key)


def _check_broker():
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _check_storage():
    get_storage().check()


READINESS_CHECKS = {
    "database": _check_database,
    "cache": _check_cache,
    "broker": _check_broker,
    "storage": _check_storage,
}


@require_GET
def readiness(request):
    results, ready = {}, True
    for name, check in READINESS_CHECKS.items():
        started = time.perf_counter()
        try:
            check()
            results[name] = {"status": "ok"}
        except Exception as exc:  # noqa: BLE001 - any failure makes the check fail
            ready = False
            results[name] = {"status": "error", "error": type(exc).__name__}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )


@require_GET
def file_download(request, token: str):
    storage = get_storage()
    if not isinstance(storage, LocalStorage):
        return error_response(request, 404, "not_found", "The requested resource was not found.")
    try:
        payload = storage.unsign(token)
        data = storage.get(payload["k"])
    except signing.SignatureExpired:
        return error_response(request, 410, "link_expired", "This download link has expired.")
    except (signing.BadSignature, StorageError):
        return error_response(request, 404, "not_found", "The requested resource was not found.")
    filename = payload.get("f") or payload["k"].rsplit("/", 1)[-1]
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def metrics(request):
    """Prometheus text exposition (core/metrics.py); a bearer token when METRICS_TOKEN is set."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from core import metrics as prom

    if not prom.token_ok(request.headers.get("Authorization", "")):
        response = error_response(
            request, 401, "not_authenticated", "A valid metrics bearer token is required."
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(prom.exposition(state=True), content_type=CONTENT_TYPE_LATEST)

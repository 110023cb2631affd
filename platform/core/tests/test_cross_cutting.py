"""Error shape, request ids, OpenAPI schema, health checks, object storage, operator CLI."""

import io
import urllib.request
from datetime import timedelta

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

from core.storage import LocalStorage, StorageError, tenant_key
from tenancy.services import keys


def assert_error_shape(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert error["request_id"] == response["X-Request-Id"]


@pytest.mark.django_db
def test_errors_have_one_shape(api):
    assert_error_shape(api.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_error_shape(api.put("/api/v1/tenant", {}), 405, "method_not_allowed")
    assert_error_shape(
        api.post("/api/v1/keys", {"name": "x"}, format="json"), 400, "validation_error"
    )
    malformed = api.post("/api/v1/keys", "{not json", content_type="application/json")
    assert_error_shape(malformed, 400, "malformed_request")
    assert_error_shape(Client().get("/api/v1/tenant"), 401, "not_authenticated")
    assert_error_shape(api.get("/api/v1/keys/not-a-uuid"), 404, "not_found")


@pytest.mark.django_db
def test_validation_errors_name_the_fields(api):
    body = api.post("/api/v1/keys", {"scopes": []}, format="json").json()["error"]
    assert set(body["details"]["fields"]) == {"name", "scopes"}


@pytest.mark.django_db
def test_request_id_is_echoed_when_well_formed(api):
    assert api.get("/api/v1/tenant", HTTP_X_REQUEST_ID="client-trace-42")["X-Request-Id"] == (
        "client-trace-42"
    )
    replaced = api.get("/api/v1/tenant", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert replaced["X-Request-Id"].startswith("req_")
    assert Client().get("/healthz")["X-Request-Id"].startswith("req_")


@pytest.mark.django_db
def test_openapi_schema_is_valid():
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/keys" in schema["paths"] or "/api/v1/keys/" in str(schema["paths"])
    response = Client().get("/api/schema/")
    assert response.status_code == 200
    docs = Client().get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
    assert b"cdn" not in docs.content.lower()  # assets are served locally


@pytest.mark.django_db
def test_health_endpoints_check_real_services():
    assert Client().get("/healthz").json() == {"status": "ok"}
    ready = Client().get("/readyz")
    assert ready.status_code == 200, ready.content
    assert {name for name, c in ready.json()["checks"].items() if c["status"] == "ok"} == {
        "database",
        "cache",
        "broker",
        "storage",
    }


def test_s3_storage_round_trip_and_presigned_url(s3_storage):
    key = tenant_key("t1", "clips", "a.wav")
    s3_storage.put(key, b"RIFF-data", "audio/wav")
    assert s3_storage.exists(key) and s3_storage.get(key) == b"RIFF-data"
    url = s3_storage.url(key, expires=timedelta(seconds=60))
    assert "X-Amz-Expires=60" in url
    with urllib.request.urlopen(url) as response:  # noqa: S310 - local test server
        assert response.read() == b"RIFF-data"
    s3_storage.delete(key)
    assert not s3_storage.exists(key)
    with pytest.raises(StorageError):
        s3_storage.get(key)


def test_presigned_urls_name_the_public_endpoint():
    from core.storage import S3Storage

    backend = S3Storage(
        "minio:9000",
        "k",
        "s",
        "bucket",
        "us-east-1",
        False,
        public_endpoint="https://media.example.com",
    )
    url = backend.url("tenants/t/a.wav", expires=timedelta(seconds=30))
    assert url.startswith("https://media.example.com/bucket/tenants/t/a.wav?")


def test_storage_keys_are_tenant_prefixed_and_safe():
    assert tenant_key("abc", "clips", "x.wav") == "tenants/abc/clips/x.wav"
    for bad in ("../other", "", "a/../../b"):
        with pytest.raises(StorageError):
            tenant_key("abc", bad)


@pytest.mark.django_db
def test_local_storage_signed_urls_expire(tmp_path, settings):
    local = LocalStorage(tmp_path)
    local.put("tenants/t/x.txt", b"hello")
    url = local.url("tenants/t/x.txt")
    settings.S3_ENDPOINT = None
    from core import storage

    storage.get_storage.cache_clear()
    settings.LOCAL_STORAGE_ROOT = tmp_path
    try:
        assert Client().get(url).content == b"hello"
        settings.PRESIGNED_URL_TTL = timedelta(seconds=-1)
        assert Client().get(url).status_code == 410
        assert Client().get(url[:-3] + "abc").status_code == 404
    finally:
        storage.get_storage.cache_clear()
    with pytest.raises(StorageError):
        local.put("../../etc/passwd", b"x")


@pytest.mark.django_db
def test_operator_commands_create_a_working_key(client_for):
    call_command("createuser", "ops@example.com", "--password", "pw-12345678")
    call_command(
        "createtenant",
        "initech",
        "--name",
        "Initech",
        "--plan",
        "enterprise",
        "--owner",
        "ops@example.com",
    )
    out = io.StringIO()
    call_command("createapikey", "initech", "--scopes", "synthesize,usage:read", stdout=out)
    token = out.getvalue().strip()
    assert keys.TOKEN_PATTERN.match(token)
    tenant_info = client_for(token).get("/api/v1/tenant").json()
    assert tenant_info["slug"] == "initech" and tenant_info["plan"]["slug"] == "enterprise"


@pytest.mark.django_db
def test_plan_and_status_changes_by_operator_are_audited():
    from audit.models import AuditEvent
    from tenancy.services import tenants as tenant_services

    call_command("createtenant", "hooli", "--plan", "starter")
    call_command("settenant", "hooli", "--plan", "business", "--status", "suspended")
    tenant = tenant_services.get_tenant_by_slug("hooli")
    assert tenant.plan.slug == "business" and tenant.status == "suspended"
    actions = list(AuditEvent.objects.for_tenant(tenant).values_list("action", flat=True))
    assert actions == ["tenant.create", "tenant.plan_change", "tenant.suspend"]

"""The model registry through the versions API and `manage.py register_model`: who may register,
validate and retire which versions, tenant isolation, input errors, and the validation job on a
real worker (an alias of the stock build passes, a corrupt artefact is rejected)."""

from __future__ import annotations

import hashlib
import time
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from core.storage import get_storage
from rollout.models import STOCK_FAMILY, ModelVersion, VersionPin
from rollout.services import lifecycle
from tenancy.roles import Scope
from tenancy.services import tenants
from voices.models import Voice

pytestmark = pytest.mark.django_db

ADAPTER = b"tiny adapter bytes"


def custom_voice(tenant, slug="brand") -> Voice:
    return Voice.objects.for_tenant(tenant).create(
        tenant=tenant, slug=slug, name=slug, kind=Voice.Kind.CUSTOM
    )


def upload(client, family, *, version="v1", data=ADAPTER, prefix="/api/v1", **fields):
    body = {"family": family, "engine": "piper-adapted", "version": version, **fields}
    if data is not None:
        body["artefact"] = SimpleUploadedFile("adapter.pt", data)
    return client.post(f"{prefix}/models/", body, format="multipart")


def error(response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture
def staff(client_for):
    user = tenants.create_user(f"ops-{uuid.uuid4().hex[:6]}@example.com", "pw-12345678")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return client_for(user=user)


@pytest.fixture
def stock_model() -> Path:
    from speech.engines.piper_engine import default_voice_paths

    return default_voice_paths()[0]


def test_tenant_registers_its_voice_version(tenant, api):
    voice = custom_voice(tenant)
    made = upload(api, f"voice:{voice.pk}", semver="1.0.0", notes="first try")
    assert made.status_code == 201, made.content
    body = made.json()
    checksum = hashlib.sha256(ADAPTER).hexdigest()
    assert body["status"] == "registered" and body["owner"] == "tenant"
    assert body["artefact_checksum"] == checksum and body["semver"] == "1.0.0"
    version = ModelVersion.dangerously_unscoped.get(pk=body["id"])
    assert version.tenant_id == tenant.pk
    assert version.artefact_key.startswith(f"tenants/{tenant.pk}/models/{checksum}/")
    assert get_storage().get(version.artefact_key) == ADAPTER
    event = AuditEvent.dangerously_unscoped.get(action="model_version.register")
    assert event.chain == str(tenant.pk) and event.target_repr == version.pk

    again = upload(api, f"voice:{voice.pk}", semver="1.0.0")
    assert again.status_code == 200 and again.json()["id"] == body["id"]  # idempotent
    clash = upload(api, f"voice:{voice.pk}", data=b"other bytes", semver="1.0.0")
    assert clash.status_code == 409 and error(clash) == "version_exists"
    nxt = upload(api, f"voice:{voice.pk}", data=b"other bytes")
    assert nxt.status_code == 201 and nxt.json()["semver"] == "1.1.0"

    listed = api.get("/api/v1/models/", {"family": f"voice:{voice.pk}"}).json()
    assert {v["id"] for v in listed["results"]} == {body["id"], nxt.json()["id"]}
    assert api.get(f"/api/v1/models/{body['id']}").json()["id"] == body["id"]
    stock = api.get("/api/v1/models/", {"family": STOCK_FAMILY}).json()["results"]
    assert stock and all(v["owner"] == "platform" for v in stock)


def test_permission_matrix(tenant, make_key, make_member, client_for, staff):
    voice = custom_voice(tenant)
    family = f"voice:{voice.pk}"
    reader = client_for(make_key(tenant, scopes=[Scope.MODELS_READ]).token)
    assert reader.get("/api/v1/models/").status_code == 200
    refused = upload(reader, family)
    assert refused.status_code == 403 and error(refused) == "insufficient_scope"

    auditor = client_for(user=make_member(tenant, "auditor"))
    prefix = f"/api/v1/tenants/{tenant.slug}"
    assert auditor.get(f"{prefix}/models/").status_code == 200
    assert upload(auditor, family, prefix=prefix).status_code == 403

    admin = client_for(user=make_member(tenant, "admin"))
    made = upload(admin, family, prefix=prefix)
    assert made.status_code == 201, made.content
    stock = upload(admin, STOCK_FAMILY, prefix=prefix)
    assert stock.status_code == 403 and error(stock) == "platform_operator_required"
    platform_id = ModelVersion.dangerously_unscoped.filter(tenant=None).first().pk
    for action in ("validate", "retire"):
        answer = admin.post(f"{prefix}/models/{platform_id}/{action}")
        assert answer.status_code == 403, answer.content
        assert error(answer) == "platform_operator_required"

    # Operators: staff users on the platform routes; anyone else is refused there.
    ops = upload(staff, STOCK_FAMILY, version="ops-v1", prefix="/api/v1/platform")
    assert ops.status_code == 201 and ops.json()["owner"] == "platform"
    assert staff.get("/api/v1/platform/models/", {"family": family}).json()["count"] == 1
    assert admin.get("/api/v1/platform/models/").status_code == 403
    key = client_for(make_key(tenant).token)
    assert key.get("/api/v1/platform/models/").status_code == 403
    assert client_for().get("/api/v1/platform/models/").status_code == 401


def test_another_tenants_versions_are_not_found(tenant, other_tenant, api, make_key, client_for):
    theirs = custom_voice(other_tenant)
    foreign = client_for(make_key(other_tenant).token)
    made = upload(foreign, f"voice:{theirs.pk}")
    assert made.status_code == 201
    vid = made.json()["id"]
    assert api.get(f"/api/v1/models/{vid}").status_code == 404
    assert api.post(f"/api/v1/models/{vid}/validate").status_code == 404
    assert api.post(f"/api/v1/models/{vid}/retire").status_code == 404
    assert vid not in {v["id"] for v in api.get("/api/v1/models/").json()["results"]}
    registering = upload(api, f"voice:{theirs.pk}")  # registering into their voice's family
    assert registering.status_code == 404
    assert upload(api, f"voice:{uuid.uuid4()}").status_code == 404
    assert api.get("/api/v1/models/piper:nope@000000000000").status_code == 404


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"semver": "1.0"}, "invalid_semver"),
        ({"semver": "v1.0.0"}, "invalid_semver"),
        ({"engine": "tacotron"}, "unknown_engine"),
        ({"version": "has space"}, "invalid_version"),
        ({"family": "voices"}, "invalid_family"),
        ({"data": None}, "file_required"),
        ({"data": b""}, "artefact_empty"),
        ({"engine": "piper"}, "config_required"),
    ],
)
def test_bad_input(tenant, api, fields, code):
    voice = custom_voice(tenant)
    fields = {"family": f"voice:{voice.pk}", **fields}
    answer = upload(api, fields.pop("family"), **fields)
    assert answer.status_code == 400, answer.content
    assert error(answer) == code


def test_retire_refuses_versions_in_use(tenant, api, staff, settings):
    stable = lifecycle.stable_of(STOCK_FAMILY)
    refused = staff.post(f"/api/v1/platform/models/{stable.pk}/retire")
    assert refused.status_code == 409 and error(refused) == "version_in_use"

    voice = custom_voice(tenant)
    pinned_id = upload(api, f"voice:{voice.pk}").json()["id"]
    pin = VersionPin.objects.for_tenant(tenant).create(
        tenant=tenant, family=f"voice:{voice.pk}", version_id=pinned_id
    )
    refused = api.post(f"/api/v1/models/{pinned_id}/retire")
    assert refused.status_code == 409 and error(refused) == "version_in_use"
    pin.delete()
    # What the repeat-prompt cache holds for the version is forgotten when it retires.
    from types import SimpleNamespace

    import numpy as np

    from speech import text
    from synthesis.tests.test_prompt_cache import cached, keep

    settings.PROMPT_CACHE_ENABLED = True
    job = SimpleNamespace(tenant_id=tenant.pk, voice_id=voice.pk, model_version=pinned_id,
                          controls={})  # fmt: skip
    segments = text.prepare("Welcome to Acme.")
    keep(job, segments, np.zeros(22050, dtype=np.float32), 22050)
    assert cached(job, segments) is not None
    retired = api.post(f"/api/v1/models/{pinned_id}/retire")
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert cached(job, segments) is None
    assert AuditEvent.dangerously_unscoped.filter(action="model_version.retire").count() == 1
    again = api.post(f"/api/v1/models/{pinned_id}/validate")
    assert again.status_code == 409 and error(again) == "validation_not_allowed"


def test_register_model_command(stock_model):
    out = StringIO()
    args = ["--family", STOCK_FAMILY, "--engine", "piper", "--version", "joe-copy",
            "--artefact", str(stock_model), "--notes", "alias"]  # fmt: skip
    call_command("register_model", *args, stdout=out)
    assert out.getvalue().startswith("registered piper:joe-copy@")
    version = ModelVersion.dangerously_unscoped.get(family=STOCK_FAMILY, version="joe-copy")
    assert version.status == "registered" and version.tenant is None
    assert version.registered_by == "operator:register_model"
    config = get_storage().get(version.artefact_key + ".json")
    assert config == Path(f"{stock_model}.json").read_bytes()
    out = StringIO()
    call_command("register_model", *args, stdout=out)
    assert out.getvalue().startswith("already registered")
    with pytest.raises(CommandError, match="--family"):
        call_command("register_model", "--version", "x")
    with pytest.raises(CommandError, match="unknown_engine"):
        call_command("register_model", *args[:2], "--engine", "nope", *args[4:])


def test_stock_int8_build_is_registered_in_the_stock_family():
    """Quantising the stock voice takes a few seconds: done once here."""
    out = StringIO()
    call_command("register_model", "--stock-int8", stdout=out)
    version = ModelVersion.dangerously_unscoped.get(family=STOCK_FAMILY, version__endswith="-int8")
    assert version.engine == "piper" and version.status == "registered"
    data = get_storage().get(version.artefact_key)
    assert hashlib.sha256(data).hexdigest() == version.artefact_checksum
    assert len(data) < 30_000_000  # int8: about a third of the 63 MB stock model
    out = StringIO()
    call_command("register_model", "--stock-int8", stdout=out)
    assert out.getvalue().startswith("already registered")


def wait_for(version_id: str, timeout: float = 240.0) -> ModelVersion:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        version = ModelVersion.dangerously_unscoped.get(pk=version_id)
        if version.status != ModelVersion.Status.VALIDATING:
            return version
        time.sleep(0.5)
    raise AssertionError(f"{version_id} still validating after {timeout} s")


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_validation_on_a_worker(celery_worker, staff, stock_model):
    config = Path(f"{stock_model}.json").read_bytes()
    call_command("register_model", "--family", STOCK_FAMILY, "--version", "joe-alias",
                 "--artefact", str(stock_model), stdout=StringIO())  # fmt: skip
    alias = ModelVersion.dangerously_unscoped.get(version="joe-alias")
    corrupt = staff.post(
        "/api/v1/platform/models/",
        {"family": STOCK_FAMILY, "engine": "piper", "version": "joe-corrupt",
         "artefact": SimpleUploadedFile("m.onnx", b"not an onnx model" * 100),
         "config": SimpleUploadedFile("m.onnx.json", config)},
        format="multipart",
    )  # fmt: skip
    assert corrupt.status_code == 201, corrupt.content
    for vid in (alias.pk, corrupt.json()["id"]):
        queued = staff.post(f"/api/v1/platform/models/{vid}/validate")
        assert queued.status_code == 202 and queued.json()["status"] == "validating"

    passed = wait_for(alias.pk)
    assert passed.status == "validated", passed.validation
    metrics = passed.validation["metrics"]
    assert metrics["sentences"] == 4 and metrics["wer"] <= 0.2 and metrics["mos"] >= 3.0
    assert metrics["rtf"] > 0 and passed.validation["reasons"] == []
    assert passed.validated_at is not None

    failed = wait_for(corrupt.json()["id"])
    assert failed.status == "rejected"
    assert failed.validation["reasons"][0]["metric"] == "sanity"
    events = AuditEvent.dangerously_unscoped.filter(action="model_version.validate")
    assert {e.after["status"] for e in events} == {"validating", "validated", "rejected"}
    # A rejected version may be validated again; a validated one is not (it may be serving).
    again = staff.post(f"/api/v1/platform/models/{alias.pk}/validate")
    assert again.status_code == 409 and error(again) == "validation_not_allowed"

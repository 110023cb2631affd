"""What ending a consent does (revocation by the tenant or an operator, expiry), artefact
retention, and switching voice versions. Rows only: no models run here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from consent import services
from consent.models import ConsentRecord
from core.storage import get_storage, tenant_key
from rollout import services as rollout
from rollout.models import ModelVersion
from speech.engines.base import ModelVersionSpec
from synthesis.models import SynthesisRequest
from tenancy.services import quotas
from voices.models import FineTuneJob, Voice, VoiceVersion
from voices.services import catalogue
from voices.tests.journey import verified_voice_rows

pytestmark = pytest.mark.django_db


def _ready_version(tenant, voice, number: int) -> VoiceVersion:
    key = tenant_key(tenant.pk, "voices", str(voice.pk), "versions", f"v{number}.pt")
    get_storage().put(key, b"adapter %d" % number)
    spec = ModelVersionSpec("piper-adapted", f"{voice.pk}-v{number}", f"{number:064x}")
    version = VoiceVersion.objects.for_tenant(tenant).create(
        voice=voice,
        number=number,
        status=VoiceVersion.Status.READY,
        model_version=rollout.register(spec, artefact_key=key),
        artefact_key=key,
        artefact_bytes=9,
    )
    Voice.objects.for_tenant(tenant).filter(pk=voice.pk).update(
        status=Voice.Status.READY, active_version=version, model_version=version.model_version
    )
    return version


def test_revocation_disables_cancels_and_schedules_deletion(tenant, make_job, settings):
    settings.CONSENT_ARTEFACT_RETENTION_S = 3600
    voice = verified_voice_rows(tenant)
    version = _ready_version(tenant, voice, 1)
    running = FineTuneJob.objects.for_tenant(tenant).create(
        voice=voice,
        status=FineTuneJob.Status.RUNNING,
        reservation=quotas.reserve(tenant, None, 1, quotas.FINE_TUNES),
    )
    queued = make_job(tenant, voice=voice)
    consent = ConsentRecord.objects.for_tenant(tenant).get(pk=voice.consent_id)
    call_command("revoke_consent", tenant.slug, str(consent.pk), reason="Talent asked by email.")

    consent.refresh_from_db()
    assert consent.status == ConsentRecord.Status.REVOKED and consent.ended_by
    assert consent.artefacts_delete_after > timezone.now() + timedelta(minutes=59)
    voice.refresh_from_db()
    assert voice.status == Voice.Status.DISABLED and voice.disabled_reason == "consent_revoked"
    running.refresh_from_db()
    assert running.status == FineTuneJob.Status.CANCELLED
    assert running.error_code == "consent_revoked"
    assert quotas.held(tenant, quotas.FINE_TUNES)["used"] == 0  # refunded
    queued.refresh_from_db()
    assert queued.status == SynthesisRequest.Status.FAILED
    event = AuditEvent.objects.for_tenant(tenant).get(action="consent.revoke")
    assert event.actor_label == "operator:revoke_consent"
    assert event.after["voices_disabled"] == [str(voice.pk)]
    with pytest.raises(catalogue.ConsentRevoked):
        catalogue.resolve_voice(tenant, "dana")

    # Not before the retention period...
    assert services.purge_artefacts_due() == 0
    assert get_storage().exists(version.artefact_key)
    # ...then the artefacts go, the versions stay as history and the model is retired.
    assert services.purge_artefacts_due(now=timezone.now() + timedelta(hours=2)) == 1
    assert not get_storage().exists(version.artefact_key)
    version.refresh_from_db()
    assert version.status == VoiceVersion.Status.DELETED and not version.artefact_key
    assert ModelVersion.dangerously_unscoped.get(pk=version.model_version_id).status == "retired"
    assert AuditEvent.objects.for_tenant(tenant).filter(action="consent.artefacts_delete").exists()


def test_expiry_acts_like_revocation(tenant):
    voice = verified_voice_rows(tenant)
    _ready_version(tenant, voice, 1)
    ConsentRecord.objects.for_tenant(tenant).filter(pk=voice.consent_id).update(
        valid_until=timezone.now() - timedelta(seconds=1)
    )
    assert services.expire_due() == 1
    consent = ConsentRecord.objects.for_tenant(tenant).get(pk=voice.consent_id)
    assert consent.status == ConsentRecord.Status.EXPIRED
    voice.refresh_from_db()
    assert voice.status == Voice.Status.DISABLED
    with pytest.raises(catalogue.ConsentRevoked) as excinfo:
        catalogue.resolve_voice(tenant, "dana")
    assert "expired" in excinfo.value.message
    assert AuditEvent.objects.for_tenant(tenant).filter(action="consent.expire").exists()
    assert services.expire_due() == 0  # once


def test_the_active_version_can_be_switched_back(tenant, make_key, client_for):
    client = client_for(make_key(tenant).token)
    voice = verified_voice_rows(tenant)
    first = _ready_version(tenant, voice, 1)
    second = _ready_version(tenant, voice, 2)
    assert client.get("/api/v1/voices/dana").json()["active_version"] == 2
    back = client.post("/api/v1/voices/dana/versions/1/activate")
    assert back.status_code == 200, back.content
    assert back.json()["active_version"] == 1
    assert back.json()["model_version"] == first.model_version_id != second.model_version_id
    assert catalogue.resolve_voice(tenant, "dana").model_version_id == first.model_version_id
    VoiceVersion.objects.for_tenant(tenant).filter(pk=second.pk).update(status="failed")
    refused = client.post("/api/v1/voices/dana/versions/2/activate")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "version_not_ready"
    assert client.post("/api/v1/voices/dana/versions/9/activate").status_code == 404
    versions = client.get("/api/v1/voices/dana/versions").json()["results"]
    assert [v["number"] for v in versions] == [1, 2]


def test_revoked_consent_cannot_be_revoked_or_overridden_again(tenant, make_key, client_for):
    client = client_for(make_key(tenant).token)
    voice = verified_voice_rows(tenant)
    url = f"/api/v1/consents/{voice.consent_id}"
    assert client.post(f"{url}/revoke", {"reason": "Asked."}, format="json").status_code == 200
    again = client.post(f"{url}/revoke", {"reason": "Asked."}, format="json")
    assert again.status_code == 409
    override = client.post(f"{url}/override", {"reason": "Please re-enable it."}, format="json")
    assert override.status_code == 409
    recorded = client.post(f"{url}/recording", {"file": b""}, format="multipart")
    assert recorded.status_code in (400, 409)

"""Plan limits on custom voices, fine-tunes per month and storage, enforced atomically; who may
manage talents, consents, datasets and fine-tunes."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from consent.models import ConsentRecord
from tenancy.roles import Scope
from voices.models import FineTuneJob, TrainingRecording, Voice
from voices.tests.journey import talent_row, upload, verified_voice_rows


def test_voice_limit_refuses_the_voice_over_the_limit(make_tenant, make_key, client_for):
    tenant = make_tenant(max_voices=1)
    client = client_for(make_key(tenant).token)
    talent = client.post("/api/v1/talents", {"name": "Dana"}, format="json").json()["id"]
    first = client.post("/api/v1/voices", {"slug": "one", "name": "One", "talent": talent},
                        format="json")  # fmt: skip
    assert first.status_code == 201
    second = client.post("/api/v1/voices", {"slug": "two", "name": "Two", "talent": talent},
                         format="json")  # fmt: skip
    assert second.status_code == 403
    error = second.json()["error"]
    assert error["code"] == "voice_limit_exceeded" and "1" in error["message"]
    assert not Voice.objects.for_tenant(tenant).filter(slug="two").exists()
    # Deleting a voice gives its place back.
    assert client.delete("/api/v1/voices/one").status_code == 204
    again = client.post("/api/v1/voices", {"slug": "two", "name": "Two", "talent": talent},
                        format="json")  # fmt: skip
    assert again.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_voice_limit_holds_under_concurrent_creation(make_tenant):
    from tenancy.services.access import Access
    from voices.services import catalogue

    tenant = make_tenant(max_voices=3)
    talent = talent_row(tenant)
    results: list[str] = []

    def create(i: int) -> None:
        try:
            catalogue.create_voice(
                Access.operator(tenant), slug=f"v{i}", name=f"v{i}", talent=talent
            )
            results.append("ok")
        except Exception as exc:  # noqa: BLE001 - the error code is what is counted
            results.append(getattr(exc, "error_code", repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("ok") == 3, results
    assert results.count("voice_limit_exceeded") == 9, results
    assert Voice.objects.for_tenant(tenant).count() == 3


def test_fine_tune_limit_refuses_the_fine_tune_over_the_limit(make_tenant, make_key, client_for):
    tenant = make_tenant(fine_tunes_per_month=1)
    client = client_for(make_key(tenant).token)
    verified_voice_rows(tenant, "one")
    verified_voice_rows(tenant, "two")
    assert client.post("/api/v1/voices/one/fine-tunes", {}, format="json").status_code == 202
    over = client.post("/api/v1/voices/two/fine-tunes", {}, format="json")
    assert over.status_code == 403, over.content
    assert over.json()["error"]["code"] == "fine_tune_limit_exceeded"
    assert FineTuneJob.objects.for_tenant(tenant).count() == 1
    # A cancelled fine-tune does not count against the month.
    job = FineTuneJob.objects.for_tenant(tenant).get()
    assert client.post(f"/api/v1/fine-tunes/{job.pk}/cancel").json()["status"] == "cancelled"
    assert client.post("/api/v1/voices/two/fine-tunes", {}, format="json").status_code == 202


def test_fine_tune_needs_verified_consent_and_enough_data(tenant, make_key, client_for):
    client = client_for(make_key(tenant).token)
    voice = verified_voice_rows(tenant, recordings=2)
    few = client.post("/api/v1/voices/dana/fine-tunes", {}, format="json")
    assert few.status_code == 409 and few.json()["error"]["code"] == "not_enough_training_data"
    ConsentRecord.objects.for_tenant(tenant).filter(pk=voice.consent_id).update(
        status=ConsentRecord.Status.REJECTED
    )
    refused = client.post("/api/v1/voices/dana/fine-tunes", {}, format="json")
    assert refused.json()["error"]["code"] == "consent_not_verified"


def test_storage_limit_refuses_uploads_over_the_limit(make_tenant, make_key, client_for):
    tenant = make_tenant(storage_bytes=5000)
    client = client_for(make_key(tenant).token)
    talent = client.post("/api/v1/talents", {"name": "Dana"}, format="json").json()["id"]
    client.post("/api/v1/voices", {"slug": "dana", "name": "D", "talent": talent}, format="json")
    response = upload(client, "/api/v1/voices/dana/recordings", b"\1" * 6000, "a.wav",
                      transcript="hello")  # fmt: skip
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "storage_limit_exceeded"
    assert not TrainingRecording.objects.for_tenant(tenant).exists()


@pytest.mark.parametrize(
    "role, may_manage, may_read_consent",
    [
        ("owner", True, True),
        ("admin", True, True),
        ("brand_manager", True, True),
        ("developer", False, False),
        ("auditor", False, True),
    ],
)
def test_roles(tenant, make_member, client_for, role, may_manage, may_read_consent):
    client = client_for(user=make_member(tenant, role))
    base = f"/api/v1/tenants/{tenant.slug}"
    made = client.post(f"{base}/talents", {"name": "Dana"}, format="json")
    assert (made.status_code == 201) is may_manage, made.content
    listed = client.get(f"{base}/talents")
    assert (listed.status_code == 200) is may_read_consent
    if not may_manage:
        assert made.json()["error"]["code"] == "insufficient_scope"
    talent = talent_row(tenant)
    voice = client.post(
        f"{base}/voices", {"slug": f"v-{role.replace('_', '-')}", "name": "V",
                           "talent": str(talent.pk)}, format="json",
    )  # fmt: skip
    assert (voice.status_code == 201) is may_manage


def test_synthesize_keys_see_only_ready_voices(tenant, make_key, client_for):
    verified_voice_rows(tenant)  # a draft custom voice
    synth_only = client_for(make_key(tenant, scopes=[Scope.SYNTHESIZE]).token)
    slugs = {v["slug"] for v in synth_only.get("/api/v1/voices").json()["results"]}
    assert "dana" not in slugs and "stock-joe" in slugs
    reader = client_for(make_key(tenant, scopes=[Scope.VOICES_READ]).token)
    slugs = {v["slug"] for v in reader.get("/api/v1/voices").json()["results"]}
    assert "dana" in slugs
    # A draft voice is not ready for synthesis.
    refused = synth_only.post("/api/v1/synthesize", {"voice": "dana", "text": "Hi."}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "voice_not_ready"


def test_another_tenants_talent_is_an_unknowntalent_row(tenant, other_tenant, make_key, client_for):
    client = client_for(make_key(tenant).token)
    foreign = talent_row(other_tenant)
    unknown = "00000000-0000-0000-0000-000000000000"
    answers = [
        client.post("/api/v1/voices", {"slug": "x", "name": "X", "talent": t}, format="json")
        for t in (str(foreign.pk), unknown)
    ]
    assert answers[0].status_code == answers[1].status_code == 400
    assert answers[0].json()["error"]["code"] == answers[1].json()["error"]["code"]
    other_voice = verified_voice_rows(other_tenant, "theirs")
    for talent in (str(foreign.pk), unknown):
        consent = client.post(
            "/api/v1/consents", {"talent": talent, "voice": other_voice.slug}, format="json"
        )
        assert consent.status_code == 400

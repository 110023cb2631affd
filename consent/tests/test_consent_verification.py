"""Consent verification through the API and a real worker: each way a consent can be wrong is
rejected with a reason a person can act on; an admin override needs a reason and is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from consent.models import ConsentEvidence, ConsentRecord
from speech.testing import talents as T
from voices.tests.journey import (
    AVA,
    COMPANY,
    DEV,
    TALENT_NAME,
    codes,
    enrol,
    poll,
    record_consent,
    request_consent,
    upload,
    verify_with,
    wav,
)

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def brand(tenant, make_key, client_for, celery_worker):
    tenant.legal_name = COMPANY
    tenant.save(update_fields=["legal_name"])
    return client_for(make_key(tenant).token)


def test_each_bad_consent_is_rejected_with_its_reason(brand, tenant, make_member, client_for):
    ids = enrol(brand, slug="dana")

    def attempt(make_audio) -> dict:
        consent = request_consent(brand, ids["talent"], "dana")
        return verify_with(brand, consent, make_audio(consent))

    # Another speaker reads the right statement.
    other = attempt(lambda c: wav(AVA, c["statement"]))
    assert other["status"] == "rejected" and "speaker_mismatch" in codes(other), other["reasons"]
    # The talent reads something else.
    wrong = attempt(lambda c: wav(DEV, T.CONSENT_SENTENCES[1]))
    assert wrong["status"] == "rejected" and "statement_mismatch" in codes(wrong), wrong["reasons"]
    # The statement without its challenge, and with another challenge.
    missing = attempt(lambda c: wav(DEV, c["statement"].split("Challenge:")[0]))
    assert "challenge_missing" in codes(missing), missing["reasons"]
    replayed = attempt(
        lambda c: wav(DEV, c["statement"].replace(c["challenge"], "purple nine garden four"))
    )
    assert "challenge_missing" in codes(replayed), replayed["reasons"]
    for rejected in (other, wrong, missing, replayed):
        assert all(reason["message"] for reason in rejected["reasons"])

    # Timbre's own (watermarked) output of the statement in the stock voice.
    consent = request_consent(brand, ids["talent"], "dana")
    ours = brand.post(
        "/api/v1/synthesize", {"voice": "stock-joe", "text": consent["statement"]}, format="json"
    )
    assert ours.status_code == 200
    marked = verify_with(brand, consent, ours.content)
    assert marked["status"] == "rejected" and "watermarked" in codes(marked), marked["reasons"]

    # A statement recorded after it expired cannot be replayed.
    late = request_consent(brand, ids["talent"], "dana")
    ConsentRecord.objects.for_tenant(tenant).filter(pk=late["id"]).update(
        statement_expires_at=timezone.now() - timedelta(minutes=1)
    )
    response = record_consent(brand, late, wav(DEV, late["statement"]))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "statement_expired"
    late = brand.get(f"/api/v1/consents/{late['id']}").json()
    assert late["status"] == "rejected" and codes(late) == {"statement_expired"}

    # Every attempt left immutable evidence.
    assert ConsentEvidence.objects.for_tenant(tenant).count() == 6
    row = ConsentEvidence.objects.for_tenant(tenant).first()
    with pytest.raises(Exception):
        row.save()

    # An override needs the admin role and a written reason, is audited, and cannot excuse
    # our own watermark.
    manager = client_for(user=make_member(tenant, "brand_manager"))
    base = f"/api/v1/tenants/{tenant.slug}/consents"
    refused = manager.post(f"{base}/{other['id']}/override", {"reason": "I know her voice."},
                           format="json")  # fmt: skip
    assert refused.status_code == 403
    no_reason = brand.post(f"/api/v1/consents/{other['id']}/override", {}, format="json")
    assert no_reason.json()["error"]["code"] == "reason_required"
    blocked = brand.post(
        f"/api/v1/consents/{marked['id']}/override",
        {"reason": "Checked with the talent in person."},
        format="json",
    )
    assert blocked.status_code == 409 and blocked.json()["error"]["code"] == "override_not_allowed"
    done = brand.post(
        f"/api/v1/consents/{other['id']}/override",
        {"reason": "Verified the talent's identity on a video call."},
        format="json",
    )
    assert done.status_code == 200 and done.json()["status"] == "verified"
    assert done.json()["override"]["reason"].startswith("Verified the talent")
    events = brand.get("/api/v1/audit-events?action=consent.override").json()["results"]
    assert events and events[0]["after"]["override_reason"].startswith("Verified")


def test_genuine_consent_verifies_and_anchors_later_recordings(
    brand, tenant, make_member, client_for
):
    ids = enrol(brand, slug="dana")
    consent = request_consent(brand, ids["talent"], "dana")
    consent = verify_with(brand, consent, wav(DEV, consent["statement"]))
    assert consent["status"] == "verified", consent["reasons"]

    # After verification a recording by someone else is rejected against the consent.
    text = T.TRAIN_SENTENCES[20]
    response = upload(brand, "/api/v1/voices/dana/recordings", wav(AVA, text), "x.wav",
                      transcript=text)  # fmt: skip
    assert response.status_code == 202
    report = poll(brand, "/api/v1/voices/dana/dataset", lambda r: r["totals"]["processing"] == 0)
    assert report["problems"].get("speaker_mismatch") == 1, report

    # Auditors read consent and evidence, and change nothing.
    auditor = client_for(user=make_member(tenant, "auditor"))
    base = f"/api/v1/tenants/{tenant.slug}/consents/{consent['id']}"
    evidence = auditor.get(f"{base}/evidence")
    assert evidence.status_code == 200
    assert evidence.json()["consent"]["statement"] == consent["statement"]
    assert auditor.post(f"{base}/revoke", {"reason": "x"}, format="json").status_code == 403
    # A developer (synthesize, keys) sees no consent at all.
    developer = client_for(user=make_member(tenant, "developer"))
    assert developer.get(base).status_code == 403
    assert TALENT_NAME in evidence.json()["consent"]["statement"]

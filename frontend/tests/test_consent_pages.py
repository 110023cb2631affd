"""Consent pages without a browser: roles, tenant isolation, filters and export, the evidence,
the recording, revocation and its effects, and query budgets."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from consent.models import ConsentRecord
from frontend.tests.compliance import consent_with_evidence
from voices.models import FineTuneJob, Voice

pytestmark = pytest.mark.django_db


def table(html: str) -> str:
    return html[html.index("<table") : html.index("</table>")]


def base(tenant) -> str:
    return f"/console/{tenant.slug}/consent/"


@pytest.fixture
def member_client(client, make_member):
    def login(tenant, role):
        client.force_login(make_member(tenant, role))
        return client

    return login


def test_roles_developer_sees_nothing_auditor_reads_but_cannot_revoke(
    tenant, member_client, make_member, client
):
    consent = consent_with_evidence(tenant)
    detail = f"{base(tenant)}{consent.pk}/"
    developer = member_client(tenant, "developer")
    for url in (base(tenant), detail, f"{detail}recording", f"{detail}evidence.json",
                f"{base(tenant)}export.csv"):  # fmt: skip
        assert developer.get(url).status_code == 404, url
    assert developer.post(f"{detail}revoke/", {"reason": "x" * 12}).status_code == 404

    auditor = member_client(tenant, "auditor")
    page = auditor.get(base(tenant))
    assert page.status_code == 200 and "Dana Fischer" in page.content.decode()
    shown = auditor.get(detail).content.decode()
    assert consent.challenge in shown and "Revoke consent" not in shown  # no button to press
    evidence = auditor.get(f"{detail}evidence.json")
    assert evidence.status_code == 200 and "attachment" in evidence["Content-Disposition"]
    body = json.loads(evidence.content)
    assert body["consent"]["statement"] == consent.statement and body["evidence"][0]["passed"]
    assert auditor.get(f"{base(tenant)}export.csv").status_code == 200
    refused = auditor.post(f"{detail}revoke/", {"reason": "I am only an auditor."})
    assert refused.status_code == 403
    consent.refresh_from_db()
    assert consent.status == ConsentRecord.Status.VERIFIED


def test_another_tenants_consent_and_its_audio_are_404(tenant, other_tenant, member_client):
    theirs = consent_with_evidence(other_tenant, name="Globex Talent")
    client = member_client(tenant, "owner")
    url = f"{base(tenant)}{theirs.pk}/"
    assert client.get(url).status_code == 404
    assert client.get(f"{url}recording").status_code == 404
    assert client.get(f"{url}evidence.json").status_code == 404
    assert client.post(f"{url}revoke/", {"reason": "Not mine to revoke."}).status_code == 404
    # Unknown ids look the same.
    assert client.get(f"{base(tenant)}00000000-0000-0000-0000-000000000000/").status_code == 404
    assert "Globex Talent" not in client.get(base(tenant)).content.decode()


def test_recording_is_served_privately_from_storage(tenant, member_client):
    consent = consent_with_evidence(tenant)
    client = member_client(tenant, "auditor")
    response = client.get(f"{base(tenant)}{consent.pk}/recording")
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["Cache-Control"] == "private, no-store"
    assert response.content[:4] == b"RIFF" and len(response.content) == consent.recording_bytes


def test_detail_shows_the_evidence_and_the_timeline(tenant, member_client):
    consent = consent_with_evidence(tenant, scores=(0.81, 0.42, 0.84))
    page = member_client(tenant, "auditor").get(f"{base(tenant)}{consent.pk}/").content.decode()
    assert consent.statement.split()[0] in page and consent.challenge in page
    assert 'id="transcript"' in page and "0.040" in page  # the WER of the statement
    assert "take-02.wav" in page and "0.420" in page and "below 0.50" in page
    assert "consent.request" in page and "consent.verify" in page  # the timeline
    assert f'src="/console/acme/consent/{consent.pk}/recording"' in page


def test_list_filters_and_the_csv_honours_them(tenant, member_client):
    dana = consent_with_evidence(tenant, valid_until=timezone.now() + timedelta(days=10))
    sam = consent_with_evidence(tenant, slug="sam", name="Sam Ortega")
    ConsentRecord.objects.for_tenant(tenant).filter(pk=sam.pk).update(status="rejected")
    client = member_client(tenant, "brand_manager")

    page = client.get(base(tenant)).content.decode()
    assert "within 30 days" in page and "expires-soon" in page  # Dana's expiry is close
    rejected = table(client.get(base(tenant), {"status": "rejected"}).content.decode())
    assert "Sam Ortega" in rejected and "Dana Fischer" not in rejected
    by_talent = table(client.get(base(tenant), {"talent": str(dana.talent_id)}).content.decode())
    assert "Dana Fischer" in by_talent and "Sam Ortega" not in by_talent

    exported = client.get(f"{base(tenant)}export.csv", {"status": "rejected"})
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert [r["talent"] for r in rows] == ["Sam Ortega"] and rows[0]["status"] == "rejected"
    everything = client.get(f"{base(tenant)}export.csv").content.decode()
    assert "Dana Fischer" in everything and "Sam Ortega" in everything

    bad = client.get(base(tenant), {"status": "nonsense"})
    assert bad.status_code == 400 and "nonsense" in bad.content.decode()
    # htmx asks for the table only.
    fragment = client.get(base(tenant), {"status": "rejected"}, HTTP_HX_REQUEST="true")
    assert "<table" in fragment.content.decode() and "<nav" not in fragment.content.decode()


def test_revoke_needs_a_reason_then_shows_its_effects(tenant, member_client, settings):
    settings.CONSENT_ARTEFACT_RETENTION_S = 7 * 86400
    consent = consent_with_evidence(tenant)
    FineTuneJob.objects.for_tenant(tenant).create(
        voice_id=consent.voice_id, status=FineTuneJob.Status.RUNNING
    )
    client = member_client(tenant, "brand_manager")
    detail = f"{base(tenant)}{consent.pk}/"
    assert 'data-confirm="Revoke' in client.get(detail).content.decode()

    missing = client.post(f"{detail}revoke/", {"reason": "   "})
    assert missing.status_code == 400
    page = missing.content.decode()
    assert 'id="id_reason_error"' in page and "needs a written reason" in page
    consent.refresh_from_db()
    assert consent.status == ConsentRecord.Status.VERIFIED

    done = client.post(f"{detail}revoke/", {"reason": "The talent asked by email."}, follow=True)
    assert done.status_code == 200
    page = done.content.decode()
    consent.refresh_from_db()
    assert consent.status == ConsentRecord.Status.REVOKED
    assert Voice.objects.for_tenant(tenant).get(pk=consent.voice_id).status == "disabled"
    assert 'id="effects"' in page and 'data-voice-status="dana">Disabled' in page
    assert "403 consent_revoked" in page
    assert 'id="fine-tunes-cancelled">1' in page
    purge = consent.artefacts_delete_after
    assert purge.date() == (timezone.now() + timedelta(days=7)).date()
    assert purge.strftime("%Y-%m-%d %H:%M") in page
    assert "Revoke consent" not in page  # nothing left to revoke

    again = client.post(f"{detail}revoke/", {"reason": "Once more, by mistake."}, follow=True)
    assert again.status_code == 200 and "already revoked" in again.content.decode()


def test_an_expired_consent_cannot_be_revoked_and_says_so(tenant, member_client):
    consent = consent_with_evidence(tenant)
    ConsentRecord.objects.for_tenant(tenant).filter(pk=consent.pk).update(status="expired")
    client = member_client(tenant, "owner")
    response = client.post(
        f"{base(tenant)}{consent.pk}/revoke/", {"reason": "Too late now."}, follow=True
    )
    assert response.status_code == 200 and "already expired" in response.content.decode()


def test_query_budgets(tenant, member_client, page_queries):
    for i in range(30):
        consent = consent_with_evidence(tenant, slug=f"voice-{i}", name=f"Talent {i}")
    client = member_client(tenant, "auditor")
    with page_queries():
        assert client.get(base(tenant)).status_code == 200
    with page_queries():
        assert client.get(f"{base(tenant)}{consent.pk}/").status_code == 200
    with page_queries():
        assert client.get(f"{base(tenant)}export.csv").status_code == 200

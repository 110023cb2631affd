"""The trace page without a browser: own clips name their request, another tenant's clip names
nothing of that tenant, bad uploads are 400 next to the field, htmx gets the fragment."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from frontend.tests.compliance import watermarked_clip

pytestmark = pytest.mark.django_db


def url(tenant) -> str:
    return f"/console/{tenant.slug}/watermark/"


@pytest.fixture
def auditor(client, tenant, make_member):
    client.force_login(make_member(tenant, "auditor"))
    return client


def upload(client, tenant, data: bytes, name="found.wav", **headers):
    return client.post(url(tenant), {"file": SimpleUploadedFile(name, data)}, **headers)


def test_roles(client, tenant, make_member):
    for role in ("developer", "brand_manager"):
        client.force_login(make_member(tenant, role))
        assert client.get(url(tenant)).status_code == 404
    client.force_login(make_member(tenant, "admin"))
    assert client.get(url(tenant)).status_code == 200


def test_own_clip_names_its_request(auditor, tenant, make_job, make_key, page_queries):
    key = make_key(tenant, name="mobile app").key
    clip, job = watermarked_clip(tenant, make_job, api_key=key, model_version="piper-en-1")
    with page_queries():
        response = upload(auditor, tenant, clip)
    html = response.content.decode()
    assert response.status_code == 200 and 'id="verdict">watermarked' in html
    for shown in (job.request_id, str(job.pk), key.masked, "stock-joe", "piper-en-1"):
        assert shown in html, shown
    assert "another tenant" not in html


def test_htmx_swaps_in_the_result_only(auditor, tenant, make_job):
    clip, job = watermarked_clip(tenant, make_job)
    response = upload(auditor, tenant, clip, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and job.request_id in html
    assert "<nav" not in html and 'id="result"' in html and "<form" in html


def test_another_tenants_clip_reveals_nothing_of_it(
    auditor, tenant, other_tenant, make_job, make_key
):
    key = make_key(other_tenant, name="globex secret key").key
    clip, job = watermarked_clip(other_tenant, make_job, api_key=key, model_version="globex-v9")
    html = upload(auditor, tenant, clip).content.decode()
    assert "Watermarked by another tenant of this platform" in html
    assert 'id="verdict">watermarked' in html
    for hidden in (job.request_id, str(job.pk), key.masked, "globex-v9", other_tenant.slug,
                   job.watermark_payload):  # fmt: skip
        assert hidden not in html, hidden


def test_bad_uploads_are_400_next_to_the_field(auditor, tenant, settings):
    missing = auditor.post(url(tenant), {})
    assert missing.status_code == 400
    assert 'id="id_file_error"' in missing.content.decode()
    assert "Choose an audio file to check." in missing.content.decode()

    not_audio = upload(auditor, tenant, b"<html>not a sound</html>" * 20, "page.wav")
    assert not_audio.status_code == 400
    assert 'id="id_file_error"' in not_audio.content.decode()

    settings.WATERMARK_DETECT_MAX_BYTES = 1000
    too_large = upload(auditor, tenant, b"RIFF" + b"\0" * 5000, HTTP_HX_REQUEST="true")
    html = too_large.content.decode()
    assert too_large.status_code == 400 and "too large" in html and "<nav" not in html

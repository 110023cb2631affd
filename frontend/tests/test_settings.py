"""The settings page: everyone reads the profile and plan; owners and admins edit."""

import pytest

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def field_error(response, field: str) -> str:
    html = response.content.decode()
    marker = f'id="id_{field}_error"'
    assert marker in html, f"no error next to {field}"
    start = html.index(">", html.index(marker)) + 1
    return html[start : html.index("</p>", start)]


def test_everyone_reads_only_owners_and_admins_edit(client, tenant, make_member):
    for role, can_edit in [
        ("owner", True),
        ("admin", True),
        ("brand_manager", False),
        ("developer", False),
        ("auditor", False),
    ]:
        client.force_login(make_member(tenant, role))
        page = client.get(f"/console/{tenant.slug}/settings/")
        html = page.content.decode()
        assert page.status_code == 200, role
        assert tenant.slug in html and "Business" in html and "2,000,000" in html, role
        assert ("Edit the profile" in html) == can_edit, role
        post = client.post(f"/console/{tenant.slug}/settings/profile/", {"name": f"By {role}"})
        assert post.status_code == (302 if can_edit else 404), role
    tenant.refresh_from_db()
    assert tenant.name == "By admin"


def test_edit_strips_validates_and_audits(client, tenant, other_tenant, make_member):
    client.force_login(make_member(tenant, "owner"))
    path = f"/console/{tenant.slug}/settings/profile/"
    saved = client.post(path, {"name": "  Acme Voice ", "legal_name": " Acme Inc. "}, follow=True)
    assert saved.status_code == 200 and "Saved the profile" in saved.content.decode()
    tenant.refresh_from_db()
    assert (tenant.name, tenant.legal_name) == ("Acme Voice", "Acme Inc.")
    event = AuditEvent.objects.for_tenant(tenant).get(tenant=tenant, action="tenant.update")
    assert event.after == {"name": "Acme Voice", "legal_name": "Acme Inc."}
    blank = client.post(path, {"name": "   ", "legal_name": ""})
    assert blank.status_code == 400 and "needs a name" in field_error(blank, "name")
    long = client.post(path, {"name": "Acme", "legal_name": "x" * 201})
    assert long.status_code == 400 and "at most 200" in field_error(long, "legal_name")
    tenant.refresh_from_db()
    assert (tenant.name, tenant.legal_name) == ("Acme Voice", "Acme Inc.")
    # Another tenant's settings are a 404, page and action.
    assert client.get(f"/console/{other_tenant.slug}/settings/").status_code == 404
    assert (
        client.post(f"/console/{other_tenant.slug}/settings/profile/", {"name": "x"}).status_code
        == 404
    )
    other_tenant.refresh_from_db()
    assert other_tenant.name == "Test Co"


def test_query_budget(client, tenant, make_member, page_queries):
    client.force_login(make_member(tenant, "auditor"))
    with page_queries():
        assert client.get(f"/console/{tenant.slug}/settings/").status_code == 200

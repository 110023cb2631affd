"""Audit log pages without a browser: roles, filters shared by the page and both exports,
diffs, chain verification (also of a tampered chain) and query budgets."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.utils import timezone

from audit import services as audit
from audit.models import AuditEvent
from audit.services import Actor, RequestContext
from audit.tests.test_audit_log import behind_the_triggers_back

pytestmark = pytest.mark.django_db


def url(tenant, rest: str = "") -> str:
    return f"/console/{tenant.slug}/audit/{rest}"


def table(html: str) -> str:
    return html[html.index('<table id="audit-events"') : html.rindex("</table>")]


@pytest.fixture
def auditor(client, tenant, make_member):
    client.force_login(make_member(tenant, "auditor"))
    return client


def event(tenant, action, *, actor="alice@example.com", target_repr="", target_type="",
          before=None, after=None) -> AuditEvent:  # fmt: skip
    return audit.record(
        action,
        tenant=tenant,
        context=RequestContext(request_id="req_test", actor=Actor("user", "7", actor)),
        target_type=target_type,
        target_id="1",
        target_repr=target_repr,
        before=before,
        after=after,
    )


def test_roles(client, tenant, make_member):
    for role in ("developer", "brand_manager"):
        client.force_login(make_member(tenant, role))
        for rest in ("", "verify/", "export.csv", "export.jsonl"):
            assert client.get(url(tenant, rest)).status_code == 404, (role, rest)
    client.force_login(make_member(tenant, "auditor"))
    for rest in ("", "verify/", "export.csv", "export.jsonl"):
        assert client.get(url(tenant, rest)).status_code == 200, rest
    # Nothing here changes anything.
    assert client.post(url(tenant)).status_code == 405
    assert client.post(url(tenant, "verify/")).status_code == 405


def test_another_tenants_events_never_show(auditor, tenant, other_tenant):
    event(other_tenant, "voice.create", target_repr="globex secret voice")
    assert "globex secret voice" not in auditor.get(url(tenant)).content.decode()
    exported = auditor.get(url(tenant, "export.jsonl")).getvalue().decode()
    assert "globex secret voice" not in exported


def test_filters_filter_and_exports_honour_them(auditor, tenant):
    event(tenant, "voice.create", actor="alice@example.com", target_type="voices.voice",
          target_repr="dana")  # fmt: skip
    event(tenant, "apikey.revoke", actor="bob@example.com", target_type="tenancy.apikey",
          target_repr="mobile app")  # fmt: skip
    between = timezone.now()
    event(tenant, "voice.update", actor="bob@example.com", target_type="voices.voice",
          target_repr="sam")  # fmt: skip

    def actions(params) -> list[str]:
        html = table(auditor.get(url(tenant), params).content.decode())
        return [
            e.action
            for e in AuditEvent.objects.for_tenant(tenant)
            if f"<code>{e.action}</code>" in html
        ]

    assert set(actions({"actor": "bob"})) == {"apikey.revoke", "voice.update"}
    assert actions({"action": "voice.create"}) == ["voice.create"]
    assert set(actions({"target": "voices.voice"})) == {"voice.create", "voice.update"}
    assert actions({"target": "mobile"}) == ["apikey.revoke"]
    assert actions({"since": between.isoformat()}) == ["voice.update"]
    assert "voice.update" not in actions({"until": between.isoformat()})
    assert actions({"actor": "bob", "since": between.isoformat()}) == ["voice.update"]

    # The action select lists this tenant's actions.
    page = auditor.get(url(tenant)).content.decode()
    assert '<option value="apikey.revoke">' in page

    response = auditor.get(url(tenant, "export.csv"), {"actor": "bob"})
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["action"] for r in rows] == ["apikey.revoke", "voice.update"]
    assert set(rows[0]) == set(audit.EXPORT_FIELDS)
    lines = auditor.get(url(tenant, "export.jsonl"), {"target": "sam"}).getvalue().decode()
    exported = [json.loads(line) for line in lines.splitlines()]
    assert [e["action"] for e in exported] == ["voice.update"]
    assert exported[0]["hash"] == AuditEvent.objects.for_tenant(tenant).get(
        action="voice.update").hash  # fmt: skip
    # Taking a copy is itself recorded.
    recorded = AuditEvent.objects.for_tenant(tenant).filter(action="audit.export")
    assert [e.after["format"] for e in recorded.order_by("seq")] == ["csv", "jsonl"]
    assert recorded.first().after["filters"] == {"actor": ["bob"]}


def test_bad_filters_are_400_next_to_the_field_and_export_nothing(auditor, tenant):
    event(tenant, "voice.create")
    response = auditor.get(url(tenant), {"since": "yesterday-ish"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_since_error"' in page and "valid date" in page
    rows = auditor.get(url(tenant, "export.csv"), {"since": "yesterday-ish"}).content.decode()
    assert rows.strip().count("\n") == 0  # the header only


def test_htmx_gets_the_table_only(auditor, tenant):
    event(tenant, "voice.create")
    response = auditor.get(url(tenant), {"action": "voice.create"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<table" in html and "<nav" not in html
    assert "export.csv?action=voice.create" in html  # the export links follow the filters


def test_each_event_shows_its_diff(auditor, tenant):
    event(
        tenant,
        "consent.revoke",
        before={"status": "verified", "reasons": [], "talent": "t1"},
        after={"status": "revoked", "reason": "Asked by email.", "talent": "t1"},
    )
    html = auditor.get(url(tenant)).content.decode()
    assert "1 changed, 1 added, 1 removed" in html
    assert 'data-key="status" data-kind="changed"' in html
    assert 'data-key="reason" data-kind="added"' in html
    assert 'data-key="reasons" data-kind="removed"' in html
    assert 'data-key="talent" data-kind="unchanged"' in html
    assert "&quot;revoked&quot;" in html and "&quot;Asked by email.&quot;" in html


def test_chain_status_is_intact_then_reports_a_tampered_row(auditor, tenant):
    for i in range(4):
        event(tenant, "voice.create", target_repr=f"v{i}")
    fragment = auditor.get(url(tenant, "verify/"), HTTP_HX_REQUEST="true").content.decode()
    count = AuditEvent.objects.for_tenant(tenant).count()
    assert "Intact" in fragment and f"{count} events" in fragment and "<nav" not in fragment
    victim = AuditEvent.objects.for_tenant(tenant).filter(action="voice.create")[2]
    behind_the_triggers_back(
        "UPDATE audit_auditevent SET after = '{\"x\": 1}' WHERE id = %s", [victim.pk]
    )
    fragment = auditor.get(url(tenant, "verify/"), HTTP_HX_REQUEST="true").content.decode()
    assert "Broken" in fragment and "tampered" in fragment
    assert f"event #{victim.seq}:" in fragment
    # Without JS the button loads the whole page with the status in it.
    page = auditor.get(url(tenant, "verify/")).content.decode()
    assert "<nav" in page and "tampered" in page


def test_query_budget_with_sixty_events(auditor, tenant, page_queries):
    for i in range(60):
        event(tenant, f"voice.{'create' if i % 2 else 'update'}", target_repr=f"v{i}",
              before={"n": i}, after={"n": i + 1})  # fmt: skip
    with page_queries():
        assert auditor.get(url(tenant)).status_code == 200
    with page_queries():
        assert auditor.get(url(tenant), {"actor": "alice", "page": "2"}).status_code == 200
    with page_queries():
        assert auditor.get(url(tenant, "export.csv")).status_code == 200

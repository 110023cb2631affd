"""The audit chain: events for security actions, append-only at the database, tamper
detection by `audit_verify`, exports, and who may read it."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError

from audit.models import AuditEvent
from audit.services import verify_chain

pytestmark = pytest.mark.django_db


def actions(tenant):
    return list(
        AuditEvent.objects.for_tenant(tenant).order_by("seq").values_list("action", flat=True)
    )


def test_key_lifecycle_is_audited_with_actor_and_request_id(tenant, make_key, client_for):
    admin_key = make_key(tenant, name="ops")
    client = client_for(admin_key.token)
    created = client.post(
        "/api/v1/keys",
        {"name": "app", "scopes": ["synthesize"]},
        format="json",
        HTTP_X_REQUEST_ID="req-create-0001",
    )
    key_id = created.json()["id"]
    client.post(f"/api/v1/keys/{key_id}/rotate", {"grace_seconds": 60}, format="json")
    client.post(f"/api/v1/keys/{key_id}/revoke")
    assert actions(tenant)[-5:] == [
        "apikey.create",
        "apikey.create",
        "apikey.create",
        "apikey.rotate",
        "apikey.revoke",
    ]
    event = AuditEvent.objects.for_tenant(tenant).get(action="apikey.create", target_id=key_id)
    assert event.actor_type == "api_key" and admin_key.key.masked in event.actor_label
    assert event.request_id == "req-create-0001" and event.ip == "127.0.0.1"
    assert event.after["scopes"] == ["synthesize"]
    assert admin_key.token.rsplit("_", 1)[1] not in json.dumps(event.after)  # no secrets


def test_member_changes_and_logins_are_audited(tenant, make_member, client):
    user = make_member(tenant, "developer", email="dev@example.com")
    assert (
        client.post(
            "/console/login/", {"username": "dev@example.com", "password": "wrong"}
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/console/login/", {"username": "dev@example.com", "password": "pw-12345678"}
        ).status_code
        == 302
    )
    assert actions(tenant)[-3:] == ["member.add", "auth.login_failed", "auth.login"]
    failed = AuditEvent.objects.for_tenant(tenant).get(action="auth.login_failed")
    assert failed.actor_label == "dev@example.com" and failed.target_id == str(user.pk)
    client.logout()  # a signed-in member who opens the sign-in page is sent to the console
    client.post("/console/login/", {"username": "nobody@example.com", "password": "x"})
    assert AuditEvent.dangerously_unscoped.filter(
        tenant=None, action="auth.login_failed", actor_label="nobody@example.com"
    ).exists()


def test_update_and_delete_are_refused_by_the_database(tenant, make_key):
    make_key(tenant)
    event = AuditEvent.objects.for_tenant(tenant).first()
    for sql in (
        "UPDATE audit_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [event.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.for_tenant(tenant).filter(pk=event.pk).update(action="x")


def behind_the_triggers_back(sql: str, params) -> None:
    """What a superuser with direct database access could do."""
    with connection.cursor() as cursor:
        # A superuser session can switch ordinary triggers off for itself.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET session_replication_role = DEFAULT")


def _chain_with_events(tenant, make_key, n=4):
    for i in range(n):
        make_key(tenant, name=f"k{i}")
    call_command("audit_verify")  # clean before tampering
    return list(AuditEvent.objects.for_tenant(tenant).order_by("seq"))


def test_audit_verify_finds_an_altered_row(tenant, make_key, capsys):
    events = _chain_with_events(tenant, make_key)
    victim = events[2]
    behind_the_triggers_back(
        'UPDATE audit_auditevent SET after = \'{"scopes": ["nothing"]}\' WHERE id = %s',
        [victim.pk],
    )
    with pytest.raises(CommandError, match="FAILED"):
        call_command("audit_verify")
    err = capsys.readouterr().err
    assert f"tampered: event id={victim.pk} seq={victim.seq}" in err


def test_audit_verify_finds_a_deleted_row(tenant, make_key):
    events = _chain_with_events(tenant, make_key)
    behind_the_triggers_back("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    problems = verify_chain(str(tenant.pk))
    assert [p.kind for p in problems] == ["deleted"]
    assert problems[0].seq == events[1].seq


def test_audit_verify_finds_a_truncated_tail(tenant, make_key):
    events = _chain_with_events(tenant, make_key)
    behind_the_triggers_back("DELETE FROM audit_auditevent WHERE id = %s", [events[-1].pk])
    assert [p.kind for p in verify_chain(str(tenant.pk))] == ["truncated"]


def test_audit_verify_finds_reordered_rows(tenant, make_key):
    events = _chain_with_events(tenant, make_key)
    a, b = events[1], events[2]
    behind_the_triggers_back(
        "UPDATE audit_auditevent SET seq = CASE WHEN id = %s THEN %s ELSE %s END "
        "WHERE id IN (%s, %s)",
        [a.pk, -1, a.seq, a.pk, b.pk],
    )
    behind_the_triggers_back("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [b.seq, a.pk])
    kinds = {p.kind for p in verify_chain(str(tenant.pk))}
    assert "tampered" in kinds


def test_export_jsonl_and_csv_with_filters(tenant, make_key, client_for):
    for i in range(3):
        make_key(tenant, name=f"k{i}")
    client = client_for(make_key(tenant, scopes=["audit:read"]).token)
    response = client.get("/api/v1/audit-events/export?action=apikey.create")
    assert response["Content-Type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert len(rows) == 4 and {r["action"] for r in rows} == {"apikey.create"}
    assert rows == sorted(rows, key=lambda r: r["seq"])
    csv_body = b"".join(client.get("/api/v1/audit-events/export?format=csv").streaming_content)
    header, *lines = csv_body.decode().strip().splitlines()
    assert header.startswith("seq,created_at") and len(lines) >= 5
    assert actions(tenant)[-1] == "audit.export"  # exports are themselves audited
    listed = client.get("/api/v1/audit-events?action_prefix=apikey&page_size=2").json()
    assert listed["count"] == 4 and len(listed["results"]) == 2


def test_only_auditors_and_admins_read_the_log(tenant, make_member, client_for):
    base = f"/api/v1/tenants/{tenant.slug}/audit-events"
    for role, status in [
        ("auditor", 200),
        ("admin", 200),
        ("owner", 200),
        ("developer", 403),
        ("brand_manager", 403),
    ]:
        assert client_for(user=make_member(tenant, role)).get(base).status_code == status, role

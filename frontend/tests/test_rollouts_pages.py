"""Rollout pages without a browser: what a tenant sees (exactly what the API shows), who may
act, the controls and their decisions, policy and pins with their validation, query budgets."""

from __future__ import annotations

import re
import uuid

import pytest

from audit.models import AuditEvent
from frontend.tests.rollout_data import guardrail_look, platform_rollout, voice_rollout
from rollout.models import ModelVersion, Rollout, RolloutDecision, VersionPin
from rollout.tests.control_support import custom_voice

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, tenant, make_member):
    client.force_login(make_member(tenant, "owner"))
    return client


@pytest.fixture
def seeded(tenant, other_tenant, make_job):
    stock = platform_rollout()
    voice, stable, candidate, own = voice_rollout(tenant, make_job)
    _, _, _, foreign = voice_rollout(other_tenant, make_job, requests=3, samples=1)
    return {"stock": stock, "own": own, "foreign": foreign, "stable": stable,
            "candidate": candidate, "voice": voice}  # fmt: skip


def url(tenant, *parts) -> str:
    return "/".join([f"/console/{tenant.slug}/rollouts", *map(str, parts)]) + "/"


def test_overview_shows_what_the_api_shows(owner_client, api, tenant, seeded):
    page = owner_client.get(url(tenant)).content.decode()
    listed = {r["id"] for r in api.get("/api/v1/rollouts/").json()["results"]}
    assert listed == {str(seeded["stock"].pk), str(seeded["own"].pk)}
    shown = set(re.findall(rf"/console/{tenant.slug}/rollouts/([0-9a-f-]{{36}})/", page))
    assert shown == listed
    assert str(seeded["foreign"].pk) not in page
    versions = {v["id"] for v in api.get("/api/v1/models/", {"page_size": 100}).json()["results"]}
    for version_id in versions:
        assert version_id in page
    assert seeded["foreign"].candidate_id not in page
    # Percentages, steps, state and versions of each live rollout.
    assert "25 %" in page and "Step 2 of 4" in page
    assert "20 %" in page and "Step 1 of 3" in page
    assert 'aria-valuenow="25"' in page and "Brand voice" in page
    assert "Early access" in page and "Pins" in page


def test_empty_state_without_rollouts(owner_client, tenant):
    page = owner_client.get(url(tenant)).content.decode()
    assert "No rollouts yet" in page


def test_another_tenants_rollout_is_not_found(owner_client, tenant, seeded):
    foreign = seeded["foreign"]
    for rollout_id in (foreign.pk, uuid.uuid4(), "not-a-uuid"):
        assert owner_client.get(url(tenant, rollout_id)).status_code == 404
        for action in ("pause", "resume", "promote", "rollback", "targeting"):
            response = owner_client.post(url(tenant, rollout_id, action), {"rollback-reason": "x"})
            assert response.status_code == 404, (rollout_id, action)
    foreign.refresh_from_db()
    assert foreign.state == "running"
    assert not RolloutDecision.objects.filter(rollout=foreign, action="pause").exists()


@pytest.mark.parametrize("role", ["auditor", "brand_manager"])
def test_readers_read_but_cannot_act(client, tenant, make_member, seeded, role):
    client.force_login(make_member(tenant, role))
    own = seeded["own"]
    assert client.get(url(tenant)).status_code == 200
    detail = client.get(url(tenant, own.pk))
    assert detail.status_code == 200
    text = detail.content.decode()
    assert "Candidate beside stable" in text and "Decision timeline" in text
    assert f"rollouts/{own.pk}/pause/" not in text
    assert "can follow this rollout but not act" in text
    for action, data in (
        ("pause", {}),
        ("promote", {}),
        ("rollback", {"rollback-reason": "bad"}),
        ("targeting", {}),
    ):
        assert client.post(url(tenant, own.pk, action), data).status_code == 404
    assert client.post(url(tenant, "policy"), {"early_access": "on"}).status_code == 404
    assert client.post(url(tenant, "pins"), {"version": seeded["stable"].pk}).status_code == 404
    own.refresh_from_db()
    assert (own.state, own.percent) == ("running", 20.0)
    assert not VersionPin.objects.for_tenant(tenant).exists()


def test_owner_runs_its_own_voice_rollout(owner_client, tenant, seeded):
    own = seeded["own"]
    look = guardrail_look(own, tenant)
    detail = url(tenant, own.pk)
    page = owner_client.get(detail).content.decode()
    assert 'data-confirm="Pause this rollout?' in page
    # The evidence as the tenant may see it: its own group and the pooled one, no stranger.
    assert "<details" in page and "not enough quality samples yet" in page
    assert f"tenant:{tenant.pk}" in page and "stranger-verdict" not in page
    assert "11111111-1111-1111-1111-111111111111" not in page
    assert look.pk

    paused = owner_client.post(url(tenant, own.pk, "pause"), {"pause-reason": "listening test"})
    assert paused.status_code == 302 and paused["Location"] == detail
    own.refresh_from_db()
    assert own.state == "paused"
    page = owner_client.get(detail).content.decode()
    assert "listening test" in page and "Paused" in page
    assert f'action="{detail}resume/"' in page

    # Pausing again is a conflict, said on the page (not a 500).
    again = owner_client.post(url(tenant, own.pk, "pause"), {})
    assert again.status_code == 409 and "cannot pause" in again.content.decode()

    assert owner_client.post(url(tenant, own.pk, "resume"), {}).status_code == 302
    promoted = owner_client.post(url(tenant, own.pk, "promote"), {"promote-reason": "fine"})
    assert promoted.status_code == 302
    own.refresh_from_db()
    assert (own.state, own.percent, own.step_index) == ("running", 50.0, 1)

    # A rollback needs a reason: the message sits next to the field.
    missing = owner_client.post(url(tenant, own.pk, "rollback"), {"rollback-reason": ""})
    assert missing.status_code == 400
    assert re.search(
        r'id="id_rollback-reason_error"[^>]*>This field is required', missing.content.decode()
    )
    too_long = owner_client.post(url(tenant, own.pk, "rollback"), {"rollback-reason": "x" * 501})
    assert too_long.status_code == 400
    rolled = owner_client.post(url(tenant, own.pk, "rollback"), {"rollback-reason": "robotic s"})
    assert rolled.status_code == 302
    own.refresh_from_db()
    assert own.state == "rolled_back"
    assert ModelVersion.objects.for_tenant(tenant).get(pk=own.candidate_id).marked_bad

    decisions = list(
        RolloutDecision.objects.filter(rollout=own).values_list("action", "reason", "actor")
    )
    actions = [a for a, _, _ in decisions]
    assert actions[-4:] == ["pause", "resume", "promote", "rollback"]
    assert ("pause", "listening test") in [(a, r) for a, r, _ in decisions]
    page = owner_client.get(detail).content.decode()
    assert "robotic s" in page and "20 → 50 %" in page and "50 → 0 %" in page
    audited = set(AuditEvent.objects.for_tenant(tenant).values_list("action", flat=True))
    assert {"rollout.pause", "rollout.resume", "rollout.promote", "rollout.rollback"} <= audited


def test_platform_rollout_actions_are_refused_for_a_tenant_owner(owner_client, tenant, seeded):
    stock = seeded["stock"]
    page = owner_client.get(url(tenant, stock.pk)).content.decode()
    assert "Managed by the platform operator" in page
    assert "/pause/" not in page and "/rollback/" not in page and "/promote/" not in page
    for action, data in (
        ("pause", {}),
        ("promote", {}),
        ("rollback", {"rollback-reason": "I do not like it"}),
        ("targeting", {"targeting-include_all_tenants": "on"}),
    ):
        refused = owner_client.post(url(tenant, stock.pk, action), data)
        assert refused.status_code == 403, action
        assert "platform_operator_required" in refused.content.decode()
    stock.refresh_from_db()
    assert (stock.state, stock.percent) == ("running", 25.0)


def test_targeting_of_own_voice_rollout(owner_client, tenant, other_tenant, seeded):
    own = seeded["own"]
    action = url(tenant, own.pk, "targeting")
    ok = owner_client.post(action, {"targeting-included_tenants": str(tenant.pk)})
    assert ok.status_code == 302
    own.refresh_from_db()
    assert (own.include_all_tenants, own.included_tenants) == (False, [str(tenant.pk)])
    for bad in (str(other_tenant.pk), "acme"):
        refused = owner_client.post(action, {"targeting-excluded_tenants": bad})
        assert refused.status_code == 400
        body = refused.content.decode()
        assert re.search(r'id="id_targeting-excluded_tenants_error"[^>]*>Unknown tenant ids', body)
    own.refresh_from_db()
    assert own.excluded_tenants == []


def test_policy_and_pins(owner_client, api, tenant, other_tenant, seeded):
    saved = owner_client.post(url(tenant, "policy"), {"early_access": "on"})
    assert saved.status_code == 302
    page = owner_client.get(url(tenant)).content.decode()
    assert re.search(r'name="early_access"[^>]*checked', page)
    event = AuditEvent.objects.for_tenant(tenant).get(action="rollout.policy.update")
    assert (event.before["early_access"], event.after["early_access"]) == (False, True)
    assert api.get("/api/v1/rollout-policy").json()["early_access"] is True  # the same policy

    stable = seeded["stable"]
    pinned = owner_client.post(url(tenant, "pins"), {"version": stable.pk})
    assert pinned.status_code == 302
    pin = VersionPin.objects.for_tenant(tenant).get()
    assert (pin.family, pin.version_id) == (stable.family, stable.pk)
    assert stable.pk in owner_client.get(url(tenant)).content.decode()
    assert [p["version"] for p in api.get("/api/v1/pins").json()["results"]] == [stable.pk]

    _, (foreign, _) = custom_voice(other_tenant)
    for version_id in ("nope", foreign.pk):
        refused = owner_client.post(url(tenant, "pins"), {"version": version_id})
        assert refused.status_code == 400
        assert re.search(
            r'id="id_version_error"[^>]*>Model version .* is not a validated version',
            refused.content.decode(),
        )
    mismatch = owner_client.post(url(tenant, "pins"), {"version": stable.pk, "family": "stock"})
    assert mismatch.status_code == 400
    assert re.search(
        r'id="id_version_error"[^>]*>.* is a version of voice:', mismatch.content.decode()
    )
    empty = owner_client.post(url(tenant, "pins"), {"version": ""})
    assert empty.status_code == 400 and 'id="id_version_error"' in empty.content.decode()

    other_pin = VersionPin.objects.for_tenant(other_tenant).create(
        tenant=other_tenant, family=foreign.family, version=foreign
    )
    for pin_id in (other_pin.pk, "zzz"):
        assert owner_client.post(url(tenant, "pins", pin_id, "unpin")).status_code == 404
    assert VersionPin.objects.for_tenant(other_tenant).exists()
    unpinned = owner_client.post(url(tenant, "pins", pin.pk, "unpin"))
    assert unpinned.status_code == 302
    assert not VersionPin.objects.for_tenant(tenant).exists()
    actions = set(AuditEvent.objects.for_tenant(tenant).values_list("action", flat=True))
    assert {"rollout.pin", "rollout.unpin"} <= actions


def test_unknown_action_is_not_found(owner_client, tenant, seeded):
    assert owner_client.post(url(tenant, seeded["own"].pk, "explode")).status_code == 404


def test_query_budgets(owner_client, tenant, make_job, page_queries, seeded):
    family = seeded["own"].family
    for n in range(30):
        ModelVersion.dangerously_unscoped.create(
            id=f"adapted:bulk-{n}@{uuid.uuid4().hex[:12]}",
            family=family,
            engine="adapted",
            version=f"bulk-{n}",
            semver=f"2.{n}.0",
            artefact_checksum=uuid.uuid4().hex,
            tenant=tenant,
            status=ModelVersion.Status.VALIDATED,
            validation={"metrics": {"wer": 0.05, "mos": 3.9, "rtf": 0.2}},
        )
    own = seeded["own"]
    for _ in range(40):
        guardrail_look(own, tenant)
    VersionPin.objects.for_tenant(tenant).create(
        tenant=tenant, family=family, version=seeded["stable"]
    )
    with page_queries():
        overview = owner_client.get(url(tenant))
    assert overview.status_code == 200
    with page_queries():
        detail = owner_client.get(url(tenant, own.pk))
    assert detail.status_code == 200
    assert "Page 1 of 2" in detail.content.decode()
    with page_queries():
        assert owner_client.get(url(tenant, own.pk) + "?page=2").status_code == 200
    assert Rollout.objects.visible_to(tenant).count() == 2

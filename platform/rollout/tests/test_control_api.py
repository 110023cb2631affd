"""The rollout control plane over HTTP and the CLI: rollouts (tenant and platform), manual
decisions and their audit trail, the rollout policy, pins, per-version metrics, permissions
and tenant isolation. No synthesis here (see test_request_assignment.py): rows only."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditEvent
from rollout.models import ModelVersion, QualitySample, Rollout, RolloutDecision, VersionPin
from rollout.services import lifecycle
from rollout.services.authority import Authority
from rollout.tests.control_support import custom_voice, error_of, stock_alias
from tenancy.roles import Role, Scope
from tenancy.services import tenants as tenant_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def own(tenant):
    """A custom voice of `tenant` with a candidate version."""
    voice, (stable, candidate) = custom_voice(tenant)
    return voice, stable, candidate


@pytest.fixture
def platform_rollout(db):
    candidate = stock_alias("ctl-canary")
    return lifecycle.start(Authority.operator("tests"), candidate, steps=[10, 50, 100])


@pytest.fixture
def staff(client_for):
    user = tenant_services.create_user("ops@example.com", "pw-12345678", is_staff=True)
    return client_for(user=user)


def member_client(make_member, client_for, tenant, role):
    return client_for(user=make_member(tenant, role))


def test_tenant_runs_its_own_voice_rollout_and_every_decision_is_audited(api, tenant, own):
    _, stable, candidate = own
    created = api.post(
        "/api/v1/rollouts/",
        {"candidate": candidate.id, "steps": [5, 50, 100], "min_requests": 10, "reason": "v2"},
        format="json",
    )
    assert created.status_code == 201, created.content
    rollout = created.json()
    assert rollout["platform"] is False and rollout["percent"] == 5.0
    assert (rollout["candidate"], rollout["stable"]) == (candidate.id, stable.id)
    url = f"/api/v1/rollouts/{rollout['id']}"

    for action, body, state, percent in [
        ("pause", {"reason": "look at it"}, "paused", 5.0),
        ("resume", {}, "running", 5.0),
        ("promote", {"complete": False}, "running", 50.0),
        ("rollback", {"reason": "sounds off"}, "rolled_back", 0.0),
    ]:
        response = api.post(f"{url}/{action}", body, format="json")
        assert response.status_code == 200, (action, response.content)
        assert (response.json()["state"], response.json()["percent"]) == (state, percent)
    candidate.refresh_from_db()
    assert candidate.marked_bad

    # Rolled back sticks: a new attempt needs a written reason.
    assert error_of(api.post(f"{url}/retry", {}, format="json"))["code"] == "reason_required"
    short = api.post(f"{url}/retry", {"reason": "again"}, format="json")
    assert error_of(short)["code"] == "reason_required"
    retried = api.post(f"{url}/retry", {"reason": "the fix is in the text frontend"}, format="json")
    assert retried.status_code == 201 and retried.json()["retry_of"] == rollout["id"]
    assert error_of(api.post(f"{url}/pause", {}, format="json"))["code"] == "rollout_not_live"

    detail = api.get(url).json()
    assert [d["action"] for d in detail["decisions"]] == [
        "start",
        "pause",
        "resume",
        "promote",
        "rollback",
    ]
    assert detail["decisions"][4]["reason"] == "sounds off"
    events = AuditEvent.objects.for_tenant(tenant).filter(action__startswith="rollout.")
    actions = list(events.order_by("seq").values_list("action", flat=True))
    assert actions == [
        "rollout.start",
        "rollout.pause",
        "rollout.resume",
        "rollout.promote",
        "rollout.rollback",
        "rollout.start",
    ]
    rollback = events.get(action="rollout.rollback")
    assert rollback.actor_type == AuditEvent.ActorType.API_KEY
    assert rollback.after["state"] == "rolled_back" and "evidence" in rollback.after


def test_promote_complete_makes_the_candidate_stable(api, own):
    voice, _, candidate = own
    rollout = api.post("/api/v1/rollouts/", {"candidate": candidate.id}, format="json").json()
    done = api.post(f"/api/v1/rollouts/{rollout['id']}/promote", {"complete": True}, format="json")
    assert done.json()["state"] == "completed"
    voice.refresh_from_db()
    assert voice.model_version_id == candidate.id


def test_create_validates_its_input(api, tenant, own, other_tenant):
    _, stable, candidate = own
    bad_steps = api.post(
        "/api/v1/rollouts/", {"candidate": candidate.id, "steps": [50, 20]}, format="json"
    )
    assert error_of(bad_steps)["code"] == "invalid_steps"
    typo = api.post("/api/v1/rollouts/", {"candidate": candidate.id, "stepz": []}, format="json")
    assert typo.status_code == 400
    assert error_of(api.post("/api/v1/rollouts/", {"candidate": stable.id}, format="json"))[
        "code"
    ] == ("already_stable")
    _, (_, foreign) = custom_voice(other_tenant)
    unknown = api.post("/api/v1/rollouts/", {"candidate": "nope"}, format="json")
    stranger = api.post("/api/v1/rollouts/", {"candidate": foreign.id}, format="json")
    assert unknown.status_code == stranger.status_code == 404
    assert error_of(unknown)["code"] == error_of(stranger)["code"] == "unknown_model_version"
    # The platform's versions are the operators' to roll out.
    stock = stock_alias("ctl-create")
    denied = api.post("/api/v1/rollouts/", {"candidate": stock.id}, format="json")
    assert (denied.status_code, error_of(denied)["code"]) == (403, "platform_operator_required")
    api.post("/api/v1/rollouts/", {"candidate": candidate.id}, format="json")
    again = api.post("/api/v1/rollouts/", {"candidate": candidate.id}, format="json")
    assert error_of(again)["code"] == "rollout_in_progress"


def test_tenants_see_their_own_and_platform_rollouts_only(
    api, tenant, other_tenant, make_key, client_for, own, platform_rollout
):
    mine = api.post("/api/v1/rollouts/", {"candidate": own[2].id}, format="json").json()
    _, (_, theirs_candidate) = custom_voice(other_tenant)
    theirs = lifecycle.start(Authority.operator("tests"), theirs_candidate)
    listed = {r["id"] for r in api.get("/api/v1/rollouts/").json()["results"]}
    assert listed == {mine["id"], str(platform_rollout.pk)}
    assert api.get("/api/v1/rollouts/?state=running").json()["count"] == 2
    for path in ("", "/metrics"):
        assert api.get(f"/api/v1/rollouts/{theirs.pk}{path}").status_code == 404
    assert api.get("/api/v1/rollouts/not-a-uuid").status_code == 404
    pause = api.post(f"/api/v1/rollouts/{theirs.pk}/pause", {}, format="json")
    unknown = api.post(
        "/api/v1/rollouts/00000000-0000-0000-0000-000000000000/pause", {}, format="json"
    )
    assert pause.status_code == unknown.status_code == 404
    assert error_of(pause)["code"] == error_of(unknown)["code"]
    theirs.refresh_from_db()
    assert theirs.state == Rollout.State.RUNNING


def test_platform_rollouts_are_read_only_for_tenant_admins(api, platform_rollout):
    url = f"/api/v1/rollouts/{platform_rollout.pk}"
    assert api.get(url).status_code == 200
    for action, body in [
        ("pause", {}),
        ("rollback", {"reason": "no"}),
        ("promote", {"complete": True}),
        ("targeting", {"excluded_tenants": []}),
    ]:
        response = api.post(f"{url}/{action}", body, format="json")
        assert (response.status_code, error_of(response)["code"]) == (
            403,
            "platform_operator_required",
        ), action
    platform_rollout.refresh_from_db()
    assert (platform_rollout.state, platform_rollout.percent) == ("running", 10.0)


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.BRAND_MANAGER])
def test_readers_read_but_cannot_act(role, tenant, make_member, client_for, own):
    rollout = lifecycle.start(Authority.operator("tests"), own[2])
    client = member_client(make_member, client_for, tenant, role)
    base = f"/api/v1/tenants/{tenant.slug}"
    assert client.get(f"{base}/rollouts/{rollout.pk}").status_code == 200
    assert client.get(f"{base}/rollouts/{rollout.pk}/metrics").status_code == 200
    assert client.get(f"{base}/rollout-policy").status_code == 200
    assert client.get(f"{base}/pins").status_code == 200
    for method, path, body in [
        ("post", f"rollouts/{rollout.pk}/pause", {}),
        ("post", f"rollouts/{rollout.pk}/rollback", {"reason": "x"}),
        ("post", "rollouts", {"candidate": own[2].id}),
        ("patch", "rollout-policy", {"early_access": True}),
        ("post", "pins", {"version": own[1].id}),
    ]:
        response = getattr(client, method)(f"{base}/{path}", body, format="json")
        assert (response.status_code, error_of(response)["code"]) == (
            403,
            "insufficient_scope",
        ), path
    rollout.refresh_from_db()
    assert rollout.state == Rollout.State.RUNNING


def test_a_key_without_models_scopes_is_refused(tenant, make_key, client_for, own):
    client = client_for(make_key(tenant, scopes=[Scope.SYNTHESIZE]).token)
    assert error_of(client.get("/api/v1/rollouts/"))["code"] == "insufficient_scope"


def test_tenant_targeting_names_only_itself(api, tenant, other_tenant, own):
    rollout = api.post("/api/v1/rollouts/", {"candidate": own[2].id}, format="json").json()
    url = f"/api/v1/rollouts/{rollout['id']}/targeting"
    foreign = api.post(url, {"excluded_tenants": [str(other_tenant.pk)]}, format="json")
    assert error_of(foreign)["code"] == "invalid_targeting"
    garbage = api.post(url, {"included_tenants": ["not-a-uuid"]}, format="json")
    assert error_of(garbage)["code"] == "invalid_targeting"
    ok = api.post(url, {"excluded_tenants": [str(tenant.pk)], "reason": "hold"}, format="json")
    assert ok.json()["targeting"]["excluded_tenants"] == [str(tenant.pk)]


def test_platform_api_is_for_staff_operators(
    staff, api, tenant, other_tenant, make_member, client_for
):
    candidate = stock_alias("ctl-platform")
    created = staff.post(
        "/api/v1/platform/rollouts/",
        {"candidate": candidate.id, "steps": [1, 100], "on_fail": "pause"},
        format="json",
    )
    assert created.status_code == 201, created.content
    rollout_id = created.json()["id"]
    targeted = staff.post(
        f"/api/v1/platform/rollouts/{rollout_id}/targeting",
        {
            "include_all_tenants": False,
            "included_tenants": [str(tenant.pk), str(other_tenant.pk)],
        },
        format="json",
    )
    assert targeted.status_code == 200, targeted.content
    assert len(targeted.json()["targeting"]["included_tenants"]) == 2
    # The tenant sees that it is targeted, not who else is.
    seen = api.get(f"/api/v1/rollouts/{rollout_id}").json()
    assert seen["targeting"]["included_tenants"] == [str(tenant.pk)]
    assert staff.get("/api/v1/platform/rollouts/").json()["count"] == 1
    promoted = staff.post(f"/api/v1/platform/rollouts/{rollout_id}/promote", {}, format="json")
    assert promoted.json()["percent"] == 100.0
    event = AuditEvent.dangerously_unscoped.filter(tenant=None, action="rollout.promote").get()
    assert (event.actor_type, event.actor_label) == ("user", "ops@example.com")

    admin = member_client(make_member, client_for, tenant, Role.OWNER)
    for client in (admin, api):
        refused = client.get("/api/v1/platform/rollouts/")
        assert (refused.status_code, error_of(refused)["code"]) == (
            403,
            "platform_operator_required",
        )
    assert client_for().get("/api/v1/platform/rollouts/").status_code == 401


def test_tenants_see_only_their_own_and_the_pooled_evidence(api, tenant, staff, platform_rollout):
    stranger = "11111111-1111-1111-1111-111111111111"
    evidence = {
        "step": 0,
        "groups": {
            f"tenant:{tenant.pk}": {"outcome": "pass", "metrics": {"error_rate": {"effect": 0.0}}},
            f"tenant:{stranger}": {"outcome": "fail", "metrics": {}},
            "pooled": {"outcome": "pass", "tenants": [stranger, "2222"], "metrics": {}},
        },
    }
    RolloutDecision.objects.create(
        rollout=platform_rollout,
        action="hold",
        automatic=True,
        step_index=0,
        percent_before=10,
        percent_after=10,
        outcome="insufficient_data",
        evidence=evidence,
    )
    seen = api.get(f"/api/v1/rollouts/{platform_rollout.pk}").json()["decisions"][-1]
    # Keyed as the guardrails key them (guardrails._grouped).
    assert set(seen["evidence"]["groups"]) == {f"tenant:{tenant.pk}", "pooled"}
    assert "tenants" not in seen["evidence"]["groups"]["pooled"]
    assert stranger not in str(seen)
    full = staff.get(f"/api/v1/platform/rollouts/{platform_rollout.pk}").json()["decisions"][-1]
    assert full["evidence"] == evidence


def test_policy_and_pins(api, tenant, other_tenant, own):
    _, stable, candidate = own
    assert api.get("/api/v1/rollout-policy").json() == {
        "early_access": False,
        "allow_explicit_versions": False,
        "updated_at": None,
    }
    changed = api.patch("/api/v1/rollout-policy", {"early_access": True}, format="json")
    assert changed.json()["early_access"] is True
    assert changed.json()["allow_explicit_versions"] is False
    assert api.patch("/api/v1/rollout-policy", {"early": 1}, format="json").status_code == 400
    event = AuditEvent.objects.for_tenant(tenant).get(action="rollout.policy.update")
    assert (event.before["early_access"], event.after["early_access"]) == (False, True)

    pinned = api.post("/api/v1/pins", {"version": stable.id}, format="json")
    assert pinned.status_code == 201, pinned.content
    assert pinned.json()["family"] == stable.family
    # Pinning again moves the pin.
    moved = api.post("/api/v1/pins", {"version": candidate.id}, format="json").json()
    assert moved["id"] == pinned.json()["id"] and moved["version"] == candidate.id
    assert api.get("/api/v1/pins").json()["count"] == 1
    mismatch = api.post("/api/v1/pins", {"version": stable.id, "family": "stock"}, format="json")
    assert error_of(mismatch)["code"] == "family_mismatch"

    _, (foreign, _) = custom_voice(other_tenant)
    unvalidated = stock_alias("ctl-unvalidated", status=ModelVersion.Status.REGISTERED)
    for version_id in (foreign.id, unvalidated.id, "nope"):
        refused = api.post("/api/v1/pins", {"version": version_id}, format="json")
        assert (refused.status_code, error_of(refused)["code"]) == (404, "unknown_model_version")

    other_pin = VersionPin.objects.for_tenant(other_tenant).create(
        tenant=other_tenant, family=foreign.family, version=foreign
    )
    for path in (f"/api/v1/pins/{other_pin.pk}", "/api/v1/pins/zzz"):
        assert api.delete(path).status_code == 404
        assert api.get(path).status_code == 404
    assert api.delete(f"/api/v1/pins/{moved['id']}").status_code == 204
    assert api.get("/api/v1/pins").json()["count"] == 0
    actions = AuditEvent.objects.for_tenant(tenant).values_list("action", flat=True)
    assert {"rollout.pin", "rollout.unpin"} <= set(actions)
    unpin = AuditEvent.objects.for_tenant(tenant).get(action="rollout.unpin")
    assert unpin.before == {"family": stable.family, "version": candidate.id}


def test_metrics_side_by_side_on_the_callers_traffic(
    api, tenant, other_tenant, make_job, staff, platform_rollout
):
    candidate, stable = platform_rollout.candidate_id, platform_rollout.stable_id

    def job(owner, version, arm, **fields):
        values = dict(
            model_version=version,
            rollout=platform_rollout,
            rollout_arm=arm,
            status="succeeded",
            characters=100,
            synthesis_ms=500,
            audio_seconds=5.0,
        )
        return make_job(owner, **{**values, **fields})

    for ms in (200, 400, 600):
        job(tenant, candidate, "candidate", synthesis_ms=ms)
    job(tenant, candidate, "candidate", status="failed", error_code="synthesis_timeout")
    job(tenant, candidate, "candidate", status="failed", error_code="consent_revoked")
    job(tenant, stable, "stable", synthesis_ms=1000)
    job(tenant, stable, "", assignment_reason="pinned")  # not ramp traffic
    for _ in range(5):  # another tenant's traffic: never in this tenant's numbers
        job(other_tenant, candidate, "candidate", status="failed", error_code="synthesis_failed")
    QualitySample.objects.for_tenant(tenant).create(
        tenant=tenant,
        rollout=platform_rollout,
        step_index=0,
        status="scored",
        candidate_scores={"wer": 0.1, "mos": 3.5},
        stable_scores={"wer": 0.0, "mos": 4.0},
    )

    body = api.get(f"/api/v1/rollouts/{platform_rollout.pk}/metrics").json()
    arms = {v["arm"]: v for v in body["versions"]}
    assert arms["candidate"]["version"] == candidate
    assert (arms["candidate"]["requests"], arms["candidate"]["errors"]) == (4, 1)
    assert arms["candidate"]["timeout_rate"] == 0.25
    assert arms["candidate"]["latency_per_char_ms_p50"] == 4.0
    assert arms["candidate"]["rtf_p50"] == pytest.approx(0.08)
    assert arms["candidate"]["quality"]["mos"] == {"mean": 3.5, "samples": 1}
    assert arms["stable"]["requests"] == 1 and arms["stable"]["quality"]["wer"]["mean"] == 0.0
    everybody = staff.get(f"/api/v1/platform/rollouts/{platform_rollout.pk}/metrics").json()
    assert {v["arm"]: v["requests"] for v in everybody["versions"]}["candidate"] == 9

    past = (timezone.now() - timedelta(days=3)).isoformat()
    empty = api.get(
        f"/api/v1/rollouts/{platform_rollout.pk}/metrics",
        {"since": past, "until": (timezone.now() - timedelta(days=2)).isoformat()},
    ).json()
    assert all(v["requests"] == 0 and v["error_rate"] is None for v in empty["versions"])
    bad = api.get(f"/api/v1/rollouts/{platform_rollout.pk}/metrics", {"since": "yesterday"})
    assert error_of(bad)["code"] == "invalid_window"

    versions = api.get(f"/api/v1/models/{candidate}/metrics").json()["versions"]
    assert [(v["version"], v["role"]) for v in versions] == [
        (candidate, "requested"),
        (stable, "stable"),
    ]
    assert versions[0]["requests"] == 4 and versions[1]["requests"] == 2
    assert versions[0]["quality"]["wer"]["mean"] == 0.1
    _, (foreign, _) = custom_voice(other_tenant)
    assert api.get(f"/api/v1/models/{foreign.id}/metrics").status_code == 404


def run(*args) -> str:
    out = io.StringIO()
    call_command("rollout", *args, stdout=out)
    return out.getvalue()


def test_cli(tenant, other_tenant):
    candidate = stock_alias("ctl-cli")
    started = run("start", candidate.id, "--steps", "10,50,100", "--min-duration", "60")
    rollout = Rollout.dangerously_unscoped.get(candidate=candidate)
    assert str(rollout.pk) in started and rollout.min_step_duration_s == 60
    assert str(rollout.pk) in run("list", "--live")
    run("target", str(rollout.pk), "--include", tenant.slug, "--exclude", other_tenant.slug)
    rollout.refresh_from_db()
    assert rollout.included_tenants == [str(tenant.pk)] and not rollout.include_all_tenants
    assert rollout.excluded_tenants == [str(other_tenant.pk)]
    run("pause", str(rollout.pk), "--reason", "checking")
    run("resume", str(rollout.pk))
    run("promote", str(rollout.pk))
    assert "50 %" in run("show", str(rollout.pk))
    with pytest.raises(CommandError, match="rollout_in_progress"):
        run("start", stock_alias("ctl-cli-2").id)
    run("rollback", str(rollout.pk), "--reason", "bad prosody")
    with pytest.raises(CommandError, match="reason_required"):
        run("retry", str(rollout.pk), "--reason", "again")
    assert "retrying" in run("retry", str(rollout.pk), "--reason", "fixed the phonemizer")
    shown = run("show", str(rollout.pk))
    for action in ("start", "target", "pause", "resume", "promote", "rollback"):
        assert f" {action} " in shown

    stock_family = candidate.family
    assert "pinned" in run("pin", tenant.slug, stock_family, candidate.id)
    assert VersionPin.objects.for_tenant(tenant).get().version_id == candidate.id
    run("unpin", tenant.slug, stock_family)
    assert not VersionPin.objects.for_tenant(tenant).exists()
    assert "early_access=on explicit=off" in run("policy", tenant.slug, "--early-access", "on")
    assert "explicit=on" in run("policy", tenant.slug, "--explicit", "on")
    with pytest.raises(CommandError, match="no tenant"):
        run("policy", "nobody")
    with pytest.raises(CommandError):
        run("pause", "00000000-0000-0000-0000-000000000000")
    global_events = AuditEvent.dangerously_unscoped.filter(
        tenant=None, action__startswith="rollout."
    )
    assert global_events.filter(action="rollout.rollback", actor_label="operator").exists()
    assert AuditEvent.objects.for_tenant(tenant).filter(action="rollout.pin").exists()


def test_cli_evaluate_calls_the_guardrails_when_installed():
    try:
        import rollout.services.guardrails  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(CommandError, match="not installed"):
            run("evaluate")
    else:
        assert "evaluated" in run("evaluate")

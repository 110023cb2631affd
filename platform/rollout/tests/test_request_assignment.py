"""Which version serves a request, end to end: the API, the real worker and the real stock
model, with a second stock-family version (the packaged model under another name) as the
candidate. Each targeting rule, their precedence, stickiness, and manual decisions taking
effect on the very next request."""

from __future__ import annotations

import pytest

from rollout import assignment
from rollout.models import ModelVersion, TenantRolloutPolicy, VersionPin
from rollout.services import lifecycle
from rollout.services.authority import Authority
from rollout.tests.control_support import custom_voice, error_of, stock_alias
from synthesis.models import SynthesisRequest
from voices.models import Voice

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TEXT = "Hello there."
OPERATOR = Authority.operator("tests")


@pytest.fixture
def stable(db):
    return Voice.dangerously_unscoped.get(slug="stock-joe", tenant=None).model_version


@pytest.fixture
def candidate(db):
    return stock_alias("canary")


@pytest.fixture
def synth(celery_worker, tenant, make_key, client_for):
    """POST /api/v1/synthesize (sync) as `tenant`; returns (version, reason) and checks the
    worker really served it with that version."""
    keys = {}

    def post(end_user=None, key="a", expect=200, **body):
        if key not in keys:
            keys[key] = client_for(make_key(tenant).token)
        headers = {"HTTP_X_END_USER_ID": end_user} if end_user is not None else {}
        response = keys[key].post(
            "/api/v1/synthesize",
            {"voice": "stock-joe", "text": TEXT, **body},
            format="json",
            **headers,
        )
        assert response.status_code == expect, response.content[:300]
        if expect != 200:
            return response
        job = SynthesisRequest.objects.for_tenant(tenant).get(pk=response["X-Synthesis-Id"])
        assert job.status == "succeeded" and job.model_version == response["X-Model-Version"]
        assert job.assignment_reason == response["X-Model-Assignment"]
        return response["X-Model-Version"], response["X-Model-Assignment"]

    return post


def users_on_each_side(rollout, tenant, n=1):
    """End-user ids known to fall inside and outside the rollout's percentage."""
    inside, outside = [], []
    for i in range(1000):
        user = f"user-{i}"
        key = assignment.stickiness_key(end_user=user, api_key_id=None, tenant_id=str(tenant.pk))
        side = inside if assignment.in_rollout(key, rollout.salt, rollout.percent) else outside
        if len(side) < n:
            side.append(user)
        if len(inside) == len(outside) == n:
            return inside, outside
    raise AssertionError("no split found")


def start(candidate, percent, **settings):
    steps = [percent] if percent == 100 else [percent, 100]
    return lifecycle.start(OPERATOR, candidate, steps=steps, **settings)


def test_end_users_are_sticky_across_calls_and_keys_and_pause_freezes(
    synth, tenant, stable, candidate
):
    rollout = start(candidate, 50)
    (inside,), (outside,) = users_on_each_side(rollout, tenant)
    assert synth(inside) == (candidate.id, "canary")
    assert synth(outside) == (stable.id, "stable")
    # Another key of the same tenant: the end user keeps their version.
    assert synth(inside, key="b") == (candidate.id, "canary")
    assert synth(outside, key="b") == (stable.id, "stable")

    lifecycle.pause(OPERATOR, rollout, "investigating")
    assert synth(inside) == (candidate.id, "paused")
    assert synth(outside) == (stable.id, "paused")
    jobs = SynthesisRequest.objects.for_tenant(tenant)
    assert set(jobs.values_list("rollout_arm", flat=True)) == {"candidate", "stable"}


def test_rollback_applies_to_the_very_next_request(synth, api, candidate, stable):
    rollout = start(candidate, 100)
    assert synth() == (candidate.id, "canary")
    lifecycle.rollback(OPERATOR, rollout, "garbled audio")
    assert synth() == (stable.id, "stable")
    candidate.refresh_from_db()
    assert candidate.marked_bad
    # Stays rolled back: the bad candidate cannot simply be started again.
    with pytest.raises(lifecycle.RolloutConflict):
        start(candidate, 100)


def test_precedence_requested_over_pin_over_exclusion_over_rollout(
    synth, tenant, other_tenant, candidate, stable
):
    rollout = start(candidate, 100)
    assert synth() == (candidate.id, "canary")

    lifecycle.set_targeting(OPERATOR, rollout, excluded_tenants=[str(tenant.pk)])
    assert synth() == (stable.id, "excluded")

    # A pin beats the exclusion (and the rollout): pinned to the candidate here.
    VersionPin.objects.for_tenant(tenant).create(tenant=tenant, family="stock", version=candidate)
    assert synth() == (candidate.id, "pinned")

    # An explicit version beats the pin, where the tenant allows it.
    denied = synth(model_version=stable.id, expect=403)
    assert error_of(denied)["code"] == "explicit_versions_disabled"
    TenantRolloutPolicy.objects.for_tenant(tenant).create(
        tenant=tenant, allow_explicit_versions=True
    )
    assert synth(model_version=stable.id) == (stable.id, "requested")

    # Unknown, another tenant's, not validated, another family: the same 404.
    _, (foreign, _) = custom_voice(other_tenant)
    _, (own_voice_version, _) = custom_voice(tenant)
    unvalidated = stock_alias("unvalidated", status=ModelVersion.Status.REGISTERED)
    answers = []
    for version_id in ("piper:nope@000000000000", foreign.id, unvalidated.id, own_voice_version.id):
        refused = synth(model_version=version_id, expect=404)
        error = error_of(refused)
        assert error["code"] == "unknown_model_version"
        answers.append(error["message"].replace(version_id, "<id>"))
    assert len(set(answers)) == 1


def test_targeting_lists_and_early_access(synth, tenant, other_tenant, candidate, stable):
    rollout = start(candidate, 1)
    lifecycle.set_targeting(
        OPERATOR, rollout, include_all_tenants=False, included_tenants=[str(other_tenant.pk)]
    )
    assert synth() == (stable.id, "not_targeted")
    # Early access: the candidate at once, even when not targeted and at 1 %.
    TenantRolloutPolicy.objects.for_tenant(tenant).create(tenant=tenant, early_access=True)
    assert synth() == (candidate.id, "early_access")
    # ...but an exclusion still wins.
    lifecycle.set_targeting(OPERATOR, rollout, excluded_tenants=[str(tenant.pk)])
    assert synth() == (stable.id, "excluded")


def test_end_user_ids_are_checked(synth):
    for bad in ("x" * 129, "tab\there", "bell\x07"):
        assert error_of(synth(bad, expect=400))["code"] == "invalid_end_user"
    assert synth("x" * 128)[1] == "stable"


def test_openai_user_is_the_same_end_user_and_model_can_name_a_version(
    live_server, synth, tenant, make_key, candidate, stable
):
    import openai

    rollout = start(candidate, 50)
    (inside,), (outside,) = users_on_each_side(rollout, tenant)
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=make_key(tenant).token)

    def speak(model="tts-1", **extra):
        raw = client.audio.speech.with_raw_response.create(
            model=model, voice="alloy", input=TEXT, response_format="wav", extra_body=extra
        )
        assert len(raw.content) > 1000
        return raw.headers["x-model-version"], raw.headers["x-model-assignment"]

    for _ in range(2):
        assert speak(user=inside) == (candidate.id, "canary")
        assert speak(user=outside) == (stable.id, "stable")
    # The native route's X-End-User-Id is the same person.
    assert synth(inside) == (candidate.id, "canary")

    with pytest.raises(openai.PermissionDeniedError) as denied:
        speak(model=stable.id, user=inside)
    assert denied.value.body["code"] == "explicit_versions_disabled"
    TenantRolloutPolicy.objects.for_tenant(tenant).create(
        tenant=tenant, allow_explicit_versions=True
    )
    assert speak(model=stable.id, user=inside) == (stable.id, "requested")
    with pytest.raises(openai.NotFoundError) as unknown:
        speak(model="piper:nope@000000000000")
    assert unknown.value.body["code"] == "unknown_model_version"
    with pytest.raises(openai.BadRequestError) as bad_user:
        speak(user="u" * 129)
    assert bad_user.value.body["code"] == "invalid_end_user"

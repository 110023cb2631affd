"""The guardrails end to end: a real worker serves a rollout of a test-only `faulty` candidate
against the stock voice, traffic goes through the API, and the evaluator is called with a
`now` past the step's duration instead of waiting for it.

Traffic is kept minimal (2 cores): one worker, a handful of requests per arm. The stickiness
key here is the API key (one key hears one version), so the tests spread requests over a few
keys and keep the ones that landed in the arm they still need.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from rollout.models import ModelVersion, QualitySample, Rollout
from rollout.services import guardrails, lifecycle, quality, registry
from rollout.services.authority import Authority
from speech.testing import faulty_engine
from synthesis.models import SynthesisRequest
from voices.models import Voice

pytestmark = [pytest.mark.django_db(transaction=True)]

OPERATOR = Authority.operator("guardrails test")


def later(rollout: Rollout, durations: float = 1.0):
    rollout.refresh_from_db()
    started = rollout.step_started_at
    return started + timedelta(seconds=rollout.min_step_duration_s * durations + 1)


def candidate(fault: str) -> ModelVersion:
    return registry.register(faulty_engine.spec(fault), status="validated")


def stable_id() -> str:
    return Voice.dangerously_unscoped.get(slug="stock-joe", tenant=None).model_version_id


@pytest.fixture
def worker(start_worker, settings):
    queue = f"guardrails-{uuid.uuid4().hex[:8]}"
    settings.SYNTHESIS_QUEUE = queue  # this worker's own queue: no other worker serves it
    return start_worker(queue, SYNTHESIS_QUEUE=queue, TIMBRE_ENABLE_TEST_ENGINES="1")


class Traffic:
    """Sync synthesis requests, steered to the arm that still needs requests."""

    def __init__(self, tenant, make_key):
        self.tenant, self.make_key = tenant, make_key
        self.arm_of: dict[str, str] = {}  # token -> arm it was last served by
        self.keys: dict[str, str] = {}  # token -> key id
        self.sent = 0

    def _post(self, token: str) -> str:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        self.sent += 1
        text = f"Guardrail check number {self.sent}, sentence {uuid.uuid4().hex[:4]}."
        response = client.post(
            "/api/v1/synthesize", {"voice": "stock-joe", "text": text}, format="json"
        )
        assert response.status_code < 500 or response.json()["error"]["code"], response.content
        job = SynthesisRequest.dangerously_unscoped.filter(api_key_id=self.keys[token]).latest(
            "created_at"
        )
        assert job.status in ("succeeded", "failed"), job.status
        self.arm_of[token] = job.rollout_arm
        return job.rollout_arm

    def drive(self, per_arm: int) -> Counter:
        counts: Counter = Counter()
        while min(counts["candidate"], counts["stable"]) < per_arm:
            assert self.sent < 40 * per_arm, counts
            need = {a for a in ("candidate", "stable") if counts[a] < per_arm}
            token = next((t for t, a in self.arm_of.items() if a in need), None)
            if token is None:
                issued = self.make_key(self.tenant, scopes=["synthesize"])
                token = issued.token
                self.keys[token] = issued.key.pk
            counts[self._post(token)] += 1
        return counts


def wait_scored(rollout: Rollout, minimum: int, timeout_s: float = 180) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        samples = QualitySample.dangerously_unscoped.filter(
            rollout=rollout, step_index=rollout.step_index
        )
        if not samples.filter(status="pending").exists() and samples.count():
            if samples.filter(status="scored").count() >= minimum:
                return
        time.sleep(0.5)
    raise AssertionError("quality samples were not scored in time")


@pytest.mark.worker
@pytest.mark.slow
def test_healthy_candidate_advances_and_completes(worker, tenant, make_key):
    good = candidate("healthy")
    rollout = lifecycle.start(
        OPERATOR,
        good,
        steps=[20, 50, 100],
        min_step_duration_s=60,
        min_requests=6,
        min_quality_samples=2,
        quality_sample_rate=0.3,
        tenant_min_requests=1000,
    )
    traffic = Traffic(tenant, make_key)
    for step in (0, 1):
        rollout.refresh_from_db()
        assert (rollout.step_index, rollout.state) == (step, "running")
        traffic.drive(6)
        while (
            QualitySample.dangerously_unscoped.filter(rollout=rollout, step_index=step).count() < 2
        ):
            traffic.drive(1)
        wait_scored(rollout, 2)
        decision = guardrails.evaluate(rollout, now=later(rollout))
        assert decision.action == "advance", decision

    rollout.refresh_from_db()
    assert rollout.state == "completed" and rollout.look == 2
    assert Voice.dangerously_unscoped.get(slug="stock-joe", tenant=None).model_version_id == good.id
    actions = list(rollout.decisions.values_list("action", flat=True))
    assert actions == ["start", "advance", "complete"]
    completed = rollout.decisions.get(action="complete")
    pooled = completed.evidence["groups"]["pooled"]
    assert pooled["outcome"] == "pass"
    names = {m["name"] for m in pooled["metrics"]}
    assert {"error_rate", "latency_per_char_ms", "rtf", "quality_wer", "quality_mos"} <= names
    assert "p95" in pooled["percentiles"]["rtf"]["candidate"]
    scored = QualitySample.dangerously_unscoped.filter(rollout=rollout, status="scored").first()
    assert scored.text == "" and {"wer", "mos"} <= set(scored.candidate_scores)


@pytest.mark.worker
@pytest.mark.slow
def test_erroring_candidate_is_rolled_back(worker, tenant, make_key):
    bad = candidate("errors-0.8")
    rollout = lifecycle.start(
        OPERATOR,
        bad,
        steps=[50, 100],
        min_step_duration_s=60,
        min_requests=20,
        min_quality_samples=0,
        quality_sample_rate=0.0,
        max_extensions=0,
    )
    traffic = Traffic(tenant, make_key)
    traffic.drive(20)
    decision = guardrails.evaluate(rollout, now=later(rollout))
    assert decision.action == "fail", decision

    rollout.refresh_from_db()
    bad.refresh_from_db()
    assert rollout.state == "rolled_back" and rollout.percent == 0
    assert bad.marked_bad
    event = AuditEvent.dangerously_unscoped.filter(action="rollout.rollback").latest("created_at")
    evidence = event.after["evidence"]
    errors = next(m for m in evidence["groups"]["pooled"]["metrics"] if m["name"] == "error_rate")
    assert errors["decision"] == "fail" and errors["effect"] > 0.3
    assert {"ci_low", "ci_high", "n_candidate", "n_stable"} <= set(errors)

    # The very next request, whoever sends it, gets stable.
    token = next(t for t, arm in traffic.arm_of.items() if arm == "candidate")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(
        "/api/v1/synthesize", {"voice": "stock-joe", "text": "After the rollback."}, format="json"
    )
    assert response.status_code == 200
    assert response["X-Model-Version"] == stable_id()


def test_too_little_traffic_extends_then_holds(tenant):
    rollout = lifecycle.start(
        OPERATOR, candidate("healthy"), steps=[20, 100], min_step_duration_s=60, min_requests=10
    )
    assert guardrails.evaluate(rollout, now=later(rollout, 0.5)).action == "wait"
    assert guardrails.evaluate(rollout, now=later(rollout)).action == "extend"
    assert guardrails.evaluate(rollout, now=later(rollout, 1.5)).action == "wait"
    held = guardrails.evaluate(rollout, now=later(rollout, 2))
    assert (held.action, held.hold_reason) == ("hold", "insufficient_data")
    # Holding: no new decision at later ticks, and never an advance.
    for durations in (3, 10):
        guardrails.evaluate(rollout, now=later(rollout, durations))
    rollout.refresh_from_db()
    assert (rollout.state, rollout.step_index, rollout.hold_reason, rollout.look) == (
        "running",
        0,
        "insufficient_data",
        0,
    )
    assert list(rollout.decisions.values_list("action", flat=True)) == ["start", "extend", "hold"]


def test_unavailable_quality_metrics_hold(tenant, make_job):
    """Every quality sample failed to score (the scoring pipeline is down): hold, not pass."""
    good = candidate("healthy")
    rollout = lifecycle.start(
        OPERATOR, good, steps=[20, 100], min_step_duration_s=60, min_requests=3,
        min_quality_samples=2, quality_sample_rate=1.0,
    )  # fmt: skip
    now = timezone.now()
    for arm, version in (("candidate", good.id), ("stable", stable_id())):
        for _ in range(3):
            job = make_job(
                tenant, rollout=rollout, rollout_arm=arm, model_version=version,
                status="succeeded", synthesis_ms=200, characters=20, audio_seconds=1.5,
                finished_at=now,
            )  # fmt: skip
            QualitySample.dangerously_unscoped.create(
                tenant=tenant, rollout=rollout, request=job, step_index=0,
                status="failed", error="RuntimeError: scorer down",
            )  # fmt: skip
    decision = guardrails.evaluate(rollout, now=later(rollout))
    assert (decision.action, decision.hold_reason) == ("hold", "unavailable")
    guardrails.evaluate(rollout, now=later(rollout, 2))
    rollout.refresh_from_db()
    assert (rollout.state, rollout.hold_reason) == ("running", "unavailable")
    assert list(rollout.decisions.values_list("action", flat=True)) == ["start", "hold"]


def _requests(make_job, tenant, rollout, arm, version, n, errors=0):
    for i in range(n):
        failed = i < errors
        make_job(
            tenant, rollout=rollout, rollout_arm=arm, model_version=version,
            status="failed" if failed else "succeeded",
            error_code="synthesis_failed" if failed else "",
            synthesis_ms=None if failed else 200 + i, characters=20,
            audio_seconds=0 if failed else 1.5, finished_at=timezone.now(),
        )  # fmt: skip


def test_a_large_tenant_is_judged_alone(tenant, other_tenant, make_job):
    """The large tenant's own traffic fails the candidate, though pooled with everybody it
    might not; the small tenant is pooled. Client errors do not count."""
    good = candidate("healthy")
    rollout = lifecycle.start(
        OPERATOR, good, steps=[50, 100], min_step_duration_s=60, min_requests=5,
        min_quality_samples=0, quality_sample_rate=0.0, tenant_min_requests=20,
        max_extensions=0,
    )  # fmt: skip
    _requests(make_job, tenant, rollout, "candidate", good.id, 20, errors=20)
    _requests(make_job, tenant, rollout, "stable", stable_id(), 20)
    _requests(make_job, other_tenant, rollout, "candidate", good.id, 6)
    _requests(make_job, other_tenant, rollout, "stable", stable_id(), 6)
    make_job(other_tenant, rollout=rollout, rollout_arm="candidate", status="failed",
             error_code="text_too_long")  # fmt: skip
    decision = guardrails.evaluate(rollout, now=later(rollout))
    assert decision.action == "fail"
    rollout.refresh_from_db()
    evidence = rollout.decisions.get(action="rollback").evidence
    groups = evidence["groups"]
    assert set(groups) == {f"tenant:{tenant.pk}", "pooled"}
    assert groups[f"tenant:{tenant.pk}"]["outcome"] == "fail"
    assert groups["pooled"]["outcome"] == "pass"
    assert groups["pooled"]["requests"] == {"candidate": 6, "stable": 6}
    assert evidence["look"] == 1 and evidence["max_looks"] == 4


def test_task_names_match_what_services_enqueue():
    from rollout import tasks
    from rollout.services import quality

    assert tasks.score_quality_sample.name == quality.SCORE_QUALITY_TASK
    assert tasks.evaluate_rollouts.name == "rollout.tasks.evaluate_rollouts"


def test_a_sample_never_scored_gives_up_its_text(tenant):
    rollout = lifecycle.start(OPERATOR, candidate("healthy"), steps=[20, 100])
    sample = QualitySample.dangerously_unscoped.create(
        tenant=tenant, rollout=rollout, step_index=0, text="The tenant's words."
    )
    QualitySample.dangerously_unscoped.filter(pk=sample.pk).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    assert quality.expire_stale() == 1
    sample.refresh_from_db()
    assert (sample.status, sample.text) == ("failed", "")

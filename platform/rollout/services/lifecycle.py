"""A rollout's life: start, advance, extend, hold, pause, resume, promote, complete, roll back,
retry. Every change is a conditional update on the rollout's state plus a `RolloutDecision` and
an audit event, in one transaction; the request path reads the rollout afresh, so a change
takes effect on the very next request.

Manual controls (`pause`, `resume`, `promote`, `rollback`, `set_targeting`, `retry`) check the
caller's `Authority`; automatic ones (`advance`, `extend`, `hold`, automatic `rollback`/`pause`)
are the evaluator's and act as the system.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from audit import services as audit
from core.errors import ApiError, Conflict, NotFound
from rollout.models import (
    STOCK_FAMILY,
    ModelVersion,
    Rollout,
    RolloutDecision,
    voice_family,
)
from rollout.services.authority import Authority

Action = RolloutDecision.Action


class InvalidRollout(ApiError):
    default_code = "invalid_rollout"


class RolloutConflict(Conflict):
    default_code = "rollout_conflict"


def stable_of(family: str) -> ModelVersion | None:
    """The version a family's traffic gets outside any rollout: the stock voices' model, or
    the custom voice's active version."""
    from voices.models import Voice

    voices = Voice.dangerously_unscoped.select_related("model_version")
    if family == STOCK_FAMILY:
        voice = voices.filter(tenant__isnull=True).order_by("slug").first()
    else:
        voice = voices.filter(pk=family.removeprefix("voice:")).first()
    return voice.model_version if voice is not None else None


def live_rollout(family: str) -> Rollout | None:
    return (
        Rollout.dangerously_unscoped.select_related("candidate", "stable")
        .filter(family=family, state__in=Rollout.LIVE)
        .first()
    )


def _steps(steps) -> list[float]:
    try:
        values = [float(s) for s in steps]
    except (TypeError, ValueError):
        raise InvalidRollout("steps must be a list of percentages.", code="invalid_steps") from None
    if (
        not values
        or any(not 0 < v <= 100 for v in values)
        or values != sorted(set(values))
        or values[-1] != 100.0
    ):
        raise InvalidRollout(
            "steps must rise strictly, lie in (0, 100] and end at 100.", code="invalid_steps"
        )
    return values


def start(
    authority: Authority,
    candidate: ModelVersion,
    *,
    steps=None,
    retry_of: Rollout | None = None,
    reason: str = "",
    **settings,
) -> Rollout:
    """Start ramping ``candidate`` against its family's stable version at the first step.

    ``settings`` are `Rollout` fields: on_fail, min_step_duration_s, min_requests,
    min_quality_samples, max_extensions, quality_sample_rate, tenant_min_requests, alpha,
    include_all_tenants, included_tenants, excluded_tenants.
    """
    authority.require_manage(candidate.tenant_id)
    if candidate.status != ModelVersion.Status.VALIDATED:
        raise RolloutConflict(
            f"{candidate.id} is {candidate.status}; only a validated version can be rolled out.",
            code="version_not_validated",
        )
    if candidate.marked_bad and retry_of is None:
        raise RolloutConflict(
            f"{candidate.id} was rolled back ({candidate.bad_reason}). Register a new version, "
            "or retry the rolled-back rollout.",
            code="version_marked_bad",
        )
    stable = stable_of(candidate.family)
    if stable is None:
        raise RolloutConflict(
            f"The family {candidate.family} has no stable version to compare against; "
            "activate the version instead.",
            code="no_stable_version",
        )
    if stable.pk == candidate.pk:
        raise RolloutConflict(f"{candidate.id} is already stable.", code="already_stable")
    unknown = set(settings) - _SETTINGS
    if unknown:
        raise InvalidRollout(f"Unknown rollout settings: {', '.join(sorted(unknown))}.")
    ramp = _steps(steps if steps is not None else [1, 5, 20, 50, 100])
    now = timezone.now()
    try:
        with transaction.atomic():
            rollout = Rollout.dangerously_unscoped.create(
                family=candidate.family,
                tenant_id=candidate.tenant_id,
                candidate=candidate,
                stable=stable,
                steps=ramp,
                step_index=0,
                percent=ramp[0],
                step_started_at=now,
                retry_of=retry_of,
                created_by=authority.label,
                **settings,
            )
            _decide(rollout, authority, Action.START, 0.0, reason=reason)
    except IntegrityError:
        raise RolloutConflict(
            f"A rollout of {candidate.family} is already running; end it first.",
            code="rollout_in_progress",
        ) from None
    return rollout


_SETTINGS = {
    "on_fail",
    "min_step_duration_s",
    "min_requests",
    "min_quality_samples",
    "max_extensions",
    "quality_sample_rate",
    "tenant_min_requests",
    "alpha",
    "include_all_tenants",
    "included_tenants",
    "excluded_tenants",
}


def get_rollout(authority: Authority, rollout_id) -> Rollout:
    try:
        rollout = Rollout.dangerously_unscoped.select_related("candidate", "stable").get(
            pk=rollout_id
        )
    except (Rollout.DoesNotExist, ValidationError, ValueError, TypeError):
        raise NotFound() from None  # a malformed id is just another unknown one
    authority.require_read(rollout.tenant_id)
    return rollout


def list_rollouts(authority: Authority):
    """Operators: every rollout. A tenant: its own voices' rollouts and the platform's."""
    rollouts = Rollout.dangerously_unscoped.select_related("candidate", "stable")
    if authority.is_operator:
        return rollouts.order_by("-created_at")
    authority.require_read(authority.tenant.pk)
    return (
        Rollout.objects.visible_to(authority.tenant)
        .select_related("candidate", "stable")
        .order_by("-created_at")
    )


# A rolled-back rollout asks for attention this long after it ended; paused and holding ones
# for as long as they stay so.
ATTENTION_WINDOW = timedelta(days=7)


def needing_attention(authority: Authority, *, now=None):
    """The visible rollouts someone should look at: paused, holding (running but not advancing:
    `hold_reason`) or rolled back lately, each annotated with its latest decision's action and
    reason (why it stopped)."""
    since = (now or timezone.now()) - ATTENTION_WINDOW
    latest = RolloutDecision.objects.filter(rollout=OuterRef("pk")).order_by("-created_at", "-id")
    return (
        list_rollouts(authority)
        .filter(
            Q(state=Rollout.State.PAUSED)
            | Q(state=Rollout.State.RUNNING, hold_reason__gt="")
            | Q(state=Rollout.State.ROLLED_BACK, ended_at__gte=since)
        )
        .annotate(
            latest_action=Subquery(latest.values("action")[:1]),
            latest_reason=Subquery(latest.values("reason")[:1]),
        )
    )


def list_decisions(authority: Authority, rollout: Rollout):
    """The rollout's decisions, newest first (show each one's evidence through
    `visible_evidence`)."""
    authority.require_read(rollout.tenant_id)
    return RolloutDecision.objects.filter(rollout_id=rollout.pk).order_by("-created_at", "-id")


def visible_targeting(authority: Authority, rollout: Rollout) -> dict:
    """A rollout's targeting as the caller may see it: on a platform rollout a tenant learns
    whether it is itself targeted or excluded, not who else is."""
    included, excluded = rollout.included_tenants, rollout.excluded_tenants
    if not authority.is_operator and rollout.is_platform:
        mine = str(authority.tenant.pk)
        included = [t for t in included if t == mine]
        excluded = [t for t in excluded if t == mine]
    return {
        "include_all_tenants": rollout.include_all_tenants,
        "included_tenants": list(included),
        "excluded_tenants": list(excluded),
    }


# Evidence groups (the guardrails judge a large tenant alone and pool the rest).
POOLED = "pooled"


def tenant_group(tenant_id) -> str:
    return f"tenant:{tenant_id}"


def visible_evidence(authority: Authority, evidence: dict) -> dict:
    """A decision's evidence as the caller may see it. Operators see it all. A tenant looking at
    a platform rollout sees only its own group and the pooled group, without the pooled
    group's member list: other tenants' ids and verdicts are theirs.

    The guardrails write per-group evidence under ``groups``, keyed ``tenant:<id>`` for a
    tenant judged alone or ``"pooled"``.
    """
    if authority.is_operator or not isinstance(evidence, dict):
        return evidence
    mine = {tenant_group(authority.tenant.pk), POOLED}

    def scrub(group):
        if isinstance(group, dict):
            return {k: v for k, v in group.items() if k not in ("tenants", "tenant_ids")}
        return group

    groups = evidence.get("groups")
    if isinstance(groups, dict):
        groups = {k: scrub(v) for k, v in groups.items() if k in mine}
    else:
        return {k: v for k, v in evidence.items() if k not in ("tenants", "tenant_ids")}
    return {
        **{k: v for k, v in evidence.items() if k not in ("tenants", "tenant_ids")},
        "groups": groups,
    }


# Manual controls -------------------------------------------------------------------------------


def pause(authority: Authority, rollout: Rollout, reason: str = "") -> Rollout:
    authority.require_manage(rollout.tenant_id)
    return _move(
        rollout,
        authority,
        Action.PAUSE,
        [Rollout.State.RUNNING],
        reason=reason,
        state=Rollout.State.PAUSED,
    )


def resume(authority: Authority, rollout: Rollout, reason: str = "") -> Rollout:
    """Resume a paused rollout; its current step starts over (a fresh window)."""
    authority.require_manage(rollout.tenant_id)
    return _move(
        rollout,
        authority,
        Action.RESUME,
        [Rollout.State.PAUSED],
        reason=reason,
        state=Rollout.State.RUNNING,
        step_started_at=timezone.now(),
        extensions=0,
        hold_reason="",
    )


def promote(authority: Authority, rollout: Rollout, reason: str = "", *, complete=False):
    """Skip to the next step now (or, with ``complete``, make the candidate stable)."""
    authority.require_manage(rollout.tenant_id)
    if complete or rollout.step_index + 1 >= len(rollout.steps):
        return _complete(rollout, authority, Action.PROMOTE, reason=reason)
    return _next_step(rollout, authority, Action.PROMOTE, reason=reason)


def rollback(
    authority: Authority,
    rollout: Rollout,
    reason: str = "",
    *,
    outcome: str = "",
    evidence: dict | None = None,
    automatic: bool = False,
) -> Rollout:
    """End the rollout as rolled back: everybody is back on stable from the next request, and
    the candidate is marked bad so it cannot simply be rolled out again."""
    if not automatic:
        authority.require_manage(rollout.tenant_id)
    with transaction.atomic():
        rollout = _move(
            rollout,
            authority,
            Action.ROLLBACK,
            Rollout.LIVE,
            reason=reason,
            outcome=outcome,
            evidence=evidence,
            automatic=automatic,
            state=Rollout.State.ROLLED_BACK,
            percent=0.0,
            ended_at=timezone.now(),
            hold_reason="",
        )
        ModelVersion.dangerously_unscoped.filter(pk=rollout.candidate_id).update(
            marked_bad=True, bad_reason=(reason or "rolled back")[:300]
        )
    return rollout


def retry(authority: Authority, rollout: Rollout, reason: str) -> Rollout:
    """An audited second attempt of a rolled-back candidate, from the first step."""
    authority.require_manage(rollout.tenant_id)
    if rollout.state != Rollout.State.ROLLED_BACK:
        raise RolloutConflict("Only a rolled-back rollout can be retried.", code="not_rolled_back")
    if len((reason or "").strip()) < 10:
        raise InvalidRollout(
            "A retry needs a written reason (10 characters or more).", code="reason_required"
        )
    settings = {name: getattr(rollout, name) for name in _SETTINGS}
    with transaction.atomic():
        candidate = ModelVersion.dangerously_unscoped.select_for_update().get(
            pk=rollout.candidate_id
        )
        fresh = start(
            authority,
            candidate,
            steps=rollout.steps,
            retry_of=rollout,
            reason=f"retry: {reason}",
            **settings,
        )
        ModelVersion.dangerously_unscoped.filter(pk=candidate.pk).update(
            marked_bad=False, bad_reason=""
        )
    return fresh


def set_targeting(
    authority: Authority,
    rollout: Rollout,
    *,
    include_all_tenants: bool | None = None,
    included_tenants: list[str] | None = None,
    excluded_tenants: list[str] | None = None,
    reason: str = "",
) -> Rollout:
    authority.require_manage(rollout.tenant_id)
    changes = {}
    if include_all_tenants is not None:
        changes["include_all_tenants"] = bool(include_all_tenants)
    if included_tenants is not None:
        changes["included_tenants"] = _tenant_ids(
            authority, rollout, included_tenants, "included_tenants"
        )
    if excluded_tenants is not None:
        changes["excluded_tenants"] = _tenant_ids(
            authority, rollout, excluded_tenants, "excluded_tenants"
        )
    return _move(rollout, authority, Action.TARGET, Rollout.LIVE, reason=reason, **changes)


def _tenant_ids(authority: Authority, rollout: Rollout, ids, field: str) -> list[str]:
    """Existing tenants only (a typo must not silently target nobody); a tenant's own voice
    is heard by that tenant alone, so its rollout can only name that tenant."""
    from tenancy.models import Tenant

    if isinstance(ids, str) or not all(isinstance(t, str) for t in ids):
        raise InvalidRollout(
            "Tenant lists must be lists of tenant ids.",
            code="invalid_targeting",
            details={"field": field},
        )
    wanted = sorted(set(ids))
    try:
        known = {
            str(pk) for pk in Tenant.objects.filter(pk__in=wanted).values_list("pk", flat=True)
        }
    except ValidationError:
        known = set()
    allowed = known if rollout.is_platform else known & {str(rollout.tenant_id)}
    unknown = [t for t in wanted if t not in allowed]
    if unknown:
        raise InvalidRollout(
            f"Unknown tenant ids: {', '.join(unknown)}.",
            code="invalid_targeting",
            details={"field": field},
        )
    return wanted


# Automatic decisions (the evaluator) ---------------------------------------------------------


def advance(rollout: Rollout, *, outcome: str, evidence: dict, reason: str = "") -> Rollout:
    """The step passed: next step, or complete after the last. A step at 100 % leaves no
    stable traffic to compare against, so passing the step before it completes the rollout
    (an operator can still `promote` into such a step)."""
    authority = Authority.system()
    index = rollout.step_index + 1
    if index >= len(rollout.steps) or float(rollout.steps[index]) >= 100:
        return _complete(
            rollout,
            authority,
            Action.COMPLETE,
            reason=reason,
            outcome=outcome,
            evidence=evidence,
            automatic=True,
        )
    return _next_step(
        rollout,
        authority,
        Action.ADVANCE,
        reason=reason,
        outcome=outcome,
        evidence=evidence,
        automatic=True,
    )


def extend(rollout: Rollout, *, outcome: str, evidence: dict, reason: str = "") -> Rollout:
    """Not enough data yet: give the step another minimum duration."""
    return _move(
        rollout,
        Authority.system(),
        Action.EXTEND,
        [Rollout.State.RUNNING],
        reason=reason,
        outcome=outcome,
        evidence=evidence,
        automatic=True,
        extensions=rollout.extensions + 1,
    )


def hold(
    rollout: Rollout, *, outcome: str, evidence: dict, hold_reason: str, reason: str = ""
) -> Rollout:
    """Stay at this step (no data, or metrics unavailable) and say so; recorded once per
    change of reason, not at every evaluation."""
    return _move(
        rollout,
        Authority.system(),
        Action.HOLD,
        [Rollout.State.RUNNING],
        reason=reason,
        outcome=outcome,
        evidence=evidence,
        automatic=True,
        hold_reason=hold_reason,
    )


def fail(rollout: Rollout, *, outcome: str, evidence: dict, reason: str) -> Rollout:
    """A guardrail failed: roll back or pause, per the rollout's policy."""
    if rollout.on_fail == Rollout.OnFail.PAUSE:
        return _move(
            rollout,
            Authority.system(),
            Action.PAUSE,
            [Rollout.State.RUNNING],
            reason=reason,
            outcome=outcome,
            evidence=evidence,
            automatic=True,
            state=Rollout.State.PAUSED,
        )
    return rollback(
        Authority.system(), rollout, reason, outcome=outcome, evidence=evidence, automatic=True
    )


# Internals ----------------------------------------------------------------------------------


def _next_step(rollout: Rollout, authority: Authority, action: str, **decision) -> Rollout:
    index = rollout.step_index + 1
    return _move(
        rollout,
        authority,
        action,
        [Rollout.State.RUNNING, Rollout.State.PAUSED],
        step_index=index,
        percent=float(rollout.steps[index]),
        step_started_at=timezone.now(),
        extensions=0,
        hold_reason="",
        state=Rollout.State.RUNNING,
        **decision,
    )


def _complete(rollout: Rollout, authority: Authority, action: str, **decision) -> Rollout:
    """The candidate becomes the family's stable version."""
    from voices.models import Voice, VoiceVersion

    with transaction.atomic():
        rollout = _move(
            rollout,
            authority,
            action,
            Rollout.LIVE,
            state=Rollout.State.COMPLETED,
            percent=100.0,
            step_index=len(rollout.steps) - 1,
            ended_at=timezone.now(),
            hold_reason="",
            **decision,
        )
        candidate = rollout.candidate
        if rollout.family == STOCK_FAMILY:
            Voice.dangerously_unscoped.filter(tenant__isnull=True).update(model_version=candidate)
        else:
            voice_id = rollout.family.removeprefix("voice:")
            version = VoiceVersion.dangerously_unscoped.filter(
                voice_id=voice_id, model_version=candidate
            ).first()
            Voice.dangerously_unscoped.filter(pk=voice_id).update(
                model_version=candidate, active_version=version
            )
    return rollout


def _move(
    rollout: Rollout,
    authority: Authority,
    action: str,
    from_states,
    *,
    reason: str = "",
    outcome: str = "",
    evidence: dict | None = None,
    automatic: bool = False,
    **changes,
) -> Rollout:
    """One conditional transition plus its decision and audit event."""
    with transaction.atomic():
        locked = (
            Rollout.dangerously_unscoped.select_for_update()
            .filter(pk=rollout.pk, state__in=list(from_states))
            .first()
        )
        if locked is None:
            current = Rollout.dangerously_unscoped.get(pk=rollout.pk)
            raise RolloutConflict(
                f"The rollout is {current.state}; it cannot {action}.",
                code="rollout_not_live"
                if current.state not in Rollout.LIVE
                else "invalid_transition",
            )
        before = locked.percent
        for name, value in changes.items():
            setattr(locked, name, value)
        locked.save()
        locked = Rollout.dangerously_unscoped.select_related("candidate", "stable").get(
            pk=locked.pk
        )
        _decide(
            locked,
            authority,
            action,
            before,
            reason=reason,
            outcome=outcome,
            evidence=evidence,
            automatic=automatic,
        )
    return locked


def _decide(
    rollout: Rollout,
    authority: Authority,
    action: str,
    percent_before: float,
    *,
    reason: str = "",
    outcome: str = "",
    evidence: dict | None = None,
    automatic: bool = False,
) -> RolloutDecision:
    decision = RolloutDecision.objects.create(
        rollout=rollout,
        action=action,
        automatic=automatic,
        actor=authority.label,
        outcome=outcome,
        step_index=rollout.step_index,
        percent_before=percent_before,
        percent_after=rollout.percent,
        reason=(reason or "")[:500],
        evidence=evidence or {},
    )
    audit.record(
        f"rollout.{action}",
        tenant=rollout.tenant,
        context=authority.context,
        target=rollout,
        target_repr=f"{rollout.family} {rollout.candidate_id}"[:200],
        before={"percent": percent_before},
        after={
            "state": rollout.state,
            "percent": rollout.percent,
            "step": rollout.step_index,
            "outcome": outcome,
            "reason": decision.reason,
            "evidence": decision.evidence,
        },
    )
    return decision


def step_deadline(rollout: Rollout):
    """When the current step's minimum duration (with its extensions) is over."""
    started = rollout.step_started_at or rollout.created_at
    return started + timedelta(seconds=rollout.min_step_duration_s * (1 + rollout.extensions))


def family_of(voice) -> str:
    return STOCK_FAMILY if voice.tenant_id is None else voice_family(voice.pk)

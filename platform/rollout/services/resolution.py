"""Which model version serves one request (the rules are in `rollout.assignment`).

Read afresh from the database at every admission (two indexed queries; see
`bench/rollout_resolution.py`), so any rollout change applies to the very next request.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ApiError, Forbidden
from rollout import assignment
from rollout.models import ModelVersion, Rollout, TenantRolloutPolicy, VersionPin
from rollout.services.lifecycle import family_of

CANDIDATE, STABLE = "candidate", "stable"
# Reasons that mean the rollout's ramp decided the version: these requests are what the
# guardrails compare. Pins, explicit requests, exclusions and non-targeted tenants are not.
RAMP_REASONS = {
    assignment.Reason.CANARY,
    assignment.Reason.STABLE,
    assignment.Reason.EARLY_ACCESS,
    assignment.Reason.PAUSED,
}


END_USER_MAX_LENGTH = 128


class InvalidEndUser(ApiError):
    default_code = "invalid_end_user"


def clean_end_user(value: str | None) -> str:
    """The client's end-user id (X-End-User-Id, OpenAI `user`): at most 128 printable
    characters. Empty means none (the API key, then the tenant, is the stickiness key)."""
    value = value or ""
    if len(value) > END_USER_MAX_LENGTH or not value.isprintable():
        raise InvalidEndUser(
            f"The end-user id must be at most {END_USER_MAX_LENGTH} printable characters."
        )
    return value


class VersionNotUsable(Forbidden):
    default_code = "version_not_allowed"


class UnknownVersion(ApiError):
    status_code = 404
    default_code = "unknown_model_version"


@dataclass(frozen=True)
class Resolved:
    version: ModelVersion
    reason: str
    rollout: Rollout | None = None
    arm: str = ""  # candidate | stable, when the rollout's ramp decided


def policy_of(tenant) -> TenantRolloutPolicy | None:
    return TenantRolloutPolicy.objects.for_tenant(tenant).first()


def resolve(
    tenant,
    voice,
    *,
    api_key_id: str | None = None,
    end_user: str | None = None,
    requested: str | None = None,
) -> Resolved:
    family = family_of(voice)
    stable = voice.model_version
    policy = policy_of(tenant)
    pin = (
        VersionPin.objects.for_tenant(tenant)
        .select_related("version")
        .filter(family=family)
        .first()
    )
    rollout = (
        Rollout.dangerously_unscoped.select_related("candidate")
        .filter(family=family, state__in=Rollout.LIVE)
        .first()
    )
    usable = {}
    if requested:
        usable = {
            v.pk: v
            for v in ModelVersion.objects.visible_to(tenant).filter(
                pk=requested, family=family, status=ModelVersion.Status.VALIDATED
            )
        }
    tenant_id = str(tenant.pk)
    policy_view = assignment.TenantPolicy(
        tenant_id=tenant_id,
        pinned_version_id=pin.version_id if pin is not None else None,
        allow_explicit_versions=bool(policy and policy.allow_explicit_versions),
        usable_version_ids=frozenset(usable),
    )
    candidate_rollout = None
    if rollout is not None:
        early = (
            frozenset({tenant_id})
            if policy is not None and policy.early_access and rollout.is_platform
            else frozenset()
        )
        candidate_rollout = assignment.CandidateRollout(
            candidate_version_id=rollout.candidate_id,
            percent=rollout.percent,
            salt=rollout.salt,
            included_tenants=(
                assignment.ALL_TENANTS
                if rollout.include_all_tenants
                else frozenset(rollout.included_tenants)
            ),
            excluded_tenants=frozenset(rollout.excluded_tenants),
            early_access_tenants=early,
            state=(
                assignment.RolloutState.PAUSED
                if rollout.state == Rollout.State.PAUSED
                else assignment.RolloutState.ACTIVE
            ),
        )
    try:
        chosen = assignment.resolve(
            stable_version_id=stable.pk,
            tenant=policy_view,
            stickiness_key=assignment.stickiness_key(
                end_user=end_user, api_key_id=api_key_id, tenant_id=tenant_id
            ),
            rollout=candidate_rollout,
            requested_version_id=requested or None,
        )
    except assignment.VersionNotAllowed as exc:
        if exc.code == "explicit_versions_disabled":
            raise VersionNotUsable(
                "This tenant does not allow explicit model versions; ask an admin to enable "
                "them in the rollout policy.",
                code=exc.code,
            ) from None
        raise UnknownVersion(
            f"Model version {requested!r} is not a validated version of this voice.",
        ) from None

    versions = {stable.pk: stable, **usable}
    if pin is not None:
        versions[pin.version_id] = pin.version
    if rollout is not None:
        versions[rollout.candidate_id] = rollout.candidate
    if chosen.reason in RAMP_REASONS and rollout is not None:
        arm = CANDIDATE if chosen.version_id == rollout.candidate_id else STABLE
        return Resolved(versions[chosen.version_id], str(chosen.reason), rollout, arm)
    return Resolved(versions[chosen.version_id], str(chosen.reason))

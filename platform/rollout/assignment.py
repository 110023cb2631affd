"""Which model version serves a request: sticky percentage buckets and a precedence resolver.

Pure Python, no Django and no models, so the rules can be tested alone. The service layer loads
the tenant, the rollout and the request into the plain dataclasses below and calls `resolve`.

Bucketing (PostHog's scheme, see `bucket`)
------------------------------------------
An id's bucket is ``int(sha1(f"{salt}.{key}").hexdigest()[:15], 16) / 0xFFFFFFFFFFFFFFF``, a
value in [0, 1). The id is in a rollout at ``percent`` when ``bucket < percent / 100``, so 0 %
holds nobody, 100 % holds everybody, and raising the percentage only ever adds ids: an id that
was in at 5 % is still in at 20 %. Each rollout has its own salt, so the same ids land in
unrelated buckets for different rollouts (no tenant is always the first guinea pig).

Stickiness (see `stickiness_key`)
---------------------------------
The key is the end user (namespaced by tenant) if the request names one, else the API key, else
the tenant. One end user therefore hears one version across calls and keys.

Precedence (see `resolve`), first match wins
--------------------------------------------
1. ``requested``    an explicitly requested version. It must be allowed: the tenant allows
                    explicit versions and the version is one the tenant may use; otherwise
                    `VersionNotAllowed` is raised (never silently served something else).
2. ``pinned``       the tenant's pin. Pins survive pauses and rollbacks.
3. (no rollout)     ``stable``.
4. ``excluded``     the tenant is in the rollout's exclusion list: stable.
5. rollout state    ``rolled_back``: stable for everybody left. ``paused``: the assignment is
                    frozen at the held percentage: each caller keeps exactly the version that
                    steps 6-8 give it (nobody flips, and since the percentage is held nobody is
                    added), reported with reason ``paused`` so the hold is visible.
6. ``early_access`` an early-access (opt-in) tenant gets the candidate as if at 100 %, even if
                    it is not in the targeted tenants.
7. ``not_targeted`` the rollout targets a tenant list that does not name this tenant: stable.
8. ``canary`` / ``stable``  the sticky percentage: candidate when `in_rollout`, else stable.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

__all__ = [
    "ALL_TENANTS",
    "Assignment",
    "CandidateRollout",
    "Reason",
    "RolloutState",
    "TenantPolicy",
    "VersionNotAllowed",
    "bucket",
    "in_rollout",
    "resolve",
    "stickiness_key",
]

# PostHog's divisor: the largest 15-hex-digit number.
_LONG_SCALE = 0xFFFFFFFFFFFFFFF
# Bucket values are clamped below this, so that `bucket < 1.0` always holds (see `bucket`).
_BELOW_ONE = math.nextafter(1.0, 0.0)

ALL_TENANTS: Literal["all"] = "all"


class Reason(StrEnum):
    """Why a request got its version. Stable codes: logged, counted and shown to operators."""

    REQUESTED = "requested"
    PINNED = "pinned"
    EXCLUDED = "excluded"
    ROLLED_BACK = "rolled_back"
    PAUSED = "paused"
    EARLY_ACCESS = "early_access"
    NOT_TARGETED = "not_targeted"
    CANARY = "canary"
    STABLE = "stable"


class RolloutState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ROLLED_BACK = "rolled_back"


class VersionNotAllowed(Exception):
    """An explicitly requested version the tenant may not use.

    ``code`` is ``explicit_versions_disabled`` (the tenant does not allow explicit versions) or
    ``version_not_allowed`` (the version is not one the tenant may use).
    """

    def __init__(self, version_id: str, code: str) -> None:
        super().__init__(f"{code}: {version_id}")
        self.version_id = version_id
        self.code = code


def bucket(stickiness_key: str, salt: str) -> float:
    """The id's position in [0, 1) for a rollout salted with ``salt``.

    PostHog's scheme: the first 15 hex digits (60 bits) of ``sha1(f"{salt}.{key}")`` as an
    integer, divided by ``0xFFFFFFFFFFFFFFF``. SHA-1 is used for its spread, not for security.
    The quotient is 1.0 only for the all-``f`` prefix (and float rounding of a few dozen values
    just below it, odds about 2**-54); those are clamped to the largest float below 1.0 so the
    range really is [0, 1) and 100 % really is everybody.
    """
    digest = hashlib.sha1(f"{salt}.{stickiness_key}".encode(), usedforsecurity=False).hexdigest()
    return min(int(digest[:15], 16) / _LONG_SCALE, _BELOW_ONE)


def in_rollout(stickiness_key: str, salt: str, percent: float) -> bool:
    """Whether the id is inside a rollout at ``percent`` (0-100): ``bucket < percent / 100``."""
    _check_percent(percent)
    return bucket(stickiness_key, salt) < percent / 100


def stickiness_key(*, end_user: str | None, api_key_id: str | None, tenant_id: str) -> str:
    """The identity a rollout sticks to: end user > API key > tenant.

    - an end user id is the caller's own user namespace, so it is namespaced by tenant: two
      tenants' ``"user-1"`` are different people and get different buckets;
    - else the API key id (``key:<id>``), so one integration hears one version;
    - else the tenant (``tenant:<id>``).

    Empty strings count as absent. Each part is length-prefixed so no choice of ids (say, ids
    containing ``:``) can make two different identities produce the same key.
    """
    if not tenant_id:
        raise ValueError("tenant_id is required")
    if end_user:
        return f"user:{len(tenant_id)}:{tenant_id}:{end_user}"
    if api_key_id:
        return f"key:{api_key_id}"
    return f"tenant:{tenant_id}"


@dataclass(frozen=True)
class CandidateRollout:
    """A candidate version being rolled out progressively.

    ``included_tenants`` is ``"all"`` or the tenant ids targeted; ``excluded_tenants`` never get
    the candidate; ``early_access_tenants`` opted in and get it at 100 %.
    """

    candidate_version_id: str
    percent: float
    salt: str
    included_tenants: frozenset[str] | Literal["all"] = ALL_TENANTS
    excluded_tenants: frozenset[str] = field(default_factory=frozenset)
    early_access_tenants: frozenset[str] = field(default_factory=frozenset)
    state: RolloutState = RolloutState.ACTIVE

    def __post_init__(self) -> None:
        _check_percent(self.percent)
        if not self.salt:
            raise ValueError("a rollout needs a salt (e.g. its id)")
        if self.included_tenants != ALL_TENANTS:
            object.__setattr__(self, "included_tenants", _tenant_set(self.included_tenants))
        object.__setattr__(self, "excluded_tenants", _tenant_set(self.excluded_tenants))
        object.__setattr__(self, "early_access_tenants", _tenant_set(self.early_access_tenants))
        object.__setattr__(self, "state", RolloutState(self.state))

    def targets(self, tenant_id: str) -> bool:
        return self.included_tenants == ALL_TENANTS or tenant_id in self.included_tenants


@dataclass(frozen=True)
class TenantPolicy:
    """What the tenant has chosen: a pin, and whether (and which) explicit versions it may ask
    for. ``usable_version_ids`` is the complete list; nothing is usable implicitly."""

    tenant_id: str
    pinned_version_id: str | None = None
    allow_explicit_versions: bool = False
    usable_version_ids: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.tenant_id:
            raise ValueError("tenant_id is required")
        object.__setattr__(self, "usable_version_ids", _tenant_set(self.usable_version_ids))


@dataclass(frozen=True)
class Assignment:
    version_id: str
    reason: Reason

    def to_dict(self) -> dict[str, str]:
        return {"version_id": self.version_id, "reason": str(self.reason)}


def resolve(
    *,
    stable_version_id: str,
    tenant: TenantPolicy,
    stickiness_key: str,
    rollout: CandidateRollout | None = None,
    requested_version_id: str | None = None,
) -> Assignment:
    """The version for one request, by the precedence in the module docstring."""
    if requested_version_id:
        if not tenant.allow_explicit_versions:
            raise VersionNotAllowed(requested_version_id, "explicit_versions_disabled")
        if requested_version_id not in tenant.usable_version_ids:
            raise VersionNotAllowed(requested_version_id, "version_not_allowed")
        return Assignment(requested_version_id, Reason.REQUESTED)
    if tenant.pinned_version_id:
        return Assignment(tenant.pinned_version_id, Reason.PINNED)
    if rollout is None:
        return Assignment(stable_version_id, Reason.STABLE)
    if tenant.tenant_id in rollout.excluded_tenants:
        return Assignment(stable_version_id, Reason.EXCLUDED)
    if rollout.state == RolloutState.ROLLED_BACK:
        return Assignment(stable_version_id, Reason.ROLLED_BACK)

    assignment = _rollout_assignment(stable_version_id, tenant.tenant_id, stickiness_key, rollout)
    if rollout.state == RolloutState.PAUSED:
        return Assignment(assignment.version_id, Reason.PAUSED)
    return assignment


def _rollout_assignment(
    stable_version_id: str, tenant_id: str, key: str, rollout: CandidateRollout
) -> Assignment:
    if tenant_id in rollout.early_access_tenants:
        return Assignment(rollout.candidate_version_id, Reason.EARLY_ACCESS)
    if not rollout.targets(tenant_id):
        return Assignment(stable_version_id, Reason.NOT_TARGETED)
    if in_rollout(key, rollout.salt, rollout.percent):
        return Assignment(rollout.candidate_version_id, Reason.CANARY)
    return Assignment(stable_version_id, Reason.STABLE)


def _check_percent(percent: float) -> None:
    if isinstance(percent, bool) or not (0 <= percent <= 100):  # also rejects NaN
        raise ValueError(f"percent must be within 0-100, got {percent!r}")


def _tenant_set(ids: Iterable[str]) -> frozenset[str]:
    if isinstance(ids, str):  # a lone id would otherwise become a set of its characters
        raise TypeError("expected a collection of ids, not a string")
    return frozenset(ids)

"""Sticky percentage buckets and the version precedence resolver (pure, no database)."""

from __future__ import annotations

import hashlib

import pytest

from rollout.assignment import (
    ALL_TENANTS,
    Assignment,
    CandidateRollout,
    Reason,
    RolloutState,
    TenantPolicy,
    VersionNotAllowed,
    bucket,
    in_rollout,
    resolve,
    stickiness_key,
)

IDS = [f"user-{i}" for i in range(20_000)]
STABLE, CANDIDATE, PIN, OWN = "piper:stable@1", "piper:candidate@2", "piper:pinned@0", "ft:own@9"


def share(percent: float, salt: str = "rollout-1") -> float:
    return sum(in_rollout(i, salt, percent) for i in IDS) / len(IDS)


# --- bucketing ---------------------------------------------------------------------------------


def test_bucket_is_posthogs_scheme():
    digest = hashlib.sha1(b"salt-a.user-42").hexdigest()
    assert bucket("user-42", "salt-a") == int(digest[:15], 16) / 0xFFFFFFFFFFFFFFF


def test_buckets_lie_in_unit_interval():
    values = [bucket(i, "s") for i in IDS]
    assert all(0 <= v < 1 for v in values)
    assert min(values) < 0.001 and max(values) > 0.999


@pytest.mark.parametrize(("percent", "tolerance"), [(1, 0.003), (10, 0.01), (50, 0.015)])
def test_distribution_within_tolerance(percent, tolerance):
    assert abs(share(percent) - percent / 100) <= tolerance


def test_zero_is_nobody_and_hundred_is_everybody():
    assert share(0) == 0
    assert share(100) == 1


def test_sticky_across_calls():
    first = [in_rollout(i, "rollout-1", 10) for i in IDS[:2000]]
    assert first == [in_rollout(i, "rollout-1", 10) for i in IDS[:2000]]


def test_raising_the_percentage_only_adds_ids():
    previous: set[str] = set()
    for percent in (0, 1, 5, 12.5, 20, 50, 99, 100):
        members = {i for i in IDS if in_rollout(i, "rollout-1", percent)}
        assert previous <= members, percent
        previous = members
    at_5 = {i for i in IDS if in_rollout(i, "rollout-1", 5)}
    at_20 = {i for i in IDS if in_rollout(i, "rollout-1", 20)}
    assert at_5 < at_20


def test_different_salts_give_independent_assignments():
    a = {i for i in IDS if in_rollout(i, "rollout-a", 50)}
    b = {i for i in IDS if in_rollout(i, "rollout-b", 50)}
    # Independent halves overlap on a quarter of the ids.
    assert abs(len(a & b) / len(IDS) - 0.25) < 0.015
    small_a = {i for i in IDS if in_rollout(i, "rollout-a", 10)}
    small_b = {i for i in IDS if in_rollout(i, "rollout-b", 10)}
    assert abs(len(small_a & small_b) / len(IDS) - 0.01) < 0.004


@pytest.mark.parametrize("percent", [-1, 100.5, float("nan"), True])
def test_percent_out_of_range_is_rejected(percent):
    with pytest.raises(ValueError):
        in_rollout("u", "s", percent)
    with pytest.raises(ValueError):
        CandidateRollout(CANDIDATE, percent, "s")


# --- stickiness key ----------------------------------------------------------------------------


def test_stickiness_prefers_end_user_then_api_key_then_tenant():
    user = stickiness_key(end_user="user-1", api_key_id="k1", tenant_id="t1")
    key = stickiness_key(end_user=None, api_key_id="k1", tenant_id="t1")
    tenant = stickiness_key(end_user=None, api_key_id=None, tenant_id="t1")
    assert len({user, key, tenant}) == 3
    assert user == stickiness_key(end_user="user-1", api_key_id="k2", tenant_id="t1")
    assert key == stickiness_key(end_user=None, api_key_id="k1", tenant_id="t2")
    assert stickiness_key(end_user="", api_key_id="", tenant_id="t1") == tenant


def test_end_users_are_namespaced_by_tenant():
    assert stickiness_key(end_user="user-1", api_key_id=None, tenant_id="t1") != stickiness_key(
        end_user="user-1", api_key_id=None, tenant_id="t2"
    )
    # Separators inside ids cannot forge another identity.
    assert stickiness_key(end_user="b:c", api_key_id=None, tenant_id="a") != stickiness_key(
        end_user="c", api_key_id=None, tenant_id="a:b"
    )


def test_stickiness_needs_a_tenant():
    with pytest.raises(ValueError):
        stickiness_key(end_user="u", api_key_id=None, tenant_id="")


# --- resolver ----------------------------------------------------------------------------------


def key_in(percent: float, salt: str = "r1", inside: bool = True) -> str:
    """A stickiness key that is (or is not) inside a rollout at ``percent``."""
    return next(i for i in IDS if in_rollout(i, salt, percent) is inside)


IN, OUT = key_in(10), key_in(10, inside=False)


def rollout(**overrides) -> CandidateRollout:
    fields = {"candidate_version_id": CANDIDATE, "percent": 10, "salt": "r1"} | overrides
    return CandidateRollout(**fields)


def tenant(**overrides) -> TenantPolicy:
    return TenantPolicy(**({"tenant_id": "t1"} | overrides))


EXPLICIT = {"allow_explicit_versions": True, "usable_version_ids": frozenset({OWN, STABLE})}

# (case, tenant policy, rollout, requested version, stickiness key) -> expected assignment
# fmt: off
PRECEDENCE = [
    ("no rollout", tenant(), None, None, IN, STABLE, Reason.STABLE),
    ("inside the percentage", tenant(), rollout(), None, IN, CANDIDATE, Reason.CANARY),
    ("outside the percentage", tenant(), rollout(), None, OUT, STABLE, Reason.STABLE),
    ("at 0 %", tenant(), rollout(percent=0), None, IN, STABLE, Reason.STABLE),
    ("at 100 %", tenant(), rollout(percent=100), None, OUT, CANDIDATE, Reason.CANARY),
    ("requested", tenant(**EXPLICIT), rollout(), OWN, IN, OWN, Reason.REQUESTED),
    ("requested beats pin", tenant(pinned_version_id=PIN, **EXPLICIT), rollout(), OWN, IN, OWN,
     Reason.REQUESTED),
    ("requested beats rollback", tenant(**EXPLICIT), rollout(state="rolled_back"), OWN, IN, OWN,
     Reason.REQUESTED),
    ("pinned", tenant(pinned_version_id=PIN), rollout(), None, IN, PIN, Reason.PINNED),
    ("pinned, no rollout", tenant(pinned_version_id=PIN), None, None, IN, PIN, Reason.PINNED),
    ("pin beats exclusion", tenant(pinned_version_id=PIN),
     rollout(excluded_tenants={"t1"}), None, IN, PIN, Reason.PINNED),
    ("pin survives rollback", tenant(pinned_version_id=PIN), rollout(state="rolled_back"), None,
     IN, PIN, Reason.PINNED),
    ("pin survives pause", tenant(pinned_version_id=PIN), rollout(state="paused"), None, IN, PIN,
     Reason.PINNED),
    ("excluded", tenant(), rollout(excluded_tenants={"t1"}), None, IN, STABLE, Reason.EXCLUDED),
    ("excluded beats early access", tenant(),
     rollout(excluded_tenants={"t1"}, early_access_tenants={"t1"}), None, IN, STABLE,
     Reason.EXCLUDED),
    ("excluded beats rollback", tenant(), rollout(excluded_tenants={"t1"}, state="rolled_back"),
     None, IN, STABLE, Reason.EXCLUDED),
    ("rolled back", tenant(), rollout(state="rolled_back"), None, IN, STABLE, Reason.ROLLED_BACK),
    ("rollback beats early access", tenant(),
     rollout(state="rolled_back", early_access_tenants={"t1"}), None, OUT, STABLE,
     Reason.ROLLED_BACK),
    ("paused holds the canary", tenant(), rollout(state="paused"), None, IN, CANDIDATE,
     Reason.PAUSED),
    ("paused adds nobody", tenant(), rollout(state="paused"), None, OUT, STABLE, Reason.PAUSED),
    ("paused holds early access", tenant(), rollout(state="paused", early_access_tenants={"t1"}),
     None, OUT, CANDIDATE, Reason.PAUSED),
    ("paused keeps untargeted off", tenant(), rollout(state="paused", included_tenants={"t2"}),
     None, IN, STABLE, Reason.PAUSED),
    ("early access at 100 %", tenant(), rollout(early_access_tenants={"t1"}), None, OUT,
     CANDIDATE, Reason.EARLY_ACCESS),
    ("early access at 0 %", tenant(), rollout(percent=0, early_access_tenants={"t1"}), None, OUT,
     CANDIDATE, Reason.EARLY_ACCESS),
    ("early access beats targeting", tenant(),
     rollout(included_tenants={"t2"}, early_access_tenants={"t1"}), None, OUT, CANDIDATE,
     Reason.EARLY_ACCESS),
    ("someone else's early access", tenant(), rollout(early_access_tenants={"t2"}), None, OUT,
     STABLE, Reason.STABLE),
    ("not targeted", tenant(), rollout(included_tenants={"t2"}), None, IN, STABLE,
     Reason.NOT_TARGETED),
    ("not targeted at 100 %", tenant(), rollout(percent=100, included_tenants=frozenset()), None,
     IN, STABLE, Reason.NOT_TARGETED),
    ("targeted, inside", tenant(), rollout(included_tenants={"t1", "t2"}), None, IN, CANDIDATE,
     Reason.CANARY),
    ("targeted, outside", tenant(), rollout(included_tenants={"t1"}), None, OUT, STABLE,
     Reason.STABLE),
    ("all tenants targeted", tenant(), rollout(included_tenants=ALL_TENANTS), None, IN,
     CANDIDATE, Reason.CANARY),
    ("someone else excluded", tenant(), rollout(excluded_tenants={"t2"}), None, IN, CANDIDATE,
     Reason.CANARY),
]
# fmt: on


@pytest.mark.parametrize(
    ("policy", "candidate", "requested", "key", "version", "reason"),
    [case[1:] for case in PRECEDENCE],
    ids=[case[0] for case in PRECEDENCE],
)
def test_precedence(policy, candidate, requested, key, version, reason):
    got = resolve(
        stable_version_id=STABLE,
        tenant=policy,
        stickiness_key=key,
        rollout=candidate,
        requested_version_id=requested,
    )
    assert got == Assignment(version, reason)
    assert got.to_dict() == {"version_id": version, "reason": str(reason)}


@pytest.mark.parametrize(
    ("policy", "code"),
    [
        (tenant(), "explicit_versions_disabled"),
        (tenant(usable_version_ids={OWN}), "explicit_versions_disabled"),
        (tenant(allow_explicit_versions=True), "version_not_allowed"),
        (tenant(allow_explicit_versions=True, usable_version_ids={STABLE}), "version_not_allowed"),
        (tenant(allow_explicit_versions=True, pinned_version_id=PIN), "version_not_allowed"),
    ],
)
def test_disallowed_request_is_refused_not_silently_replaced(policy, code):
    with pytest.raises(VersionNotAllowed) as raised:
        resolve(
            stable_version_id=STABLE,
            tenant=policy,
            stickiness_key=IN,
            rollout=rollout(),
            requested_version_id=OWN,
        )
    assert raised.value.code == code
    assert raised.value.version_id == OWN


def test_resolution_is_sticky_per_end_user_and_tracks_the_percentage():
    policy, seen = tenant(), {}
    users = [stickiness_key(end_user=f"u{i}", api_key_id="k", tenant_id="t1") for i in range(4000)]
    for percent in (5, 20):
        r = rollout(percent=percent)
        got = {
            u: resolve(stable_version_id=STABLE, tenant=policy, stickiness_key=u, rollout=r)
            for u in users
        }
        assert got == {
            u: resolve(stable_version_id=STABLE, tenant=policy, stickiness_key=u, rollout=r)
            for u in users
        }
        seen[percent] = {u for u, a in got.items() if a.version_id == CANDIDATE}
        assert abs(len(seen[percent]) / len(users) - percent / 100) < 0.025
    assert seen[5] <= seen[20]


def test_a_string_is_not_a_tenant_list():
    with pytest.raises(TypeError):
        rollout(excluded_tenants="t1")
    with pytest.raises(TypeError):
        rollout(included_tenants="t1")


def test_states_are_validated():
    with pytest.raises(ValueError):
        rollout(state="promoted")
    assert rollout(state="paused").state is RolloutState.PAUSED

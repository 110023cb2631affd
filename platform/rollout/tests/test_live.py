"""The live set and one hot-swap pass (`rollout.engines.sync`) on a real engine cache."""

from __future__ import annotations

import pytest

from rollout.engines import sync
from rollout.models import VersionPin
from rollout.services import lifecycle, registry
from rollout.services.authority import Authority
from rollout.services.live import live_set
from speech.engines.cache import EngineCache
from voices.models import Voice

pytestmark = pytest.mark.django_db


def test_sync_follows_the_live_set(tenant):
    stable = Voice.dangerously_unscoped.get(slug="stock-joe", tenant=None).model_version
    candidate = registry.register_alias_of_stock("joe-medium-live-1")
    pinned = registry.register_alias_of_stock("joe-medium-live-pin")
    stale = registry.register_alias_of_stock("joe-medium-live-old")
    VersionPin.objects.for_tenant(tenant).create(family="stock", version=pinned)
    operator = Authority.operator("tests")
    rollout = lifecycle.start(operator, candidate, steps=[50, 100])

    live = live_set()
    assert [v.pk for v in live.preload] == [stable.pk, candidate.pk]  # stable first
    assert live.keep == {stable.pk, candidate.pk, pinned.pk}

    cache = EngineCache(max_engines=4)
    for version in (pinned, stale):  # loaded on demand earlier
        cache.get(registry.spec_for(version))
    assert sync(cache) == {"loaded": [stable.pk, candidate.pk], "dropped": [stale.pk]}
    assert set(cache.loaded()) == {stable.pk, candidate.pk, pinned.pk}

    lifecycle.rollback(operator, rollout, "tests")
    assert sync(cache) == {"loaded": [], "dropped": [candidate.pk]}
    assert set(cache.loaded()) == {stable.pk, pinned.pk}

"""The versions workers keep loaded: the live set, read from the database.

- **Preloaded** (loaded, warmed up and sanity-checked before they take traffic), in this order:
  the stable version of the stock voices, then the stable and the candidate of every running
  or paused rollout.
- **Kept** (never dropped while loaded): the preloaded ones, every pinned version, and the
  current version of every voice (a custom voice's version loads on its first request and
  stays while the voice uses it).

Everything else a worker holds (retired, rolled back, replaced, no longer referenced) is
dropped by the worker's sync (`rollout.engines.sync`). Two queries, both on indexed columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, IntegerField, Q, Value, When

from rollout.models import ModelVersion, Rollout, VersionPin


@dataclass(frozen=True)
class LiveSet:
    preload: tuple[ModelVersion, ...]
    keep: frozenset[str]


def live_set() -> LiveSet:
    from voices.models import Voice

    stock = Voice.dangerously_unscoped.filter(tenant__isnull=True).values("model_version_id")
    rollouts = Rollout.dangerously_unscoped.filter(state__in=Rollout.LIVE)
    stables = rollouts.values("stable_id")
    candidates = rollouts.values("candidate_id")
    preload = tuple(
        ModelVersion.dangerously_unscoped.filter(
            Q(pk__in=stock) | Q(pk__in=stables) | Q(pk__in=candidates)
        )
        .annotate(
            priority=Case(
                When(pk__in=stock, then=Value(0)),
                When(pk__in=stables, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        .order_by("priority", "pk")
    )
    referenced = (
        ModelVersion.dangerously_unscoped.filter(
            Q(pk__in=VersionPin.dangerously_unscoped.values("version_id"))
            | Q(
                pk__in=Voice.dangerously_unscoped.exclude(model_version=None).values(
                    "model_version_id"
                )
            )
        )
        .values_list("pk", flat=True)
        .distinct()
    )
    return LiveSet(preload, frozenset(v.pk for v in preload) | frozenset(referenced))

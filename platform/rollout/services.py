"""Model registry and per-tenant model resolution.

Today a voice is served by the model version it was built on; per-tenant flags, canaries and
ramps plug in at `resolve_model_version` without changing its callers.
"""

from __future__ import annotations

from functools import lru_cache

from rollout.models import ModelVersion
from speech.engines.base import ModelVersionSpec


@lru_cache(maxsize=1)
def stock_spec() -> ModelVersionSpec:
    from speech.engines.piper_engine import default_spec

    return default_spec()


def register(
    spec: ModelVersionSpec, artefact_key: str = "", status: str = ModelVersion.Status.VALIDATED
) -> ModelVersion:
    version, _ = ModelVersion.objects.get_or_create(
        id=spec.id,
        defaults={
            "engine": spec.engine,
            "version": spec.version,
            "artefact_checksum": spec.artefact_checksum,
            "artefact_key": artefact_key,
            "status": status,
        },
    )
    return version


def spec_for(version: ModelVersion) -> ModelVersionSpec:
    if version.id == stock_spec().id:
        return stock_spec()
    # A stored artefact is named by its storage key; the engine cache fetches it to a local path.
    return ModelVersionSpec(
        version.engine,
        version.version,
        version.artefact_checksum,
        artefact_key=version.artefact_key or None,
    )


def resolve_model_version(tenant, voice) -> ModelVersion:
    return voice.model_version

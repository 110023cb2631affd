"""The model registry: register versions, turn them into engine specs."""

from __future__ import annotations

from functools import lru_cache

from rollout.models import STOCK_FAMILY, ModelVersion
from speech.engines.base import ModelVersionSpec


@lru_cache(maxsize=1)
def stock_spec() -> ModelVersionSpec:
    from speech.engines.piper_engine import default_spec

    return default_spec()


def register(
    spec: ModelVersionSpec,
    artefact_key: str = "",
    status: str = ModelVersion.Status.VALIDATED,
    *,
    family: str = STOCK_FAMILY,
    tenant=None,
    semver: str | None = None,
    notes: str = "",
    registered_by: str = "system",
) -> ModelVersion:
    existing = ModelVersion.dangerously_unscoped.filter(pk=spec.id).first()
    if existing is not None:
        return existing
    version, _ = ModelVersion.dangerously_unscoped.get_or_create(
        id=spec.id,
        defaults={
            "family": family,
            "tenant": tenant,
            "engine": spec.engine,
            "version": spec.version,
            "semver": semver or next_semver(family),
            "artefact_checksum": spec.artefact_checksum,
            "artefact_key": artefact_key,
            "notes": notes,
            "registered_by": registered_by,
            "status": status,
        },
    )
    return version


def parse_semver(value: str) -> tuple[int, int, int] | None:
    parts = value.split("+", 1)[0].split("-", 1)[0].split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def next_semver(family: str) -> str:
    """The family's highest version with its minor number raised (1.0.0 for a new family)."""
    known = [
        parse_semver(v)
        for v in ModelVersion.dangerously_unscoped.filter(family=family).values_list(
            "semver", flat=True
        )
    ]
    known = [v for v in known if v is not None]
    if not known:
        return "1.0.0"
    major, minor, _ = max(known)
    return f"{major}.{minor + 1}.0"


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


def register_alias_of_stock(version: str, semver: str | None = None, **kwargs) -> ModelVersion:
    """The packaged stock artefact registered under another version string: a second real,
    validated stock-family version without a second model file (hot-swap tests, benchmarks,
    rehearsing a rollout). It loads, and is checked, exactly like the stock build."""
    from dataclasses import replace

    return register(
        replace(stock_spec(), version=version),
        semver=semver,
        notes=kwargs.pop("notes", "alias of the packaged stock voice"),
        **kwargs,
    )

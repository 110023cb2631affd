"""Helpers for the control-plane tests: a second validated version of a family without
training or quantising anything."""

from __future__ import annotations

import uuid

from rollout.models import ModelVersion, voice_family
from rollout.services import registry
from speech.engines.base import ModelVersionSpec


def stock_alias(label: str, status=ModelVersion.Status.VALIDATED) -> ModelVersion:
    """The packaged stock model registered again under another version name: a real, loadable
    stock-family version (the engine finds the packaged file and checks its checksum), so
    the request path and the worker run exactly as for a real candidate."""
    stock = registry.stock_spec()
    spec = ModelVersionSpec(stock.engine, f"{stock.version}+{label}", stock.artefact_checksum)
    return registry.register(spec, status=status, notes=f"alias of the stock build ({label})")


def custom_voice(tenant, *, versions=2):
    """A ready custom voice of ``tenant`` (rows only: never synthesized) with ``versions``
    validated model versions; the first is active. Returns (voice, [versions])."""
    from voices.models import Voice

    voice_id = uuid.uuid4()
    family = voice_family(voice_id)
    made = [
        ModelVersion.dangerously_unscoped.create(
            id=f"adapted:{voice_id.hex[:8]}-v{n}@{uuid.uuid4().hex[:12]}",
            family=family,
            engine="adapted",
            version=f"{voice_id.hex[:8]}-v{n}",
            semver=f"1.{n}.0",
            artefact_checksum=uuid.uuid4().hex,
            tenant=tenant,
            status=ModelVersion.Status.VALIDATED,
        )
        for n in range(versions)
    ]
    voice = Voice.dangerously_unscoped.create(
        id=voice_id,
        tenant=tenant,
        slug=f"brand-{voice_id.hex[:6]}",
        name="Brand voice",
        kind=Voice.Kind.CUSTOM,
        status=Voice.Status.READY,
        model_version=made[0],
    )
    return voice, made


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]

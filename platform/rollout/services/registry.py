"""The model registry: register versions, turn them into engine specs."""

from __future__ import annotations

import hashlib
import re
import uuid
from functools import lru_cache

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit import services as audit
from core.errors import ApiError, Conflict, NotFound
from core.storage import StorageError, get_storage, tenant_key
from rollout import signals
from rollout.models import STOCK_FAMILY, ModelVersion
from rollout.services.authority import Authority
from speech.engines.base import ModelVersionSpec
from tenancy.services import quotas


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
    validation: dict | None = None,
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
            "validation": validation or {},
            "validated_at": timezone.now() if validation else None,
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


# --------------------------------------------------------------------------- the API's registry

SEMVER = re.compile(r"\d+\.\d+\.\d+")
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
# The primary artefact's file name per engine: engines load it by path (Piper reads
# `<model>.onnx.json` beside `<model>.onnx`).
ARTEFACT_SUFFIX = {"piper": ".onnx", "piper-adapted": ".pt"}


class InvalidVersion(ApiError):
    default_code = "invalid_model_version"


class VersionConflict(Conflict):
    default_code = "version_exists"


def _owner_of_family(authority: Authority, family: str):
    """The tenant owning ``family`` (None for the stock family); 404 for a voice the caller
    cannot see, 400 for a family that is neither."""
    from voices.models import Voice

    if family == STOCK_FAMILY:
        return None
    voice_id = family.removeprefix("voice:")
    if voice_id == family:
        raise InvalidVersion('family must be "stock" or "voice:<voice id>".', code="invalid_family")
    try:
        voice_id = str(uuid.UUID(voice_id))
    except ValueError:
        raise NotFound("No such voice.") from None
    voice = Voice.dangerously_unscoped.filter(pk=voice_id, tenant__isnull=False).first()
    if voice is None:
        raise NotFound("No such voice.")
    authority.require_visible(voice.tenant_id)
    return voice.tenant


def register_version(
    authority: Authority,
    *,
    family: str,
    engine: str,
    version: str,
    semver: str | None = None,
    artefact: bytes | None = None,
    artefact_key: str = "",
    config: bytes | None = None,
    notes: str = "",
) -> tuple[ModelVersion, bool]:
    """Register one artefact as a version of ``family``; returns (version, created).

    The artefact (uploaded bytes, or an object already in storage) is stored under its SHA-256.
    Registering the same artefact under the same version string again returns the existing
    version, so a repeated `register_model` is harmless. Status starts `registered`: it may not
    serve until validated."""
    from speech.engines.cache import EngineLoadError, engine_class

    tenant = _owner_of_family(authority, family)
    authority.require_manage(tenant.pk if tenant is not None else None)
    try:
        companions = engine_class(engine).artefact_companions
    except EngineLoadError:
        raise InvalidVersion(f"Unknown engine {engine!r}.", code="unknown_engine") from None
    if not VERSION_NAME.fullmatch(version or ""):
        raise InvalidVersion(
            "version must be 1-80 letters, digits, '.', '_' or '-'.", code="invalid_version"
        )
    if semver is not None and not SEMVER.fullmatch(semver):
        raise InvalidVersion("semver must look like 1.2.3.", code="invalid_semver")
    if (artefact is None) == (not artefact_key):
        raise InvalidVersion("Give the artefact or its storage key (one of them).",
                             code="artefact_required")  # fmt: skip
    storage = get_storage()
    if artefact is None:
        if tenant is not None and not artefact_key.startswith(tenant_key(tenant.pk, "")):
            raise NotFound("No such artefact.")
        try:
            artefact = storage.get(artefact_key)
            if companions and config is None:
                config = storage.get(artefact_key + companions[0])
        except StorageError:
            raise NotFound("No such artefact.") from None
    if not artefact:
        raise InvalidVersion("The artefact is empty.", code="artefact_empty")
    if companions and not config:
        raise InvalidVersion(
            f"The {engine} engine needs the artefact's config ({companions[0]} companion).",
            code="config_required",
        )
    checksum = hashlib.sha256(artefact).hexdigest()
    spec = ModelVersionSpec(engine, version, checksum)
    existing = ModelVersion.dangerously_unscoped.filter(pk=spec.id).first()
    if existing is not None:
        if existing.family == family and existing.tenant_id == (tenant and tenant.pk):
            return existing, False
        raise VersionConflict(f"{spec.id} is already registered in another family.")
    semver = semver or next_semver(family)
    if ModelVersion.dangerously_unscoped.filter(family=family, semver=semver).exists():
        raise VersionConflict(f"{family} already has a version {semver}.")

    name = f"{version}{ARTEFACT_SUFFIX.get(engine, '')}"
    if tenant is None:
        key = f"models/{checksum}/{name}"
    else:
        key = tenant_key(tenant.pk, "models", checksum, name)
    if companions:
        storage.put(key + companions[0], config)
    storage.put(key, artefact)  # content-addressed: a retry writes the same bytes
    try:
        with transaction.atomic():
            if tenant is not None:
                quotas.take(tenant, quotas.STORAGE_BYTES, len(artefact))
            created = ModelVersion.dangerously_unscoped.create(
                id=spec.id,
                family=family,
                tenant=tenant,
                engine=engine,
                version=version,
                semver=semver,
                artefact_checksum=checksum,
                artefact_key=key,
                notes=notes,
                registered_by=authority.label,
                status=ModelVersion.Status.REGISTERED,
            )
            _audit(authority, "model_version.register", created, after=describe(created))
    except IntegrityError:
        raise VersionConflict(f"{spec.id} or {family} {semver} is already registered.") from None
    return created, True


def describe(version: ModelVersion) -> dict:
    return {
        "family": version.family,
        "engine": version.engine,
        "version": version.version,
        "semver": version.semver,
        "checksum": version.artefact_checksum,
        "status": version.status,
    }


def _audit(authority: Authority, action: str, version: ModelVersion, **changes) -> None:
    # A voice version's id can outgrow the audit row's 64-character target id; the full id
    # is the target's repr.
    audit.record(
        action,
        tenant=version.tenant,
        context=authority.context,
        target_type=version._meta.label_lower,
        target_id=version.pk[:64],
        target_repr=version.pk,
        **changes,
    )


def get_version(authority: Authority, version_id: str) -> ModelVersion:
    version = ModelVersion.dangerously_unscoped.filter(pk=version_id).first()
    if version is None:
        raise NotFound("No such model version.")
    authority.require_read(version.tenant_id)
    return version


def list_versions(authority: Authority):
    """Operators: every version. A tenant: the platform's and its own (as `/api/v1/models/`)."""
    if authority.is_operator:
        versions = ModelVersion.dangerously_unscoped.all()
    else:
        authority.require_read(authority.tenant.pk)
        versions = ModelVersion.objects.visible_to(authority.tenant)
    return versions.order_by("family", "-created_at")


def in_use(version: ModelVersion) -> str | None:
    """Why ``version`` may not be retired, or None."""
    from rollout.models import Rollout, VersionPin
    from rollout.services.lifecycle import stable_of

    stable = stable_of(version.family)
    if stable is not None and stable.pk == version.pk:
        return f"it is the stable version of {version.family}"
    if (
        Rollout.dangerously_unscoped.filter(state__in=Rollout.LIVE)
        .filter(Q(candidate=version) | Q(stable=version))
        .exists()
    ):
        return "a live rollout uses it"
    if VersionPin.dangerously_unscoped.filter(version=version).exists():
        return "a tenant is pinned to it"
    return None


def retire(authority: Authority, version: ModelVersion) -> ModelVersion:
    authority.require_manage(version.tenant_id)
    with transaction.atomic():
        # Locked so a rollout or pin cannot take it between the check and the update.
        version = ModelVersion.dangerously_unscoped.select_for_update().get(pk=version.pk)
        if version.status == ModelVersion.Status.RETIRED:
            return version
        reason = in_use(version)
        if reason is not None:
            raise VersionConflict(f"{version.id} cannot be retired: {reason}.",
                                  code="version_in_use")  # fmt: skip
        before = version.status
        version.status = ModelVersion.Status.RETIRED
        version.save(update_fields=["status"])
        _audit(authority, "model_version.retire", version,
               before={"status": before}, after={"status": version.status})  # fmt: skip
    signals.version_retired.send(sender=ModelVersion, version=version)
    return version


def request_validation(
    authority: Authority, version: ModelVersion, *, enqueue: bool = True
) -> ModelVersion:
    """Mark the version validating and queue the validation job (``enqueue=False``: the caller
    runs `validation.validate` itself). A validated version is not validated again: it would
    stop serving meanwhile."""
    from django.conf import settings

    from core import queueing

    authority.require_manage(version.tenant_id)
    allowed = (ModelVersion.Status.REGISTERED, ModelVersion.Status.REJECTED)
    with transaction.atomic():
        updated = ModelVersion.dangerously_unscoped.filter(
            pk=version.pk, status__in=allowed
        ).update(status=ModelVersion.Status.VALIDATING)
        if not updated:
            current = ModelVersion.dangerously_unscoped.get(pk=version.pk)
            raise VersionConflict(
                f"{version.id} is {current.status}; only a registered or rejected version "
                "can be validated.",
                code="validation_not_allowed",
            )
        version.refresh_from_db()
        _audit(authority, "model_version.validate", version, after={"status": version.status})
        if enqueue:
            transaction.on_commit(
                lambda: queueing.enqueue(
                    "rollout.tasks.validate_model_version",
                    version.pk,
                    queue=settings.SYNTHESIS_QUEUE,
                )
            )
    return version


INT8_SUFFIX = "int8"


def register_stock_int8(authority: Authority, *, semver: str | None = None, notes: str = ""):
    """The int8-quantised build of the packaged stock voice (speech.engines.quantize),
    registered as a candidate version of the stock family; returns (version, created).
    Quantising takes a while, so an existing registration of the build is returned first."""
    import tempfile
    from pathlib import Path

    from speech.engines.piper_engine import _voice_version, default_voice_paths
    from speech.engines.quantize import quantize_piper

    model, _ = default_voice_paths()
    version = f"{_voice_version(model)}-{INT8_SUFFIX}"
    existing = ModelVersion.dangerously_unscoped.filter(family=STOCK_FAMILY, version=version)
    if existing.exists():
        return existing.order_by("created_at").first(), False
    with tempfile.TemporaryDirectory() as tmp:
        built = quantize_piper(model, Path(tmp), version_suffix=INT8_SUFFIX)
        artefact, config = built.read_bytes(), Path(f"{built}.json").read_bytes()
    return register_version(
        authority,
        family=STOCK_FAMILY,
        engine="piper",
        version=version,
        semver=semver,
        artefact=artefact,
        config=config,
        notes=notes or "int8-quantised build of the stock voice (onnxruntime dynamic quantisation)",
    )

"""The validation job: load a registered version on a worker and measure it before it may serve.

`validate(version_id)` is the Celery task's body (`rollout.tasks.validate_model_version`). It
loads the version through the worker's engine cache (which fetches and checksums the artefact,
warms the engine up and runs its sanity synthesis), measures it with
`speech.evaluation.evaluate_engine` and judges the metrics against the MODEL_VALIDATION_*
settings. The result is stored in `ModelVersion.validation`; any failure, a corrupt artefact
included, rejects the version with its reason instead of crashing the worker.
"""

from __future__ import annotations

import logging

import numpy as np
from django.conf import settings
from django.utils import timezone

from rollout.models import STOCK_FAMILY, ModelVersion
from rollout.services.authority import Authority
from rollout.services.registry import _audit, spec_for

logger = logging.getLogger(__name__)


def thresholds(family: str) -> dict:
    return {
        "max_wer": settings.MODEL_VALIDATION_MAX_WER,
        "min_mos": settings.MODEL_VALIDATION_MIN_MOS,
        "max_rtf": settings.MODEL_VALIDATION_MAX_RTF,
        "min_similarity": (
            None if family == STOCK_FAMILY else settings.MODEL_VALIDATION_MIN_SIMILARITY
        ),
    }


def reference_embedding(version: ModelVersion) -> np.ndarray | None:
    """The talent's voice print from the verified consent, for a voice family's version."""
    from consent.models import ConsentRecord
    from voices.models import Voice

    if version.family == STOCK_FAMILY:
        return None
    voice = (
        Voice.dangerously_unscoped.select_related("consent")
        .filter(pk=version.family.removeprefix("voice:"))
        .first()
    )
    consent = voice.consent if voice is not None else None
    if consent is None or consent.status != ConsentRecord.Status.VERIFIED or not consent.embedding:
        return None
    return np.asarray(consent.embedding, dtype=np.float32)


def validate(version_id: str) -> ModelVersion | None:
    from rollout.engines import engine_cache
    from speech.evaluation import VALIDATION_SENTENCES, check, evaluate_engine

    version = ModelVersion.dangerously_unscoped.filter(
        pk=version_id, status=ModelVersion.Status.VALIDATING
    ).first()
    if version is None:  # a redelivery after the job finished, or a retired version
        return None
    limits = thresholds(version.family)
    metrics: dict = {}
    try:
        with engine_cache().lease(spec_for(version)) as engine:  # loads + sanity synthesis
            metrics = evaluate_engine(
                engine,
                VALIDATION_SENTENCES,
                reference_embedding(version),
                asr_threads=settings.TIMBRE_ASR_THREADS,
            )
        reasons = check(metrics, limits)
    except Exception as exc:  # noqa: BLE001 - whatever breaks, the version is rejected
        logger.warning("validation of %s failed: %s", version.pk, exc)
        reasons = [{"metric": "sanity", "value": None, "threshold": None,
                    "message": f"{type(exc).__name__}: {exc}"[:500]}]  # fmt: skip
    status = ModelVersion.Status.REJECTED if reasons else ModelVersion.Status.VALIDATED
    result = {"metrics": metrics, "thresholds": limits, "reasons": reasons}
    updated = ModelVersion.dangerously_unscoped.filter(
        pk=version.pk, status=ModelVersion.Status.VALIDATING
    ).update(status=status, validation=result, validated_at=timezone.now())
    version.refresh_from_db()
    if updated:
        _audit(Authority.system("model-validator"), "model_version.validate", version,
               after={"status": status, **result})  # fmt: skip
    return version

"""Celery tasks of the rollout app. Services enqueue them by name (`core.queueing`)."""

from celery import shared_task
from django.conf import settings


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=settings.CELERY_TASK_TIME_LIMIT)
def validate_model_version(version_id: str) -> str | None:
    """Validate a registered version on a model worker (SYNTHESIS_QUEUE)."""
    from rollout.services.validation import validate

    version = validate(version_id)
    return None if version is None else version.status


@shared_task(time_limit=300)
def evaluate_rollouts() -> dict:
    """Beat, every ROLLOUT_EVALUATE_INTERVAL_S: judge each running rollout and act on it."""
    from rollout.services import guardrails, quality

    quality.expire_stale()
    return guardrails.evaluate_all()


@shared_task(acks_late=True, time_limit=300)
def score_quality_sample(sample_id: str) -> str:
    """Render a sampled request's text with both versions and score both (SYNTHESIS_QUEUE)."""
    from rollout.services import quality

    return str(quality.score(sample_id))

"""Celery tasks of rollout. Services enqueue them by name (`core.queueing`)."""

from celery import shared_task
from django.conf import settings


# --- model registry: validation (on the synthesis queue, where engines load) ---------------
@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=settings.CELERY_TASK_TIME_LIMIT)
def validate_model_version(version_id: str) -> str | None:
    from rollout.services.validation import validate

    version = validate(version_id)
    return None if version is None else version.status

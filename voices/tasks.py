"""Celery tasks of voices: recording checks (`cpu`) and fine-tuning (`gpu`, routed in
config.celery). Services enqueue them by name (`core.queueing`)."""

from celery import shared_task
from django.conf import settings

from voices.services import datasets, training


@shared_task(acks_late=True, time_limit=settings.CELERY_TASK_TIME_LIMIT)
def check_recordings(recording_ids: list[str]) -> None:
    datasets.check_recordings(recording_ids)


@shared_task(
    acks_late=True,
    # A worker that dies mid-job gets the message redelivered; the redelivery finds the job
    # running and fails it (refunding the plan's fine-tune) instead of retrying a poison job.
    reject_on_worker_lost=True,
    soft_time_limit=settings.FINE_TUNE_TIME_LIMIT_S,
    time_limit=settings.FINE_TUNE_TIME_LIMIT_S + 30,
)
def fine_tune(job_id: str) -> None:
    training.run(job_id)


@shared_task(time_limit=120)
def fail_stuck_fine_tunes() -> int:
    return training.fail_stuck()

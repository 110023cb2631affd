"""Celery tasks. `synthesize` runs on the `gpu` queue (SYNTHESIS_QUEUE, chosen by admission).

Tasks import the pipeline; services enqueue these tasks by name (synthesis/services/queueing.py),
so nothing here is imported back by the services.
"""

from celery import shared_task
from django.conf import settings

from synthesis import channels, webhooks
from synthesis.services import pipeline


@shared_task(
    acks_late=True,
    # A worker that dies mid-job gets the message redelivered; the next attempt finds the
    # request "processing" and fails it with a refund instead of retrying a poison request.
    reject_on_worker_lost=True,
    soft_time_limit=settings.CELERY_SYNTHESIS_TIME_LIMIT,
    time_limit=settings.CELERY_SYNTHESIS_TIME_LIMIT + 15,
)
def synthesize(job_id: str) -> None:
    pipeline.run(job_id)


@shared_task(
    autoretry_for=(webhooks.WebhookDeliveryError,),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=6,
    time_limit=60,
)
def deliver_webhook(job_id: str) -> None:
    webhooks.deliver(job_id)


@shared_task(time_limit=120)
def fail_stuck_requests() -> int:
    channels.sweep()  # result channels nobody consumed (the client went away)
    return pipeline.fail_stuck_requests()

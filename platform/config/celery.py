"""Celery: `gpu` queue (fine-tuning, synthesis) and `cpu` queue (verification, encoding,
housekeeping). Late acks so a worker that dies mid-task has it redelivered; hard time limits;
workers recycle after N tasks so memory cannot creep."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("timbre")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=[Queue("gpu"), Queue("cpu")],
    task_default_queue="cpu",
    # Model work goes to `gpu` workers; everything else defaults to `cpu`.
    task_routes={
        "synthesis.tasks.synthesize": {"queue": "gpu"},
        "voices.tasks.fine_tune": {"queue": "gpu"},
    },
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    beat_schedule={
        "refund-stale-reservations": {
            "task": "tenancy.tasks.refund_stale_reservations",
            "schedule": 300.0,
        },
    },
)
app.autodiscover_tasks()

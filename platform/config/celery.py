"""Celery: `gpu` queue (fine-tuning, synthesis) and `cpu` queue (verification, encoding,
housekeeping). Late acks so a worker that dies mid-task has it redelivered; hard time limits;
workers recycle after N tasks so memory cannot creep."""

import os
import sys

from celery import Celery
from celery.signals import worker_process_init
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Numeric libraries read these when they load, which happens before workers fork: set them
# first. One inference thread per process; scale with processes.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, os.environ.get("TIMBRE_ONNX_THREADS", "1"))

app = Celery("timbre")


def worker_command(queues: str, concurrency: int, *options: str) -> list[str]:
    """The argv of a worker process for this app (embedded run, tests and benchmarks)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        *options,
    ]


app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # Each queue has its own exchange and key: a shared default binding would copy every
    # message into both queues.
    task_queues=[
        Queue("gpu", Exchange("gpu", type="direct"), routing_key="gpu"),
        Queue("cpu", Exchange("cpu", type="direct"), routing_key="cpu"),
    ],
    task_default_queue="cpu",
    task_default_exchange="cpu",
    task_default_routing_key="cpu",
    # Model work goes to `gpu` workers (the services name the queue: SYNTHESIS_QUEUE,
    # FINE_TUNE_QUEUE); everything else defaults to `cpu`.
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
        "fail-stuck-synthesis": {
            "task": "synthesis.tasks.fail_stuck_requests",
            "schedule": 120.0,
        },
        "fail-stuck-fine-tunes": {
            "task": "voices.tasks.fail_stuck_fine_tunes",
            "schedule": 300.0,
        },
        # Consent expiry acts like revocation; trained artefacts go after the retention period.
        "consent-housekeeping": {
            "task": "consent.tasks.consent_housekeeping",
            "schedule": 60.0,
        },
    },
)
app.autodiscover_tasks()


@worker_process_init.connect
def _pin_threads(**kwargs):
    # One inference thread per worker process measured fastest on 2-core machines; scale out
    # with processes, not threads.
    threads = os.environ["OMP_NUM_THREADS"]
    # Synthesis does not need torch (Piper runs on onnxruntime); importing it just to pin its
    # threads would cost every worker process a few hundred MB.
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))

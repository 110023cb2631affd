"""Celery: `gpu` queue (fine-tuning, synthesis) and `cpu` queue (verification, encoding,
housekeeping). Late acks so a worker that dies mid-task has it redelivered; hard time limits;
workers recycle after N tasks so memory cannot creep."""

import os
import sys

from celery import Celery
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)
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
        # Rollout guardrails: judge each running rollout, advance / extend / hold / fail it.
        "evaluate-rollouts": {
            "task": "rollout.tasks.evaluate_rollouts",
            "schedule": float(os.environ.get("ROLLOUT_EVALUATE_INTERVAL_S") or 60),
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


# Database connections across tasks ------------------------------------------------------------
# Celery's Django fixup closes every connection before and after each task unless
# CELERY_DB_REUSE_MAX is set (settings: it is), so each short synthesis paid a new PostgreSQL
# connection and a backend with cold caches (about 8 ms measured, bench/overhead.py). Tasks
# treat connections as Django treats requests instead: kept for CONN_MAX_AGE, dropped when
# broken or in a failed transaction.
@task_prerun.connect
@task_postrun.connect
def _recycle_old_connections(**kwargs):
    from django.db import close_old_connections

    close_old_connections()


# Hot swap and worker metrics (rollout/engines.py, core/metrics.py) ---------------------------
def _metrics_port() -> int:
    return int(os.environ.get("WORKER_METRICS_PORT") or 0)


def _prepare_metrics_dir() -> None:
    """Prefork children record metrics into files the worker's endpoint merges.
    prometheus-client picks its storage when first imported, so the directory is settled
    here, before Django or any task module imports it; stale files of a previous run go."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        import tempfile

        path = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="timbre-metrics-")
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


if _metrics_port() and "worker" in sys.argv:
    _prepare_metrics_dir()


@worker_ready.connect
def _serve_metrics(**kwargs):
    if not _metrics_port():
        return
    from prometheus_client import start_http_server

    from core.metrics import scrape_registry

    start_http_server(_metrics_port(), registry=scrape_registry(state=False))


@worker_process_init.connect
def _start_engine_sync(**kwargs):
    """Workers that serve synthesis keep the live versions loaded (one sync thread each)."""
    from django.conf import settings

    consuming = app.amqp.queues.consume_from
    if consuming is not None and settings.SYNTHESIS_QUEUE not in consuming:
        return
    from rollout.engines import start_sync

    start_sync()


@worker_process_shutdown.connect
def _forget_process_metrics(pid=None, **kwargs):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())

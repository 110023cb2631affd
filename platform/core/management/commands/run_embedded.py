"""`make run`: migrate, seed the demo tenant, start a real Celery worker, serve HTTP."""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from config.celery import worker_command


class Command(BaseCommand):
    help = "Run the embedded platform: web server plus one Celery worker process."

    def add_arguments(self, parser):
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument(
            "--worker-concurrency", default=os.environ.get("WORKER_CONCURRENCY", "1")
        )

    def handle(self, *args, port, host, worker_concurrency, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo")
        for folder in ("out", "processed", "control"):
            (settings.BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
        worker = subprocess.Popen(
            worker_command(
                "gpu,cpu",
                worker_concurrency,
                "--loglevel",
                "INFO",
                "-B",
                "--schedule",
                str(settings.VAR_DIR / "celerybeat-schedule"),
                "--max-tasks-per-child",
                str(settings.CELERY_WORKER_MAX_TASKS_PER_CHILD),
            ),
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )

        def stop_worker():
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    worker.kill()

        atexit.register(stop_worker)
        self.stdout.write(f"Timbre is serving on http://{host}:{port}/ (worker pid {worker.pid})")
        self.stdout.write(
            f"  API docs: http://{host}:{port}/api/docs/   Console: http://{host}:{port}/console/"
        )
        try:
            call_command("runserver", f"{host}:{port}", use_reloader=False)
        finally:
            stop_worker()

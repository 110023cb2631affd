"""`make run`: migrate, seed the demo tenant, then run gunicorn and one real Celery worker.

The web server is gunicorn, as in production, not Django's development server: one process
(rate-limit counters live in its local-memory cache, and SQLite wants one writer process)
with threads, so streaming responses and sync waits do not block each other. This command
supervises both children: Ctrl-C or SIGTERM stops them, and so does either one exiting.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from config.celery import worker_command


def web_command(host: str, port: str, threads: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"{host}:{port}",
        "--workers",
        "1",
        "--threads",
        threads,
        # Sync requests wait for the worker up to SYNTHESIS_SYNC_TIMEOUT_S.
        "--timeout",
        str(settings.SYNTHESIS_SYNC_TIMEOUT_S + 30),
        "--graceful-timeout",
        "10",
        # Nothing manages this server at run time, and the default socket path in $HOME would
        # be shared by every embedded run on the machine.
        "--no-control-socket",
    ]


def stop(process: subprocess.Popen, timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Command(BaseCommand):
    help = "Run the embedded platform: gunicorn plus one Celery worker process."

    def add_arguments(self, parser):
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument(
            "--worker-concurrency", default=os.environ.get("WORKER_CONCURRENCY", "1")
        )
        parser.add_argument("--threads", default=os.environ.get("WEB_THREADS", "8"))

    def handle(self, *args, port, host, worker_concurrency, threads, **options):
        call_command("migrate", interactive=False, verbosity=0)
        # WhiteNoise serves the collected files, as in the production image.
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("seed_demo")
        for folder in ("out", "processed", "control"):
            (settings.BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
        # SIGTERM must unwind through `finally` (stopping the children) like Ctrl-C does.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        children = []
        try:
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
                env=env,
            )
            children.append(worker)
            web = subprocess.Popen(web_command(host, port, threads), env=env)
            children.append(web)
            self.stdout.write(
                f"Timbre is serving on http://{host}:{port}/ "
                f"(gunicorn pid {web.pid}, worker pid {worker.pid}; Ctrl-C stops both)"
            )
            self.stdout.write(
                f"  API docs: http://{host}:{port}/api/docs/   "
                f"Console: http://{host}:{port}/console/"
            )
            self.stdout.flush()
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
            failed = next(child for child in children if child.poll() is not None)
            self.stderr.write(f"pid {failed.pid} exited ({failed.returncode}); stopping")
            sys.exit(1)
        except KeyboardInterrupt:
            pass
        finally:
            # The web server first: no new requests while the worker finishes its task.
            for child in reversed(children):
                stop(child, timeout=20)

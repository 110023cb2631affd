"""Timing spans for benchmarks: where a synthesis request's time goes, process by process.

Bench-only instrumentation, never imported by the platform or its tests. `install(role)` wraps
named functions of the web and worker code paths (admission, authentication, rate limits, the
result wait, storage, the worker pipeline's steps, every SQL statement and commit, every Redis
command) and appends one JSON line per call to the file named by TIMBRE_BENCH_SPANS:
`[pid, role, name, label, start, end]`, times from time.perf_counter(), which on Linux is
CLOCK_MONOTONIC and so comparable across the processes of one machine.

Loaded into gunicorn by `bench/spans_gunicorn.py` (a config file: `post_worker_init`) and into
Celery's pool processes by `bench/spans_celery.py` (worker_process_init). bench/overhead.py
starts the stack that way with --spans and attributes each span to the request whose
client-side window holds it (requests run one at a time).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import time

_fd: int | None = None
_role = ""


def _emit(name: str, label: str, start: float, end: float) -> None:
    line = json.dumps([os.getpid(), _role, name, label, start, end]) + "\n"
    os.write(_fd, line.encode())  # O_APPEND: small writes land whole


def _wrap(func, name: str, label=None):
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen_wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                yield from func(*args, **kwargs)
            finally:
                _emit(name, "", start, time.perf_counter())

        return gen_wrapper

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            _emit(name, label(args) if label else "", start, time.perf_counter())

    return wrapper


def _patch(target: str, name: str, label=None) -> None:
    """target: "module:attr" or "module:Class.attr"; one that does not exist in this version of
    the code is skipped, so one bench compares versions."""
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *parents, attr = path.split(".")
    for part in parents:
        owner = getattr(owner, part, None)
        if owner is None:
            return
    if isinstance(owner, type):
        original = owner.__dict__.get(attr)
    else:
        original = getattr(owner, attr, None)
    if original is not None:
        setattr(owner, attr, _wrap(original, name, label))


def _sql_label(args) -> str:
    sql = args[1] if len(args) > 1 else ""
    if os.environ.get("TIMBRE_BENCH_SPANS_SQL") and isinstance(sql, str):
        return sql[:300]  # the statement itself, to see which query it is
    return (sql.split(None, 1)[0] if isinstance(sql, str) and sql.strip() else "?").upper()


def _redis_label(args) -> str:
    return str(args[1]).upper() if len(args) > 1 else "?"


WEB = [
    ("django.core.handlers.wsgi:WSGIHandler.__call__", "web.django"),
    ("tenancy.authentication:ApiKeyAuthentication.authenticate", "web.auth"),
    ("tenancy.api.base:resolve_access", "web.access"),
    ("tenancy.services.ratelimits:enforce", "web.ratelimit"),
    ("synthesis.api.views:submit_from", "web.admission"),
    ("voices.services:resolve_voice", "web.admission.voice"),
    ("synthesis.services.admission:validate", "web.admission.validate"),
    ("rollout.services.resolution:resolve", "web.admission.resolve"),
    ("tenancy.services.quotas:reserve", "web.admission.reserve"),
    ("synthesis.services.admission:dispatch", "web.enqueue"),
    ("synthesis.services:wait", "web.wait"),
    ("synthesis.services:wait_for_result", "web.wait"),
    ("synthesis.channels:wait_for_end", "web.wait.channel"),
    ("synthesis.channels:wait_for_end_message", "web.wait.channel"),
    ("synthesis.services:audio_bytes", "web.read_back"),
    ("synthesis.api.views:finished_response", "web.response"),
]

WORKER = [
    ("synthesis.services.pipeline:run", "worker.run"),
    ("synthesis.services.pipeline:_claim", "worker.claim"),
    ("synthesis.services.pipeline:check_usable_now", "worker.consent_check"),
    ("speech.engines.cache:EngineCache.lease", "worker.engine_lease"),
    ("synthesis.services.pipeline:prompt_cache.lookup", "worker.prompt_cache"),
    ("synthesis.services.pipeline:prompt_cache.store", "worker.prompt_cache"),
    ("synthesis.services.pipeline:iter_synthesis", "worker.engine"),
    ("synthesis.services.pipeline:dsp.crossfade_join", "worker.join"),
    ("synthesis.services.pipeline:watermark_clip", "worker.watermark"),
    # Sync requests marked ahead on a second thread: the pieces, and the wait for the rest.
    ("synthesis.services.pipeline:_MarkAhead.finish", "worker.watermark"),
    ("synthesis.watermarking:MarkedStream.write", "worker.mark_piece"),
    ("synthesis.watermarking:MarkedStream.close", "worker.mark_piece"),
    ("synthesis.services.pipeline:audio.encode", "worker.encode"),
    ("synthesis.services.pipeline:quality.maybe_sample", "worker.quality_sample"),
    ("synthesis.services.pipeline:succeed", "worker.succeed"),
    ("synthesis.services.pipeline:_observe", "worker.metrics"),
    ("synthesis.services.pipeline:_announce", "worker.announce"),
]

COMMON = [
    ("core.storage:LocalStorage.put", "storage.put"),
    ("core.storage:LocalStorage.get", "storage.get"),
    ("core.storage:S3Storage.put", "storage.put"),
    ("core.storage:S3Storage.get", "storage.get"),
    ("django.db.backends.utils:CursorWrapper.execute", "sql", _sql_label),
    ("django.db.backends.utils:CursorWrapper.executemany", "sql", _sql_label),
    ("django.db.backends.base.base:BaseDatabaseWrapper._commit", "sql", lambda a: "COMMIT"),
    ("django.db.backends.base.base:BaseDatabaseWrapper.connect", "sql", lambda a: "CONNECT"),
    ("redis.client:Redis.execute_command", "redis", _redis_label),
    ("redis.client:Pipeline.execute", "redis", lambda a: "PIPELINE"),
]


def install(role: str) -> None:
    """Wrap this process's functions for `role` ("web" or "worker"); no-op without the env."""
    global _fd, _role
    path = os.environ.get("TIMBRE_BENCH_SPANS")
    if not path or _fd is not None:
        return
    import django

    django.setup()
    _fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _role = role
    for target, name, *label in [*(WEB if role == "web" else WORKER), *COMMON]:
        _patch(target, name, *label)


# --- analysis (bench side) -------------------------------------------------------------------
def read(path: str) -> list[list]:
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def within(spans: list[list], start: float, end: float, slack: float = 0.005) -> list[list]:
    """The spans that began in [start, end] and ended by `end` + `slack`."""
    return [s for s in spans if start <= s[4] <= end and s[5] <= end + slack]

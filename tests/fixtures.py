"""Shared fixtures, loaded as a plugin (`-p tests.fixtures`) so every app's tests see them:
real PostgreSQL/Redis (see tests/testenv.py), a real S3 HTTP server (moto), real Celery worker
processes, and helpers to make tenants, members and API keys.

Django is not set up when this module is imported: project imports happen inside fixtures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]


def test_context():
    from audit.services import Actor, RequestContext

    return RequestContext(actor=Actor.system("tests"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port}")


# --- S3 ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible HTTP server (moto) that the `minio` client talks to."""
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session", autouse=True)
def s3_storage(s3_server):
    """Every test uses S3 storage, as production does."""
    from core import storage

    settings.S3_ENDPOINT = s3_server
    settings.S3_ACCESS_KEY = "testing"
    settings.S3_SECRET_KEY = "testing"
    settings.S3_BUCKET = "timbre-test"
    storage.get_storage.cache_clear()
    backend = storage.get_storage()
    backend.ensure_bucket()
    yield backend
    storage.get_storage.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def release_test_database(django_db_setup, django_db_blocker):
    """Torn down just before the test database is dropped: end connections that workers or
    live-server threads still hold, so the drop succeeds and no database is left behind."""
    yield
    from django.db import connection

    if not connection.settings_dict["NAME"].startswith("test_"):
        return  # no test in this run used the database, so none was created
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def clean_cache():
    """Rate-limit windows must not leak between tests. Only this run's keys are removed
    (cache.clear() would flush every run sharing the Redis database)."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    for alias in ("default", "prompts"):
        prefix = settings.CACHES[alias]["KEY_PREFIX"]
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            client.delete(key)
    yield


# --- Tenants and credentials --------------------------------------------------------------
@pytest.fixture
def make_tenant(db):
    from tenancy.models import Plan
    from tenancy.services import tenants

    def make(slug: str | None = None, plan: str = "business", **plan_overrides):
        tenant = tenants.create_tenant(
            slug or f"t-{uuid.uuid4().hex[:8]}", "Test Co", plan, context=test_context()
        )
        if plan_overrides:
            custom = Plan.objects.create(
                slug=f"custom-{uuid.uuid4().hex[:8]}",
                **{**tenants.DEFAULT_PLANS[plan], "name": "Custom", **plan_overrides},
            )
            tenant.plan = custom
            tenant.save(update_fields=["plan"])
        return tenant

    return make


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("acme")


@pytest.fixture
def other_tenant(make_tenant):
    return make_tenant("globex")


@pytest.fixture
def make_key():
    from tenancy.roles import ALL_SCOPES
    from tenancy.services import keys
    from tenancy.services.access import Access

    def make(tenant, scopes=ALL_SCOPES, **kwargs) -> keys.IssuedKey:
        return keys.create_key(
            Access.operator(tenant),
            name=kwargs.pop("name", "test key"),
            scopes=scopes,
            context=test_context(),
            **kwargs,
        )

    return make


@pytest.fixture
def make_member(db):
    from tenancy.services import tenants
    from tenancy.services.access import Access

    def make(tenant, role: str, email: str | None = None):
        user = tenants.create_user(
            email or f"{role}-{uuid.uuid4().hex[:6]}@example.com", "pw-12345678"
        )
        tenants.add_member(Access.operator(tenant), user, role, context=test_context())
        return user

    return make


@pytest.fixture
def make_job(db):
    """A bare synthesis request row on the stock voice (no audio), for tests of what reads
    or delivers jobs."""
    from synthesis.models import SynthesisRequest
    from voices.models import Voice

    def make(tenant, **fields) -> SynthesisRequest:
        stock = Voice.dangerously_unscoped.get(slug="stock-joe", tenant=None)
        values = dict(
            request_id=f"req_{uuid.uuid4().hex}",
            voice=stock,
            voice_slug=stock.slug,
            model_version="x",
            text_sha256="0" * 64,
            characters=1,
            format="wav",
            sample_rate=0,
            mode="sync",
        )
        return SynthesisRequest.objects.for_tenant(tenant).create(**{**values, **fields})

    return make


@pytest.fixture
def client_for():
    """An API client authenticated with a token (Bearer) or as a signed-in user."""

    from rest_framework.test import APIClient

    def make(token: str | None = None, user=None, header: str = "bearer") -> APIClient:
        client = APIClient()
        if token and header == "bearer":
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        elif token:
            client.credentials(HTTP_X_API_KEY=token)
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def api(tenant, make_key, client_for):
    """A client with an all-scopes key of `tenant`."""
    return client_for(make_key(tenant).token)


# --- Real Celery workers --------------------------------------------------------------------
def _worker_env(extra: dict | None = None) -> dict:
    from django.db import connection

    db = connection.settings_dict
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")]),
        # The worker must see the test database, not the development one.
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "S3_ENDPOINT": settings.S3_ENDPOINT or "",
        "S3_ACCESS_KEY": settings.S3_ACCESS_KEY,
        "S3_SECRET_KEY": settings.S3_SECRET_KEY,
        "S3_BUCKET": settings.S3_BUCKET,
        "SYNTHESIS_QUEUE": settings.SYNTHESIS_QUEUE,
    }
    env.update(extra or {})
    return env


class WorkerProcess:
    def __init__(self, queues: str, env: dict, concurrency: int = 1):
        from config.celery import worker_command

        self.hostname = f"test-{uuid.uuid4().hex[:6]}@%h"
        self.process = subprocess.Popen(
            worker_command(
                queues,
                concurrency,
                "--loglevel",
                "WARNING",
                "-n",
                self.hostname,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ),
            env=env,
            cwd=str(ROOT),
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("celery worker exited during start-up")
            replies = app.control.ping(timeout=0.5) or []
            if any(self.hostname.split("@")[0] in name for reply in replies for name in reply):
                return
        raise RuntimeError("celery worker did not become ready")

    def child_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real worker process (two children) consuming both queues, bound to the test
    database for the whole session. Tests that use it need `django_db(transaction=True)` so
    the worker sees their rows."""
    from config.celery import app

    with django_db_blocker.unblock():
        app.control.purge()
        worker = WorkerProcess("gpu,cpu", _worker_env(), concurrency=2)
    yield worker
    worker.stop()


@pytest.fixture
def start_worker(django_db_setup):
    """Start extra workers with their own environment (e.g. another watermark setting)."""
    started: list[WorkerProcess] = []

    def start(queues: str = "gpu,cpu", concurrency: int = 1, **env) -> WorkerProcess:
        worker = WorkerProcess(queues, _worker_env(env), concurrency=concurrency)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()

"""Loaded with `-p tests.testenv` before pytest-django reads settings: the test suite talks
to the real PostgreSQL and Redis on localhost unless the environment says otherwise."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/timbre")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("CACHE_KEY_PREFIX", f"timbre-test-{os.getpid()}")
os.environ.setdefault("TIMBRE_VAR_DIR", f"/tmp/timbre-test-{os.getpid()}")
os.environ.setdefault("OMP_NUM_THREADS", "1")

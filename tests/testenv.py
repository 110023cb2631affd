"""Loaded with `-p tests.testenv` before pytest-django reads settings: the test suite talks
to the real PostgreSQL and Redis on localhost unless the environment says otherwise.

Each run gets its own database, cache prefix and broker key prefix, so two suites running at
once on one machine (or a developer's and CI's) never see each other's data or tasks."""

import os

RUN = f"{os.getpid()}"

os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/timbre_{RUN}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("CELERY_BROKER_KEYPREFIX", f"timbre-test-{RUN}:")
os.environ.setdefault("CACHE_KEY_PREFIX", f"timbre-test-{RUN}")
os.environ.setdefault("TIMBRE_VAR_DIR", f"/tmp/timbre-test-{RUN}")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Off unless a test turns it on (synthesis/tests/test_prompt_cache.py): repeated test sentences
# would otherwise skip the engine, which many tests measure.
os.environ.setdefault("PROMPT_CACHE_ENABLED", "0")

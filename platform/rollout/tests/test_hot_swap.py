"""Hot swap under load: a real worker keeps serving a steady stream of synthesis requests while
versions go live and stop being live, and its loaded set follows, without a restart.

The loaded set is read from the worker's own metrics endpoint (`timbre_engine_loaded`, one
series per prefork child), the one operators scrape."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
import uuid
from collections import Counter

import pytest

from rollout.services import lifecycle, registry
from rollout.services.authority import Authority
from tests.fixtures import free_port, wait_for_port
from voices.models import Voice

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SENTENCE = "Hot swap keeps talking."
WAIT_S = 90


def loaded_sets(port: int) -> dict[str, set[str]]:
    """{worker child pid: versions it holds loaded} from the worker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    held: dict[str, set[str]] = {}
    for labels, value in re.findall(r"^timbre_engine_loaded\{(.*)\} (\S+)$", text, re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        held.setdefault(found["pid"], set())
        if float(value) == 1:
            held[found["pid"]].add(found["model_version"])
    return held


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting until {what}")


class Load:
    """Threads posting sync synthesis requests back to back, recording every outcome."""

    def __init__(self, token: str, threads: int = 3):
        from rest_framework.test import APIClient

        self.outcomes: list[tuple[int, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()

        def run() -> None:
            from django.db import connection

            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            try:
                while not self._stop.is_set():
                    response = client.post(
                        "/api/v1/synthesize",
                        {"voice": "stock-joe", "text": SENTENCE},
                        format="json",
                    )
                    version = response.get("X-Model-Version", "")
                    with self._lock:
                        self.outcomes.append((response.status_code, version))
                        if response.status_code != 200:
                            self.failures.append(response.content[:300].decode(errors="replace"))
            finally:
                connection.close()

        self._threads = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def served(self) -> Counter:
        with self._lock:
            return Counter(version for status, version in self.outcomes if status == 200)

    def wait_for(self, version: str, more: int = 3) -> None:
        """Until ``more`` further requests were served by ``version``."""
        start = self.served()[version]
        wait_until(lambda: self.served()[version] >= start + more, f"{version} serves")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)


def test_hot_swap_under_load_fails_no_request(start_worker, tenant, make_key, settings):
    port = free_port()
    queue = f"hot-swap-{uuid.uuid4().hex[:8]}"
    settings.SYNTHESIS_QUEUE = queue  # this worker's own queue: no other worker serves it
    worker = start_worker(
        queue,
        concurrency=2,
        SYNTHESIS_QUEUE=queue,
        WORKER_METRICS_PORT=str(port),
        ENGINE_SYNC_INTERVAL_S="1",
        SYNTHESIS_ENGINE_CACHE_SIZE="3",
    )
    wait_for_port(port)
    stable = Voice.dangerously_unscoped.get(slug="stock-joe", tenant=None).model_version_id
    operator = Authority.operator("hot-swap test")

    def follows(expected: set[str]):
        def check() -> bool:
            held = loaded_sets(port)
            children = {str(pid) for pid in worker.child_pids()}
            return children <= set(held) and all(held[pid] == expected for pid in children)

        return check

    wait_until(follows({stable}), "every worker child preloaded the stable version")
    load = Load(make_key(tenant, scopes=["synthesize"]).token)
    try:
        load.wait_for(stable)

        # A second validated stock build goes live at 100 %: preloaded, then serving.
        second = registry.register_alias_of_stock("joe-medium-hotswap-2")
        rollout = lifecycle.start(operator, second, steps=[100])
        wait_until(follows({stable, second.id}), "the candidate is loaded beside stable")
        load.wait_for(second.id)

        # Rolled back: everybody is back on stable, and the workers drop the candidate.
        lifecycle.rollback(operator, rollout, "hot-swap test")
        load.wait_for(stable)
        wait_until(follows({stable}), "the rolled-back candidate is dropped")

        # Another one, ramped and completed: it becomes stable, the old stable is dropped.
        third = registry.register_alias_of_stock("joe-medium-hotswap-3")
        rollout = lifecycle.start(operator, third, steps=[100])
        load.wait_for(third.id)
        lifecycle.promote(operator, rollout, "hot-swap test", complete=True)
        wait_until(follows({third.id}), "the completed candidate is the only version held")
        load.wait_for(third.id)
    finally:
        load.stop()

    served = load.served()
    assert load.failures == [], load.failures[:3]
    assert {stable, second.id, third.id} <= set(served), served
    assert worker.process.poll() is None  # the same worker all along: no restart

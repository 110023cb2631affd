"""Locust users for bench/load/run.py: one scenario per run, closed loop (no think time).

TIMBRE_LOAD_TOKEN: an API key. TIMBRE_LOAD_SCENARIO: `voices` (GET /api/v1/voices, a cheap
authenticated endpoint: key lookup, rate limits, one scoped query) or `synthesis` (a short
sync wav synthesis through the queue, the worker and back).
"""

import os

from locust import FastHttpUser, constant, task

SHORT = "Thanks for calling. How can I help you today?"
SCENARIO = os.environ.get("TIMBRE_LOAD_SCENARIO", "voices")


class ApiUser(FastHttpUser):
    wait_time = constant(0)
    network_timeout = 300.0
    connection_timeout = 30.0

    def on_start(self):
        self.headers = {"Authorization": f"Bearer {os.environ['TIMBRE_LOAD_TOKEN']}"}

    @task
    def call(self):
        if SCENARIO == "synthesis":
            body = {"voice": "stock-joe", "text": SHORT, "format": "wav"}
            with self.client.post(
                "/api/v1/synthesize",
                json=body,
                headers=self.headers,
                name="POST /api/v1/synthesize (short, sync wav)",
                catch_response=True,
            ) as response:
                if response.status_code != 200 or not response.content:
                    response.failure(f"status {response.status_code}")
        else:
            self.client.get("/api/v1/voices", headers=self.headers, name="GET /api/v1/voices")

"""The embedded broker never shows a consumer a half-written message.

Regression: kombu's filesystem transport created `<id>.<queue>.msg` and wrote it afterwards; a
worker polling in between read an empty file and died on the JSON error, taking the embedded
platform down."""

from __future__ import annotations

import os
import subprocess
import sys

from kombu import Connection


def test_embedded_mode_uses_the_atomic_transport():
    # tests/testenv.py points tests at Redis; without a broker URL (make run) it is the files.
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "REDIS_URL")}
    out = subprocess.run(
        [sys.executable, "-c", "from config import settings as s; "
         "print(s.CELERY_BROKER_URL, s.CELERY_BROKER_TRANSPORT)"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert out.split() == ["filesystem://", "core.filesystem_broker:Transport"]


PUBLISHER = """
import sys
from kombu import Connection
transport, folder, sent = sys.argv[1], sys.argv[2], int(sys.argv[3])
options = {"data_folder_in": folder, "data_folder_out": folder}
with Connection("filesystem://", transport=transport, transport_options=options) as conn:
    queue = conn.SimpleQueue("jobs")
    for i in range(sent):
        queue.put({"n": i, "pad": "x" * 4_000_000})  # big: writing takes a while
"""


def consume_while_publishing(transport: str, folder, sent: int) -> list[int]:
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "polling_interval": 0}
    publisher = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, transport, str(folder), str(sent)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    got = []
    try:
        with Connection("filesystem://", transport=transport, transport_options=options) as conn:
            queue = conn.SimpleQueue("jobs")
            while len(got) < sent:
                message = queue.get(timeout=30)
                got.append(message.payload["n"])
                message.ack()
    finally:
        publisher.wait(timeout=60)
    return got


def test_messages_published_while_a_consumer_polls_arrive_whole(tmp_path):
    sent = 40
    got = consume_while_publishing("core.filesystem_broker:Transport", tmp_path, sent)
    assert sorted(got) == list(range(sent))
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())

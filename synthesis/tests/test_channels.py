"""The result channel's contract, for both backends: Redis lists (production) and files
(embedded mode). A publisher thread and a consumer run at once, as a worker and a web process
do. No Django needed."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from synthesis.channels import CHUNK, END, ChannelTimeout, FileChannel, RedisChannel

MESSAGES = 300


@pytest.fixture(params=["redis", "file"])
def channel(request, tmp_path):
    if request.param == "redis":
        return RedisChannel(os.environ["REDIS_URL"])
    return FileChannel(tmp_path / "channels")


def publish_all(channel, request_id, payloads, errors):
    try:
        for payload in payloads:
            channel.publish(request_id, CHUNK, payload)
        channel.publish(request_id, END, b'{"status": "succeeded"}')
    except Exception as exc:  # noqa: BLE001 - surfaced by the test, not lost in the thread
        errors.append(exc)


def consume_all(channel, request_id, timeout=60):
    received = []
    for message in channel.consume(request_id, timeout=timeout):
        received.append(message)
    return received


def test_concurrent_publisher_delivers_every_message_in_order(channel):
    request_id = str(uuid.uuid4())
    payloads = [f"chunk {i} ".encode() * (1 + i % 7) for i in range(MESSAGES)]
    errors: list = []
    publisher = threading.Thread(target=publish_all, args=(channel, request_id, payloads, errors))
    publisher.start()
    received = consume_all(channel, request_id)
    publisher.join(timeout=30)
    assert not errors
    assert [m.kind for m in received] == [CHUNK] * MESSAGES + [END]
    assert [m.data for m in received[:-1]] == payloads
    assert received[-1].end == {"status": "succeeded"}


def test_messages_published_before_the_consumer_starts_are_kept(channel):
    request_id = str(uuid.uuid4())
    publish_all(channel, request_id, [b"a", b"b"], [])
    assert [m.data for m in consume_all(channel, request_id)] == [
        b"a",
        b"b",
        b'{"status": "succeeded"}',
    ]


def test_two_publishers_lose_and_overwrite_nothing(channel):
    """The worker and the reaper may both publish to one request: every message survives."""
    request_id = str(uuid.uuid4())
    barrier = threading.Barrier(2)

    def publish(tag):
        barrier.wait(timeout=10)
        for i in range(MESSAGES // 2):
            channel.publish(request_id, CHUNK, f"{tag}{i}".encode())

    threads = [threading.Thread(target=publish, args=(tag,)) for tag in "xy"]
    for thread in threads:
        thread.start()
    received = []
    for message in channel.consume(request_id, timeout=60):
        received.append(message.data)
        if len(received) == MESSAGES:
            break
    for thread in threads:
        thread.join(timeout=30)
    for tag in "xy":
        mine = [data for data in received if data.startswith(tag.encode())]
        assert mine == [f"{tag}{i}".encode() for i in range(MESSAGES // 2)]


def test_silence_raises_channel_timeout(channel):
    with pytest.raises(ChannelTimeout):
        consume_all(channel, str(uuid.uuid4()), timeout=0.2)


def test_silence_after_some_chunks_raises_channel_timeout(channel):
    request_id = str(uuid.uuid4())
    channel.publish(request_id, CHUNK, b"first")
    messages = channel.consume(request_id, timeout=0.5)
    assert next(messages).data == b"first"
    with pytest.raises(ChannelTimeout):
        next(messages)


def test_file_channel_removes_the_folder_after_end(tmp_path):
    channel = FileChannel(tmp_path)
    request_id = str(uuid.uuid4())
    publish_all(channel, request_id, [b"x"] * 5, [])
    assert len(list((tmp_path / request_id).iterdir())) == 6
    consume_all(channel, request_id)
    assert not (tmp_path / request_id).exists()


def test_file_channel_sweep_removes_only_old_folders(tmp_path):
    channel = FileChannel(tmp_path)
    old, fresh = str(uuid.uuid4()), str(uuid.uuid4())
    channel.publish(old, CHUNK, b"nobody reads this")
    channel.publish(fresh, CHUNK, b"still being read")
    an_hour_ago = time.time() - 3600
    os.utime(tmp_path / old, (an_hour_ago, an_hour_ago))
    assert channel.sweep(max_age_s=900) == 1
    assert not (tmp_path / old).exists() and (tmp_path / fresh).exists()
    assert FileChannel(tmp_path / "missing").sweep() == 0

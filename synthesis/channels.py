"""Result channel from a worker to the web process that waits on a request.

The worker publishes audio chunks (streaming mode) and one final `end` message for every
request; the web process consumes them. An `end` message is JSON (the request's outcome, and
for a success the fields the web process would otherwise reload), optionally followed by a NUL
byte and the delivered audio itself, so a sync request's web process needs no database reload
and no storage read (JSON never holds a raw NUL). Redis lists when `REDIS_URL` is set (BLPOP
wakes the consumer at once); files under VAR_DIR in the embedded mode, polled.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings

CHUNK, END = b"c", b"e"
AUDIO_SEPARATOR = b"\x00"
TTL_SECONDS = 900


@dataclass
class Message:
    kind: bytes
    data: bytes

    @property
    def end(self) -> dict:
        return json.loads(self.data.partition(AUDIO_SEPARATOR)[0])

    @property
    def audio(self) -> bytes | None:
        """The audio an `end` message carries, if any."""
        _, separator, audio = self.data.partition(AUDIO_SEPARATOR)
        return audio if separator else None


class ChannelTimeout(TimeoutError):
    pass


class RedisChannel:
    BLOCK_S = 5

    def __init__(self, url: str):
        import redis

        # BLPOP blocks for up to BLOCK_S; the socket must wait longer than that.
        self.redis = redis.Redis.from_url(url, socket_timeout=self.BLOCK_S + 10)

    @staticmethod
    def _key(request_id: str) -> str:
        return f"timbre:synthesis:channel:{request_id}"

    def publish(self, request_id: str, kind: bytes, data: bytes) -> None:
        key = self._key(request_id)
        pipe = self.redis.pipeline()
        pipe.rpush(key, kind + data)
        pipe.expire(key, TTL_SECONDS)
        pipe.execute()

    def consume(self, request_id: str, timeout: float) -> Iterator[Message]:
        key, deadline = self._key(request_id), time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelTimeout(request_id)
            item = self.redis.blpop([key], timeout=max(1, min(self.BLOCK_S, int(remaining))))
            if item is None:
                continue
            message = Message(item[1][:1], item[1][1:])
            yield message
            if message.kind == END:
                self.redis.delete(key)
                return

    def sweep(self) -> int:
        return 0  # every key carries TTL_SECONDS


class FileChannel:
    """Embedded mode: one numbered file per message in a folder per request.

    Files are never deleted on read, so the number of a new message is always free to take:
    the publisher claims it with a hard link, which fails if the name exists and makes the
    whole message appear at once. The consumer removes the folder after `end`; folders of
    requests nobody consumed are swept once older than the TTL."""

    POLL_S = 0.02

    def __init__(self, root: Path):
        self.root = root

    def publish(self, request_id: str, kind: bytes, data: bytes) -> None:
        folder = self.root / request_id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(kind + data)
        try:
            # Every number below the count is taken (nothing is deleted while the folder
            # lives), so start there and move up past a concurrent publisher's claims.
            index = sum(1 for p in folder.iterdir() if p.suffix == ".msg")
            while True:
                try:
                    os.link(tmp, folder / f"{index:06d}.msg")
                    return
                except FileExistsError:
                    index += 1
        finally:
            tmp.unlink()

    def consume(self, request_id: str, timeout: float) -> Iterator[Message]:
        folder, index = self.root / request_id, 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                raw = (folder / f"{index:06d}.msg").read_bytes()
            except FileNotFoundError:
                time.sleep(self.POLL_S)
                continue
            index += 1
            message = Message(raw[:1], raw[1:])
            if message.kind == END:
                shutil.rmtree(folder, ignore_errors=True)
            yield message
            if message.kind == END:
                return
        raise ChannelTimeout(request_id)

    def sweep(self, max_age_s: float = TTL_SECONDS) -> int:
        """Remove the folders of requests nobody consumed (a client that went away)."""
        if not self.root.is_dir():
            return 0
        cutoff, removed = time.time() - max_age_s, 0
        for folder in self.root.iterdir():
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
            except FileNotFoundError:
                continue  # its consumer removed it meanwhile
        return removed


@lru_cache(maxsize=1)
def get_channel():
    if settings.REDIS_URL:
        return RedisChannel(settings.REDIS_URL)
    return FileChannel(settings.VAR_DIR / "channels")


def publish_chunk(request_id: str, data: bytes) -> None:
    get_channel().publish(request_id, CHUNK, data)


def publish_end(request_id: str, audio: bytes | None = None, **status) -> None:
    data = json.dumps(status).encode()
    if audio is not None:
        data += AUDIO_SEPARATOR + audio
    get_channel().publish(request_id, END, data)


def sweep() -> int:
    """Housekeeping: drop channels older than their TTL (Redis expires its own)."""
    return get_channel().sweep()


def wait_for_end(request_id: str, timeout: float) -> dict:
    return wait_for_end_message(request_id, timeout).end


def wait_for_end_message(request_id: str, timeout: float) -> Message:
    for message in get_channel().consume(request_id, timeout):
        if message.kind == END:
            return message
    raise ChannelTimeout(request_id)

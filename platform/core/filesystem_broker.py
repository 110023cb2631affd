"""kombu's filesystem transport (the embedded mode's broker), with atomic publishing.

kombu creates the message file under its final name and then writes it, while a consumer
moves and reads every `*.msg` file it lists without taking the lock: a consumer that polls in
between reads an empty file, and the JSON error kills the worker (seen in the embedded test
when beat published while the worker polled). Here a message is written under a name the
consumer ignores and renamed into place, so a `.msg` file is always complete.
"""

from __future__ import annotations

import os
import time
import uuid

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # Same name scheme as kombu's (ordered by time, then the queue the consumer matches);
        # the temporary name starts with a dot, which no queue's `<queue>.msg` pattern matches.
        name = f"{int(round(time.monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        tmp = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(tmp, "wb") as f:
                f.write(dumps(payload).encode())
            os.replace(tmp, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            raise ChannelError(f"Cannot add a message to queue {queue!r}") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


class Transport(filesystem.Transport):
    Channel = Channel

"""External backend: the ``audiowmark`` CLI (128-bit payload).

Key handling: audiowmark keys are files written by ``audiowmark gen-key``, which
contain a line ``key <32 hex digits>`` (a 128-bit AES key).  We derive that key
from our secret (HMAC-SHA256(secret, "timbre/audiowmark/v1"), first 16 bytes) and
write the same one-line format to a 0600 temp file, then pass ``--key FILE``.

Detection never trusts ``audiowmark get`` alone: ``get`` prints lines of the form
``pattern  <time> <32 hex> <quality> <sync> <type>`` for whatever pattern it
decodes, including noise; we only report ``watermarked`` when a decoded pattern
*equals* one of the caller's candidate payloads (``candidates``), which is what
``audiowmark cmp`` would do but allows several candidates per call.  Without
candidates we can only say ``inconclusive``.

Not exercised in this repository's CI (binary absent): ``available()`` is False.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .base import Detection, WatermarkBackend, WatermarkError

PAYLOAD_BITS = 128


def _key_hex(secret: bytes) -> str:
    return hmac.new(secret, b"timbre/audiowmark/v1", hashlib.sha256).digest()[:16].hex()


class AudiowmarkWatermark(WatermarkBackend):
    name = "audiowmark"
    payload_bits = PAYLOAD_BITS

    def __init__(self, binary: str = "audiowmark", strength: float | None = None):
        self.binary = binary
        self.strength = strength

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    # -- helpers -----------------------------------------------------------------------
    def _run(self, args: list[str], key: bytes, td: Path) -> str:
        keyfile = td / "key"
        fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"# watermarking key for audiowmark\n\nkey {_key_hex(key)}\n")
        extra = ["--strength", str(self.strength)] if self.strength is not None else []
        cmd = [self.binary, args[0], "--key", str(keyfile), *extra, *args[1:]]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise WatermarkError(f"audiowmark {args[0]} failed: {res.stderr.strip()[:200]}")
        return res.stdout

    # -- interface ---------------------------------------------------------------------
    def embed(self, samples: np.ndarray, sr: int, payload: bytes, key: bytes) -> np.ndarray:
        import soundfile as sf

        if len(payload) * 8 != PAYLOAD_BITS:
            raise WatermarkError("audiowmark payload must be 16 bytes")
        x = np.asarray(samples, dtype=np.float32)
        with tempfile.TemporaryDirectory() as d:
            td = Path(d)
            sf.write(td / "in.wav", x, sr, subtype="FLOAT")
            self._run(["add", str(td / "in.wav"), str(td / "out.wav"), payload.hex()], key, td)
            y, sr2 = sf.read(td / "out.wav", dtype="float32")
        if sr2 != sr or len(y) != len(x):
            raise WatermarkError("audiowmark changed rate or length")
        return y

    def patterns(self, samples: np.ndarray, sr: int, key: bytes) -> list[bytes]:
        """Every 128-bit pattern `audiowmark get` decodes under `key`. `get` prints patterns
        even for unmarked audio, so a pattern means nothing until it matches a known payload
        (a candidate, or a request in the database)."""
        import soundfile as sf

        found: list[bytes] = []
        with tempfile.TemporaryDirectory() as d:
            td = Path(d)
            sf.write(td / "in.wav", np.asarray(samples, dtype=np.float32), sr, subtype="FLOAT")
            for line in self._run(["get", str(td / "in.wav")], key, td).splitlines():
                parts = line.split()
                hexes = [p for p in parts[1:] if len(p) == 32] if parts[:1] == ["pattern"] else []
                if hexes and bytes.fromhex(hexes[0]) not in found:
                    found.append(bytes.fromhex(hexes[0]))
        return found

    def detect(
        self, samples: np.ndarray, sr: int, keys: dict[str, bytes], candidates: Iterable[bytes] = ()
    ) -> Detection:
        wanted = set(candidates)
        if not wanted:
            return Detection("inconclusive", reason="audiowmark needs candidate payloads")
        for kid, key in keys.items():
            for pattern in self.patterns(samples, sr, key):
                if pattern in wanted:
                    return Detection(
                        "watermarked",
                        payload=pattern,
                        key_id=kid,
                        confidence=0.9,
                        reason="audiowmark pattern matches a candidate",
                    )
        return Detection("not_detected", reason="no candidate payload found")

"""Local copies of remote model artefacts, keyed by checksum.

A registered model version names its artefact by a storage key (fine-tuned models live in object
storage); engines load local files. `ArtefactCache.resolve` turns the one into the other: it
downloads the artefact (and the engine's companion files) with a fetch callable the app supplies,
into `<root>/<sha256>/<file name>`, verifies the SHA-256 against the spec, and reuses the copy
next time. Files are written to a temporary name in the same folder and renamed into place, so
another process never sees half a file; the primary artefact is renamed last, so its presence
means the whole set is there.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath

from speech.engines.base import ModelVersionSpec

# (storage key, local destination file) -> None; raises when the object cannot be fetched.
Fetch = Callable[[str, Path], None]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CHECKSUM_CACHE: dict[tuple[str, int, int], str] = {}
_CHECKSUM_LOCK = threading.Lock()


class ArtefactError(RuntimeError):
    """A remote artefact cannot be used: unfetchable, or not the bytes its checksum names."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of a file, memoised on (path, size, mtime) since voices are ~60 MB."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _CHECKSUM_LOCK:
        if key in _CHECKSUM_CACHE:
            return _CHECKSUM_CACHE[key]
    digest = _sha256(path)
    with _CHECKSUM_LOCK:
        _CHECKSUM_CACHE[key] = digest
    return digest


class ArtefactCache:
    def __init__(self, root: Path | str, fetch: Fetch):
        self.root = Path(root)
        self.fetch = fetch

    def path_for(self, spec: ModelVersionSpec) -> Path:
        name = PurePosixPath(spec.artefact_key or "").name
        if name in ("", ".", ".."):
            raise ArtefactError(f"artefact key {spec.artefact_key!r} names no file")
        if not _SHA256_HEX.fullmatch(spec.artefact_checksum or ""):
            raise ArtefactError(f"{spec.id}: a remote artefact needs its full sha256 checksum")
        return self.root / spec.artefact_checksum / name

    def resolve(self, spec: ModelVersionSpec, companions: tuple[str, ...] = ()) -> ModelVersionSpec:
        """The spec with `artefact_path` pointing at a verified local copy.

        `companions` are suffixes of files that travel with the artefact (Piper's `.json`
        config). Specs without a storage key (packaged artefacts) are returned unchanged.
        """
        if not spec.artefact_key:
            return spec
        primary = self.path_for(spec)
        if not primary.is_file():
            primary.parent.mkdir(parents=True, exist_ok=True)
            for suffix in companions:
                self._download(spec.artefact_key + suffix, primary.with_name(primary.name + suffix))
            self._download(spec.artefact_key, primary, checksum=spec.artefact_checksum)
        return replace(spec, artefact_path=str(primary))

    def _download(self, key: str, dest: Path, checksum: str | None = None) -> None:
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        os.close(fd)
        tmp = Path(name)
        try:
            try:
                self.fetch(key, tmp)
            except Exception as exc:
                raise ArtefactError(f"could not fetch artefact {key!r}: {exc}") from exc
            if checksum is not None:
                found = _sha256(tmp)
                if found != checksum:
                    raise ArtefactError(
                        f"checksum mismatch for {key!r}: expected {checksum[:12]}, "
                        f"found {found[:12]}; the download was deleted"
                    )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

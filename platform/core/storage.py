"""Object storage behind one small interface.

S3/MinIO (via the `minio` client) when `S3_ENDPOINT` is set; local files otherwise (embedded
mode). Keys are always tenant-prefixed: `tenants/<tenant_id>/<...>`.
"""

from __future__ import annotations

import io
import os
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core import signing
from django.urls import reverse


class StorageError(RuntimeError):
    pass


def tenant_key(tenant_id, *parts: str) -> str:
    clean = [str(p).strip("/") for p in parts]
    if any(".." in p or not p for p in clean):
        raise StorageError("invalid storage key part")
    return "/".join([f"tenants/{tenant_id}", *clean])


class Storage:
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        raise NotImplementedError

    def get(self, key: str) -> bytes:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def url(self, key: str, expires: timedelta | None = None, filename: str | None = None) -> str:
        """A short-lived download URL for the object."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise StorageError when the backend cannot be reached (readiness)."""
        raise NotImplementedError


def _minio_client(endpoint: str, access_key: str, secret_key: str, region: str, secure: bool):
    from minio import Minio

    url = endpoint if "://" in endpoint else f"{'https' if secure else 'http'}://{endpoint}"
    parsed = urlparse(url)
    # An explicit region means presigning needs no round trip to the server.
    return Minio(
        parsed.netloc,
        access_key=access_key,
        secret_key=secret_key,
        secure=parsed.scheme == "https",
        region=region,
    )


class S3Storage(Storage):
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str,
        secure: bool,
        public_endpoint: str | None = None,
    ):
        self.bucket = bucket
        self.client = _minio_client(endpoint, access_key, secret_key, region, secure)
        # Presigned URLs must name the host clients reach, which may differ from ours.
        self.public_client = (
            _minio_client(public_endpoint, access_key, secret_key, region, secure)
            if public_endpoint
            else self.client
        )

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)

    def put(self, key, data, content_type="application/octet-stream"):
        self.client.put_object(
            self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
        )

    def get(self, key):
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as exc:
            raise StorageError(f"object not found: {key}") from exc
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def delete(self, key):
        self.client.remove_object(self.bucket, key)

    def exists(self, key):
        from minio.error import S3Error

        try:
            self.client.stat_object(self.bucket, key)
            return True
        except S3Error:
            return False

    def url(self, key, expires=None, filename=None):
        headers = (
            {"response-content-disposition": f'attachment; filename="{filename}"'}
            if filename
            else None
        )
        return self.public_client.presigned_get_object(
            self.bucket,
            key,
            expires=expires or settings.PRESIGNED_URL_TTL,
            response_headers=headers,
        )

    def check(self):
        try:
            self.client.bucket_exists(self.bucket)
        except Exception as exc:  # noqa: BLE001 - any transport error means "not ready"
            raise StorageError(str(exc)) from exc


class LocalStorage(Storage):
    """Files under LOCAL_STORAGE_ROOT; URLs are signed, expiring links served by Django."""

    SIGNING_SALT = "timbre.storage.local"

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not str(path).startswith(str(self.root.resolve()) + os.sep):
            raise StorageError("invalid storage key")
        return path

    def put(self, key, data, content_type="application/octet-stream"):
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers never see half a file

    def get(self, key):
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(f"object not found: {key}") from exc

    def delete(self, key):
        self._path(key).unlink(missing_ok=True)

    def exists(self, key):
        return self._path(key).is_file()

    def url(self, key, expires=None, filename=None):
        token = signing.dumps({"k": key, "f": filename}, salt=self.SIGNING_SALT, compress=True)
        return reverse("core:file-download", kwargs={"token": token})

    def unsign(self, token: str, max_age: timedelta | None = None) -> dict:
        return signing.loads(
            token, salt=self.SIGNING_SALT, max_age=max_age or settings.PRESIGNED_URL_TTL
        )

    def check(self):
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")


@lru_cache(maxsize=1)
def get_storage() -> Storage:
    if settings.S3_ENDPOINT:
        return S3Storage(
            settings.S3_ENDPOINT,
            settings.S3_ACCESS_KEY,
            settings.S3_SECRET_KEY,
            settings.S3_BUCKET,
            settings.S3_REGION,
            settings.S3_SECURE,
            settings.S3_PUBLIC_ENDPOINT,
        )
    return LocalStorage(settings.LOCAL_STORAGE_ROOT)

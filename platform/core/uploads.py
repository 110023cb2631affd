"""Reading an uploaded file from a multipart request, with a size limit and clear errors."""

from __future__ import annotations

from core.errors import ApiError


def uploaded_file(request, field: str = "file"):
    upload = request.FILES.get(field)
    if upload is None:
        raise ApiError(
            f"Upload the file as multipart/form-data field {field!r}.", code="file_required"
        )
    return upload


def read_upload(request, max_bytes: int | None, field: str = "file") -> bytes:
    """The bytes of multipart field `field`; 413 `file_too_large` over `max_bytes` (checked
    before reading: Django has spooled a large upload to disk, not memory)."""
    upload = uploaded_file(request, field)
    if max_bytes is not None and upload.size > max_bytes:
        raise ApiError(
            f"The file is larger than {max_bytes} bytes.", code="file_too_large", status_code=413
        )
    return upload.read()

"""Results (web process): wait for a request to end, and hand out its audio."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from core.errors import ApiError
from core.storage import get_storage
from speech import audio
from synthesis import channels
from synthesis.models import SynthesisRequest
from synthesis.services.pipeline import fail


def wait(job: SynthesisRequest, timeout: float | None = None) -> SynthesisRequest:
    """Block until the worker announces the end of the request, then reload it."""
    return wait_for_result(job, timeout)[0]


def wait_for_result(
    job: SynthesisRequest, timeout: float | None = None
) -> tuple[SynthesisRequest, bytes | None]:
    """Block until the worker announces the end of the request. Returns the request, brought
    up to date from the worker's announcement of a success (else reloaded), and the stored
    audio when the announcement carried it (else None: read it from storage)."""
    timeout = timeout or stream_timeout()
    try:
        message = channels.wait_for_end_message(str(job.pk), timeout)
    except channels.ChannelTimeout:
        return time_out(job), None
    end = message.end
    result = end.get("result")
    if end.get("status") != SynthesisRequest.Status.SUCCEEDED or not result:
        job.refresh_from_db()
        return job, None
    for name, value in result.items():
        if name in ("finished_at", "started_at") and value:
            value = datetime.fromisoformat(value)
        setattr(job, name, value)
    return job, message.audio


def time_out(job: SynthesisRequest) -> SynthesisRequest:
    """The web process gave up waiting: fail and refund (unless the job ended meanwhile)."""
    fail(job, "synthesis_timeout", "Synthesis did not finish in time.")
    job.refresh_from_db()
    return job


def stream_timeout() -> float:
    return settings.SYNTHESIS_SYNC_TIMEOUT_S


def audio_bytes(job: SynthesisRequest) -> bytes:
    return get_storage().get(job.audio_key)


def download_url(job: SynthesisRequest) -> str:
    filename = f"{job.pk}.{audio.FILE_EXTENSIONS[job.format]}"
    return get_storage().url(job.audio_key, filename=filename)


# Worker-side failures and the HTTP status they surface as.
FAILURE_STATUS = {
    "watermark_failed": 422,
    "text_empty": 400,
    "text_unspeakable": 400,
    "synthesis_timeout": 504,
    "worker_lost": 503,
    "synthesis_failed": 500,
}


def job_headers(job: SynthesisRequest) -> dict[str, str]:
    headers = {
        "X-Synthesis-Id": str(job.pk),
        "X-Model-Version": job.model_version,
        "X-Characters-Billed": str(job.characters if job.status != "failed" else 0),
    }
    if job.assignment_reason:
        # Why this version (rollout.assignment.Reason): canary, stable, pinned, requested...
        headers["X-Model-Assignment"] = job.assignment_reason
    if job.status == SynthesisRequest.Status.SUCCEEDED:
        headers["X-Prompt-Cache"] = "hit" if job.prompt_cache_hit else "miss"
    return headers


def failure_error(job: SynthesisRequest) -> ApiError:
    return ApiError(
        job.error_message or "Synthesis failed.",
        code=job.error_code,
        status_code=FAILURE_STATUS.get(job.error_code, 500),
        headers=job_headers(job),
    )

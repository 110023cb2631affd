"""Results (web process): wait for a request to end, and hand out its audio."""

from __future__ import annotations

from django.conf import settings

from core.storage import get_storage
from speech import audio
from synthesis import channels
from synthesis.models import SynthesisRequest
from synthesis.services.pipeline import fail


def wait(job: SynthesisRequest, timeout: float | None = None) -> SynthesisRequest:
    """Block until the worker announces the end of the request, then reload it."""
    timeout = timeout or stream_timeout()
    try:
        channels.wait_for_end(str(job.pk), timeout)
    except channels.ChannelTimeout:
        return time_out(job)
    job.refresh_from_db()
    return job


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

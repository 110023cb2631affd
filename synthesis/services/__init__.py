"""Synthesis services, split by the process they run in.

- `admission` (web): validate, reserve quota, create the request, enqueue it.
- `pipeline` (worker): claim, run, succeed, fail; the reaper for stuck requests.
- `results` (web): wait for the end, hand out the audio.

Tasks call the pipeline; the services enqueue tasks by name (`queueing`), never import them.
The names below are what views, tasks, tests and benchmarks use.
"""

from synthesis.services.admission import (
    DEFAULT_FORMAT,
    InvalidSynthesisRequest,
    SynthesisParams,
    billable_characters,
    dispatch,
    submit,
    submit_as,
    validate,
)
from synthesis.services.pipeline import fail, fail_stuck_requests, run, succeed
from synthesis.services.results import (
    audio_bytes,
    download_url,
    failure_error,
    job_headers,
    stream_timeout,
    time_out,
    wait,
    wait_for_result,
)

__all__ = [
    "DEFAULT_FORMAT",
    "InvalidSynthesisRequest",
    "SynthesisParams",
    "audio_bytes",
    "billable_characters",
    "dispatch",
    "download_url",
    "failure_error",
    "job_headers",
    "fail",
    "fail_stuck_requests",
    "run",
    "stream_timeout",
    "submit",
    "submit_as",
    "succeed",
    "time_out",
    "validate",
    "wait",
    "wait_for_result",
]

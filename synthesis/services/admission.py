"""Admission (web process): validate a request, reserve quota, create it and queue it.

Voice and state -> text and controls -> reserve quota (characters + a concurrency slot) ->
resolve the model version -> create the SynthesisRequest -> dispatch to `gpu`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from core.errors import ApiError
from rollout.services import resolution
from speech import audio, text
from speech.engines.base import SynthesisControls
from synthesis.models import SynthesisRequest
from synthesis.services.queueing import SYNTHESIZE_TASK, enqueue
from tenancy.roles import Scope
from tenancy.services import quotas
from tenancy.services.access import Access
from voices import services as voices

DEFAULT_FORMAT = "wav"


class InvalidSynthesisRequest(ApiError):
    default_code = "invalid_request"


@dataclass
class SynthesisParams:
    voice: str
    text: str
    format: str = DEFAULT_FORMAT
    sample_rate: int | None = None
    mode: str = SynthesisRequest.Mode.SYNC
    controls: dict = field(default_factory=dict)
    webhook_url: str = ""
    # Who the caller says the end user is (X-End-User-Id, OpenAI `user`): rollout stickiness.
    end_user: str = ""
    # An explicit model version, where the tenant allows it.
    model_version: str = ""


def billable_characters(raw_text: str) -> int:
    """Characters of speakable text: SSML markup is not billed."""
    return sum(len(segment.text) for segment in text.parse_ssml(raw_text))


def validate(tenant, params: SynthesisParams) -> tuple[SynthesisControls, int]:
    try:
        text.prepare(params.text, max_length=tenant.plan.max_text_characters)
    except text.TextError as exc:
        raise InvalidSynthesisRequest(exc.message, code=exc.code) from exc
    controls = voices.parse_controls(params.controls)
    if params.format not in audio.FORMATS:
        raise InvalidSynthesisRequest(
            f"Unsupported format {params.format!r}.",
            code="unsupported_format",
            details={"allowed": list(audio.FORMATS)},
        )
    if params.sample_rate is not None and params.sample_rate not in audio.VALID_SAMPLE_RATES:
        raise InvalidSynthesisRequest(
            f"Unsupported sample_rate {params.sample_rate}.",
            code="unsupported_sample_rate",
            details={"allowed": list(audio.VALID_SAMPLE_RATES)},
        )
    return controls, billable_characters(params.text)


def submit_as(access: Access, params: SynthesisParams, request_id: str) -> SynthesisRequest:
    """`submit` for whoever `access` is: an API key (its own quotas and limits) or a signed-in
    member (the console, the session API), who draws on the tenant's quotas. The same scope,
    validation, voice and consent checks, quota reservation and worker path either way."""
    access.require(Scope.SYNTHESIZE)
    return submit(access.tenant, access.api_key, params, request_id)


def submit(tenant, api_key, params: SynthesisParams, request_id: str) -> SynthesisRequest:
    """Validate, reserve quota and queue the job. Raises ApiError subclasses with stable codes."""
    end_user = resolution.clean_end_user(params.end_user)
    voice = voices.resolve_voice(tenant, params.voice)
    if voice.default_controls:
        # The voice's defaults, under whatever the request sets.
        params.controls = {**voice.default_controls, **params.controls}
    controls, characters = validate(tenant, params)
    chosen = resolution.resolve(
        tenant,
        voice,
        api_key_id=str(api_key.pk) if api_key is not None else None,
        end_user=end_user or None,
        requested=params.model_version or None,
    )
    with transaction.atomic():
        slot = quotas.reserve(tenant, api_key, 1, quotas.CONCURRENT_JOBS)
        chars = quotas.reserve(tenant, api_key, characters)
        job = SynthesisRequest.objects.for_tenant(tenant).create(
            tenant=tenant,
            request_id=request_id,
            api_key=api_key,
            voice=voice,
            voice_slug=voice.slug,
            model_version=chosen.version.id,
            rollout=chosen.rollout,
            rollout_arm=chosen.arm,
            assignment_reason=chosen.reason,
            text=params.text,
            text_sha256=hashlib.sha256(params.text.encode()).hexdigest(),
            characters=characters,
            controls=controls.to_dict(),
            format=params.format,
            sample_rate=params.sample_rate or 0,
            mode=params.mode,
            webhook_url=params.webhook_url,
            character_reservation=chars,
            slot_reservation=slot,
        )
        transaction.on_commit(lambda: dispatch(job))
    return job


def dispatch(job: SynthesisRequest) -> None:
    enqueue(SYNTHESIZE_TASK, str(job.pk), queue=settings.SYNTHESIS_QUEUE)

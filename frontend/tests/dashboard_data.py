"""Usage, jobs, consents and rollouts for the dashboard and usage tests, made with the services
where they exist (`record_usage`, `quotas.reserve`/`commit`) and as bare rows otherwise."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone

from consent.models import ConsentRecord, VoiceTalent
from rollout.models import ModelVersion, Rollout, RolloutDecision, voice_family
from tenancy.models import UsageRecord
from tenancy.services import quotas, usage
from voices.models import Voice


def custom_voice(tenant, name: str, slug: str | None = None, **fields) -> Voice:
    """A ready custom voice (rows only, never synthesized) with one validated model version."""
    voice_id = uuid.uuid4()
    version = ModelVersion.dangerously_unscoped.create(
        id=f"adapted:{voice_id.hex[:8]}-v1@{uuid.uuid4().hex[:12]}",
        family=voice_family(voice_id),
        engine="adapted",
        version=f"{voice_id.hex[:8]}-v1",
        semver="1.0.0",
        artefact_checksum=uuid.uuid4().hex,
        tenant=tenant,
        status=ModelVersion.Status.VALIDATED,
    )
    return Voice.dangerously_unscoped.create(
        id=voice_id,
        tenant=tenant,
        slug=slug or f"voice-{voice_id.hex[:6]}",
        name=name,
        kind=Voice.Kind.CUSTOM,
        status=Voice.Status.READY,
        model_version=version,
        **fields,
    )


def use(
    tenant,
    *,
    key=None,
    voice="stock-joe",
    characters=100,
    days_ago=0,
    status="succeeded",
    model_version="piper:en_US-joe-medium",
    count=1,
) -> None:
    """`count` metered requests `days_ago` days back (the ledger only; see `spend` for quota)."""
    tag = f"seed-{uuid.uuid4().hex}"
    for n in range(count):
        usage.record_usage(
            tenant,
            api_key=key,
            request_id=f"{tag}-{n}",
            voice=voice,
            characters=characters,
            audio_seconds=characters / 15,
            model_version=model_version,
            status=status,
        )
    if days_ago:
        UsageRecord.objects.for_tenant(tenant).filter(request_id__startswith=tag).update(
            created_at=timezone.now() - timedelta(days=days_ago)
        )


def spend(tenant, characters: int, key=None) -> None:
    """Characters committed against this month's quota, as a finished synthesis does."""
    quotas.commit(quotas.reserve(tenant, key, characters))


def consent(tenant, talent_name: str, *, voice=None, status="verified", valid_for=None):
    now = timezone.now()
    talent = VoiceTalent.objects.for_tenant(tenant).create(tenant=tenant, name=talent_name)
    record = ConsentRecord.objects.for_tenant(tenant).create(
        tenant=tenant,
        talent=talent,
        voice=voice,
        language="en-US",
        template_version=1,
        company=tenant.name,
        purpose="Brand voice for support calls",
        challenge="blue harbour",
        statement="I agree.",
        status=status,
        statement_expires_at=now + timedelta(minutes=10),
        valid_until=now + valid_for if valid_for is not None else None,
        ended_at=now if status in ConsentRecord.ENDED else None,
    )
    if voice is not None:
        Voice.objects.for_tenant(tenant).filter(pk=voice.pk).update(consent=record)
    return record


def held_rollout(
    tenant, voice: Voice, *, state="running", hold_reason="insufficient_data", reason=""
) -> Rollout:
    """A rollout of a second version of `voice`, in `state`, with a decision saying why."""
    candidate = ModelVersion.dangerously_unscoped.create(
        id=f"adapted:{voice.pk.hex[:8]}-v2@{uuid.uuid4().hex[:12]}",
        family=voice_family(voice.pk),
        engine="adapted",
        version=f"{voice.pk.hex[:8]}-v2",
        semver="1.1.0",
        artefact_checksum=uuid.uuid4().hex,
        tenant=tenant,
        status=ModelVersion.Status.VALIDATED,
    )
    rollout = Rollout.dangerously_unscoped.create(
        family=candidate.family,
        tenant=tenant,
        candidate=candidate,
        stable=voice.model_version,
        state=state,
        percent=5.0,
        step_index=1,
        hold_reason=hold_reason,
        ended_at=timezone.now() if state == Rollout.State.ROLLED_BACK else None,
    )
    RolloutDecision.objects.create(
        rollout=rollout,
        action={"running": "hold", "paused": "pause", "rolled_back": "rollback"}[state],
        automatic=True,
        step_index=1,
        percent_before=5.0,
        percent_after=5.0 if state != "rolled_back" else 0.0,
        reason=reason,
    )
    return rollout

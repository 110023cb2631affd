"""Consent records: the list, the evidence of one record, its recording, exports for auditors,
and revocation with what it did to the voices."""

from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from audit.models import AuditEvent
from consent import services
from consent.models import ConsentEvidence, ConsentRecord, VoiceTalent
from core.errors import ApiError
from core.storage import StorageError, get_storage
from frontend.console import ConsoleForm, console_view, csv_response, paginate, render_page
from speech import audio as speech_audio
from tenancy.roles import Scope
from voices.models import FineTuneJob, TrainingRecording, Voice, VoiceVersion
from voices.services import catalogue

EXPIRY_WARNING = timedelta(days=30)


class ConsentFilterForm(ConsoleForm):
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *ConsentRecord.Status.choices]
    )
    talent = forms.ModelChoiceField(
        required=False, queryset=VoiceTalent.objects.none(), empty_label="Any talent"
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        # The tenant's own talents only: another tenant's id is "not one of the choices".
        self.fields["talent"].queryset = VoiceTalent.objects.for_tenant(tenant).order_by("name")


class RevokeForm(ConsoleForm):
    reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        required=False,  # the service decides (400 reason_required), so the API agrees
        help_text="Recorded in the audit log and the evidence export, e.g. the talent's request.",
    )
    error_fields = {"reason_required": "reason"}


def filtered_consents(request, console):
    """The list and its CSV export share this: the same filters, the same rows."""
    form = ConsentFilterForm(request.GET or None, tenant=console.tenant)
    consents = (
        ConsentRecord.objects.for_tenant(console.tenant)
        .select_related("talent", "voice")
        .order_by("-created_at")
    )
    if form.is_bound and form.is_valid():
        if form.cleaned_data["status"]:
            consents = consents.filter(status=form.cleaned_data["status"])
        if form.cleaned_data["talent"]:
            consents = consents.filter(talent=form.cleaned_data["talent"])
    elif form.is_bound:
        consents = consents.none()
    return form, consents


@require_GET
@console_view(Scope.CONSENT_READ)
def consents_page(request, console):
    form, consents = filtered_consents(request, console)
    pagination = paginate(request, consents)
    soon = timezone.now() + EXPIRY_WARNING
    for consent in pagination.items:
        consent.expires_soon = bool(
            consent.valid_until and consent.is_active and consent.valid_until <= soon
        )
    return render_page(
        request,
        console,
        "frontend/consent/list.html",
        section="consent",
        partial="frontend/consent/_table.html",
        status=400 if form.errors else 200,
        form=form,
        consents=pagination,
        filtered=bool(request.GET.get("status") or request.GET.get("talent")),
        voices_url=reverse("frontend:voices", args=[console.tenant.slug]),
    )


@require_GET
@console_view(Scope.CONSENT_READ)
def consents_export(request, console):
    form, consents = filtered_consents(request, console)
    header = [
        "id", "talent", "voice", "status", "language", "created_at", "verified_at",
        "valid_until", "ended_at", "ended_by", "end_reason", "recording_sha256",
    ]  # fmt: skip
    rows = (
        [
            c.pk,
            c.talent.name,
            c.voice.slug if c.voice_id else "",
            c.status,
            c.language,
            _iso(c.created_at),
            _iso(c.verified_at),
            _iso(c.valid_until),
            _iso(c.ended_at),
            c.ended_by,
            c.end_reason,
            c.recording_sha256,
        ]  # fmt: skip
        for c in consents.iterator()
    )
    return csv_response(f"consents-{console.tenant.slug}.csv", header, rows)


def _iso(value) -> str:
    return value.isoformat() if value else ""


@require_GET
@console_view(Scope.CONSENT_READ)
def consent_detail(request, console, pk):
    consent = services.get_consent(console.access, pk)
    return _detail(request, console, consent, RevokeForm())


def _detail(request, console, consent, revoke_form, status=200):
    evidence = list(ConsentEvidence.objects.for_tenant(console.tenant).filter(consent=consent))
    verification = next((row for row in reversed(evidence) if row.kind == "verification"), None)
    timeline = list(
        AuditEvent.objects.for_tenant(console.tenant)
        .filter(target_type=ConsentRecord._meta.label_lower, target_id=str(consent.pk))
        .order_by("seq")
    )
    return render_page(
        request,
        console,
        "frontend/consent/detail.html",
        section="consent",
        status=status,
        consent=consent,
        evidence=evidence,
        verification=verification,
        scores=_asr_scores(verification),
        speaker_scores=_speaker_scores(console, verification),
        timeline=timeline,
        effects=_effects(console, consent, timeline) if consent.status in consent.ENDED else None,
        revoke_form=revoke_form,
        can_revoke=console.has(Scope.CONSENT_WRITE) and consent.status not in consent.ENDED,
    )


def _asr_scores(verification) -> dict:
    if verification is None:
        return {}
    checks = {check.get("name"): check for check in verification.checks}
    return {
        "statement": checks.get("statement"),
        "challenge": checks.get("challenge"),
        "talent_name": checks.get("talent_name"),
        "company": checks.get("company"),
        "speaker": checks.get("speaker"),
    }


def _speaker_scores(console, verification) -> list[dict]:
    """Each training recording's similarity to the consent voice, as the verification measured
    it (the evidence keeps the recordings' ids and the scores in the same order)."""
    if verification is None:
        return []
    ids = verification.details.get("training_recordings") or []
    scores = (verification.details.get("evidence") or {}).get("scores", {}).get("training_single")
    threshold = next(
        (c.get("threshold") for c in verification.checks if c.get("name") == "training_speakers"),
        None,
    )
    if not ids or not scores:
        return []
    found = TrainingRecording.objects.for_tenant(console.tenant).in_bulk(ids)
    recordings = {str(pk): row for pk, row in found.items()}
    rows = []
    for number, (recording_id, score) in enumerate(zip(ids, scores, strict=False), start=1):
        recording = recordings.get(str(recording_id))
        rows.append(
            {
                "number": number,
                "filename": recording.filename if recording else "(removed)",
                "score": score,
                "passed": threshold is None or score >= threshold,
                "threshold": threshold,
            }
        )
    return rows


def _effects(console, consent, timeline) -> dict:
    """What ending the consent did, read from the rows as they are now: the voices it
    disabled, the fine-tunes cancelled, what synthesis answers, and the artefact purge."""
    voices = list(
        Voice.objects.for_tenant(console.tenant).select_related("consent").filter(consent=consent)
    )
    for voice in voices:
        # The admission check synthesis runs: its refusal is what an API caller gets now.
        try:
            catalogue.check_usable(voice)
            voice.refusal = None
        except ApiError as exc:
            voice.refusal = exc
    cancelled = list(
        FineTuneJob.objects.for_tenant(console.tenant)
        .select_related("voice")
        .filter(
            voice__consent=consent,
            status=FineTuneJob.Status.CANCELLED,
            error_code=catalogue.ConsentRevoked.default_code,
        )
        .order_by("-finished_at")
    )
    artefacts = VoiceVersion.objects.for_tenant(console.tenant).filter(
        voice__consent=consent,
        status__in=[VoiceVersion.Status.READY, VoiceVersion.Status.FAILED],
    )
    ended_event = next(
        (e for e in reversed(timeline) if e.action in ("consent.revoke", "consent.expire")), None
    )
    after = (ended_event.after or {}) if ended_event else {}
    return {
        "voices": voices,
        "fine_tunes": cancelled,
        "syntheses_cancelled": after.get("syntheses_cancelled"),
        "artefacts_pending": artefacts.exclude(artefact_key="").count(),
        "purge_at": consent.artefacts_delete_after,
        "purged_at": consent.artefacts_deleted_at,
    }


@require_POST
@console_view(Scope.CONSENT_READ)
def consent_revoke(request, console, pk):
    consent = services.get_consent(console.access, pk)
    form = RevokeForm(request.POST)
    if not form.is_valid():
        return _detail(request, console, consent, form, status=400)
    try:
        services.revoke(
            console.access, consent, form.cleaned_data["reason"], context=console.audit_context
        )
    except services.ConsentStateError as exc:
        # Revoked twice, or already expired: say so on the record, it is not a failure.
        messages.info(request, exc.message)
        return redirect("frontend:consents-detail", console.tenant.slug, consent.pk)
    except services.InvalidConsentRequest as exc:
        form.add_service_error(exc)
        return _detail(request, console, consent, form, status=exc.status_code)
    messages.success(
        request, "Consent revoked. Its voices are disabled and synthesis with them is refused."
    )
    return redirect("frontend:consents-detail", console.tenant.slug, consent.pk)


@require_GET
@console_view(Scope.CONSENT_READ)
def consent_evidence(request, console, pk):
    consent = services.get_consent(console.access, pk)
    body = json.dumps(services.evidence_export(console.access, consent), cls=DjangoJSONEncoder)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="consent-{consent.pk}-evidence.json"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@console_view(Scope.CONSENT_READ)
def consent_recording(request, console, pk):
    """The talent's recorded statement, from object storage, for this tenant's readers only."""
    consent = services.get_consent(console.access, pk)
    if not consent.recording_key:
        raise Http404
    try:
        data = get_storage().get(consent.recording_key)
    except StorageError as exc:
        raise Http404 from exc
    content_type = speech_audio.sniff_content_type(data) or "application/octet-stream"
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'inline; filename="consent-{consent.pk}"'
    response["Cache-Control"] = "private, no-store"
    return response


urlpatterns = [
    path("<slug:slug>/consent/", consents_page, name="consents"),
    path("<slug:slug>/consent/export.csv", consents_export, name="consents-export"),
    path("<slug:slug>/consent/<uuid:pk>/", consent_detail, name="consents-detail"),
    path("<slug:slug>/consent/<uuid:pk>/revoke/", consent_revoke, name="consents-revoke"),
    path("<slug:slug>/consent/<uuid:pk>/evidence.json", consent_evidence, name="consents-evidence"),
    path("<slug:slug>/consent/<uuid:pk>/recording", consent_recording, name="consents-recording"),
]

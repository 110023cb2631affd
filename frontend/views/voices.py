"""Voices: the list, the enrolment wizard, training and the playground.

The wizard keeps no state of its own: each step reads the voice, its talent, its latest consent
statement, its recordings and its fine-tunes from the database, so a reload (or another browser)
reopens it where the enrolment stands. Every change goes through the services the API uses.

Steps follow the services' order: the consent recording is checked against the talent's
training recordings (`training_audio_required`), so those are uploaded before the statement.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone

from consent import services as consent_services
from consent.models import ConsentEvidence, ConsentRecord, StatementTemplate
from core.errors import ApiError
from frontend.console import ConsoleForm, console_view, paginate, render_page
from speech import audio as speech_audio
from synthesis import services as synthesis
from synthesis.models import SynthesisRequest
from tenancy.roles import Scope
from tenancy.services import ratelimits
from voices.models import FineTuneJob, TrainingRecording, Voice, VoiceVersion
from voices.services import catalogue, datasets, training

STEPS = [
    ("talent", "Talent"),
    ("recordings", "Training recordings"),
    ("statement", "Consent statement"),
    ("recording", "Consent recording"),
    ("verification", "Verification"),
    ("fine-tune", "Fine-tune"),
    ("evaluation", "Evaluation"),
    ("playground", "Playground"),
]
STEP_NAMES = [name for name, _ in STEPS]
PLAYGROUND_FORMAT = "wav"  # every browser plays it; the clip is watermarked like any other
STOCK_SLUG = catalogue.STOCK_VOICES[0]["slug"]


# --- the enrolment's state ---------------------------------------------------------------------
@dataclass
class Enrolment:
    voice: Voice
    consent: ConsentRecord | None  # the latest statement issued for the voice
    counts: dict  # training recordings by status
    job: FineTuneJob | None  # the latest fine-tune
    version: VoiceVersion | None  # the latest version

    @property
    def verified(self) -> bool:
        consent = self.voice.consent
        return consent is not None and consent.status == ConsentRecord.Status.VERIFIED

    @property
    def accepted(self) -> int:
        return self.counts.get(TrainingRecording.Status.ACCEPTED, 0)

    @property
    def processing(self) -> int:
        return self.counts.get(TrainingRecording.Status.PROCESSING, 0)

    @property
    def statement_expired(self) -> bool:
        c = self.consent
        return (
            c is not None
            and c.status == ConsentRecord.Status.PENDING
            and c.statement_expires_at <= timezone.now()
        )

    @property
    def fine_tune_active(self) -> bool:
        return self.job is not None and self.job.status in FineTuneJob.ACTIVE

    def current_step(self) -> str:
        """Where the enrolment stands: the step the wizard reopens at."""
        if not self.verified:
            if self.accepted < settings.CONSENT_MIN_TRAINING_RECORDINGS or self.processing:
                return "recordings"
            consent = self.consent
            if consent is None or consent.status in ConsentRecord.ENDED or self.statement_expired:
                return "statement"
            if consent.status == ConsentRecord.Status.PENDING:
                return "recording"
            return "verification"
        if self.fine_tune_active:
            return "fine-tune"
        if self.accepted < settings.FINE_TUNE_MIN_RECORDINGS and self.version is None:
            return "recordings"
        if self.version is None:
            return "fine-tune"
        if self.voice.status == Voice.Status.READY:
            return "playground"
        return "evaluation"


def enrolment_of(voice: Voice) -> Enrolment:
    tenant = voice.tenant_id
    consent = (
        ConsentRecord.objects.for_tenant(tenant)
        .filter(voice=voice)
        .select_related("talent")
        .order_by("-created_at")
        .first()
    )
    counts = dict(
        TrainingRecording.objects.for_tenant(tenant)
        .filter(voice=voice)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    job = (
        FineTuneJob.objects.for_tenant(tenant)
        .filter(voice=voice)
        .select_related("version")
        .order_by("-created_at")
        .first()
    )
    version = (
        VoiceVersion.objects.for_tenant(tenant).filter(voice=voice).order_by("-number").first()
    )
    return Enrolment(voice, consent, counts, job, version)


def _voice(console, voice_id, *, custom: bool = True) -> Voice:
    """The tenant's voice (or, with custom=False, a stock voice too); anything else is a 404,
    another tenant's voice exactly like an unknown id."""
    voices = Voice.objects.visible_to(console.tenant).select_related(
        "talent", "consent", "active_version"
    )
    if custom:
        voices = voices.filter(kind=Voice.Kind.CUSTOM)
    voice = voices.filter(pk=voice_id).first()
    if voice is None:
        raise Http404
    return voice


def _steps(enrolment: Enrolment, current: str) -> list[dict]:
    reached = STEP_NAMES.index(enrolment.current_step())
    return [
        {
            "name": name,
            "label": label,
            "url": reverse(
                "frontend:voices-step",
                args=[enrolment.voice.tenant.slug, enrolment.voice.pk, name],
            ),
            "done": i < reached,
            "reachable": i <= reached,
            "current": name == current,
        }
        for i, (name, label) in enumerate(STEPS)
    ]


def _may_enrol(console) -> bool:
    return console.has(Scope.VOICES_WRITE) and console.has(Scope.CONSENT_WRITE)


def _step_page(request, console, enrolment: Enrolment, step: str, *, status=200, partial=None,
               **context):  # fmt: skip
    return render_page(
        request,
        console,
        f"frontend/voices/step_{step.replace('-', '_')}.html",
        section="voices",
        partial=partial,
        status=status,
        tenant=console.tenant,
        voice=enrolment.voice,
        enrolment=enrolment,
        step=step,
        steps=_steps(enrolment, step),
        may_enrol=_may_enrol(console),
        may_write=console.has(Scope.VOICES_WRITE),
        may_consent=console.has(Scope.CONSENT_WRITE),
        sees_consent=console.has(Scope.CONSENT_READ),
        **context,
    )


# --- the list ----------
class VoiceFilter(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Any status"), *Voice.Status.choices], required=False, label="Status"
    )


@console_view(Scope.VOICES_READ)
def voices_page(request, console):
    tenant = console.tenant
    latest_consent = ConsentRecord.objects.for_tenant(tenant).filter(voice=OuterRef("pk"))
    voices = (
        Voice.objects.visible_to(tenant)
        .select_related("talent", "active_version", "consent")
        .annotate(
            latest_consent=Subquery(latest_consent.order_by("-created_at").values("status")[:1])
        )
        .order_by("kind", "-created_at", "slug")
    )
    filters = VoiceFilter(request.GET or None)
    if filters.is_valid() and filters.cleaned_data["status"]:
        voices = voices.filter(status=filters.cleaned_data["status"])
    has_custom = Voice.objects.for_tenant(tenant).filter(kind=Voice.Kind.CUSTOM).exists()
    return render_page(
        request,
        console,
        "frontend/voices/list.html",
        section="voices",
        partial="frontend/voices/list_table.html",
        tenant=tenant,
        voices=paginate(request, voices),
        filters=filters,
        has_custom=has_custom,
        may_enrol=_may_enrol(console),
    )


# --- step 1: talent and voice ---------------------------------------------------------------
def _languages() -> list[tuple[str, str]]:
    found = (
        StatementTemplate.objects.filter(active=True)
        .order_by("language")
        .values_list("language", flat=True)
        .distinct()
    )
    return [(code, code) for code in found] or [("en-US", "en-US")]


class TalentForm(ConsoleForm):
    talent_name = forms.CharField(
        label="Talent's full name",
        max_length=200,
        help_text="As the talent will say it in the consent statement.",
    )
    talent_email = forms.EmailField(label="Talent's email", required=False, max_length=254)
    name = forms.CharField(label="Voice name", max_length=200, help_text="Shown in the console.")
    slug = forms.CharField(
        label="Voice id",
        max_length=100,
        help_text="What API calls name the voice: lowercase letters, digits and hyphens.",
    )
    language = forms.ChoiceField(label="Language", choices=())

    error_fields = {
        "invalid_slug": "slug",
        "voice_exists": "slug",
        "unsupported_language": "language",
        "voice_limit_exceeded": None,
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = _languages()


@console_view(Scope.VOICES_WRITE)
def enrol_new(request, console):
    form = TalentForm(request.POST or None, initial={"language": "en-US"})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                # One step for the person: a talent without its voice is not left behind.
                talent = consent_services.create_talent(
                    console.access,
                    name=data["talent_name"],
                    email=data["talent_email"],
                    languages=[data["language"]],
                    context=console.audit_context,
                )
                voice = catalogue.create_voice(
                    console.access,
                    slug=data["slug"],
                    name=data["name"],
                    talent=talent,
                    language=data["language"],
                    context=console.audit_context,
                )
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            return redirect("frontend:voices-step", console.tenant.slug, voice.pk, "recordings")
    return render_page(
        request,
        console,
        "frontend/voices/step_talent.html",
        section="voices",
        status=400 if form.is_bound and form.errors else 200,
        form=form,
        steps=[{"name": n, "label": label, "current": n == "talent"} for n, label in STEPS],
        voice=None,
    )


# --- the wizard's steps ---------------------------------------------------------------------------
@console_view(Scope.VOICES_READ)
def voice_detail(request, console, voice_id):
    """A voice's page: an enrolment still under way reopens at its step."""
    voice = _voice(console, voice_id, custom=False)
    if voice.kind == Voice.Kind.STOCK:
        return render_page(
            request, console, "frontend/voices/detail.html", section="voices", voice=voice,
            enrolment=None, versions=[], capabilities=catalogue.capabilities(voice),
            may_synthesize=console.has(Scope.SYNTHESIZE),
        )  # fmt: skip
    enrolment = enrolment_of(voice)
    if voice.active_version_id is None and voice.status != Voice.Status.DISABLED:
        return redirect("frontend:voices-step", console.tenant.slug, voice.pk,
                        enrolment.current_step())  # fmt: skip
    versions = VoiceVersion.objects.for_tenant(console.tenant).filter(voice=voice)
    return render_page(
        request, console, "frontend/voices/detail.html", section="voices", voice=voice,
        enrolment=enrolment, versions=versions, capabilities=catalogue.capabilities(voice),
        may_synthesize=console.has(Scope.SYNTHESIZE), sees_consent=console.has(Scope.CONSENT_READ),
    )  # fmt: skip


@console_view(Scope.VOICES_READ)
def voice_step(request, console, voice_id, step):
    if step == "playground":
        return playground(request, console, voice_id)
    handler = STEP_HANDLERS.get(step)
    if handler is None:
        raise Http404
    voice = _voice(console, voice_id)
    return handler(request, console, enrolment_of(voice))


def _post_only_with(console, *scopes) -> None:
    """A POST by a role without the scopes is refused here too (the services refuse anyway)."""
    for scope in scopes:
        console.access.require(scope)


def step_talent(request, console, enrolment):
    if request.method == "POST":
        raise Http404  # the talent is created with its voice (voices/new/)
    return _step_page(request, console, enrolment, "talent")


# --- training recordings ----------
class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple) and data:
            return [single(item, initial) for item in data]
        if isinstance(data, list | tuple):
            data = None
        return [single(data, initial)] if data else single(data, initial)


class RecordingsForm(ConsoleForm):
    files = MultipleFileField(
        label="Recordings",
        help_text="One or more audio files (any format), or a zip with metadata.csv "
        "(file,transcript).",
    )
    transcripts = forms.CharField(
        label="Transcripts",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What is said in each audio file, one line per file, in the order you chose "
        "them. Not needed for a zip: its metadata.csv has them.",
    )
    error_fields = {
        "empty_transcript": "transcripts",
        "storage_limit_exceeded": None,
        "voice_disabled": None,
    }

    def clean(self):
        cleaned = super().clean()
        files = cleaned.get("files") or []
        lines = [ln.strip() for ln in (cleaned.get("transcripts") or "").splitlines()]
        lines = [ln for ln in lines if ln]
        audio_files = []
        for upload in files:
            upload.seek(0)
            is_zip = upload.read(4) == datasets.ZIP_MAGIC
            upload.seek(0)
            if not is_zip:
                audio_files.append(upload)
        if files and len(lines) != len(audio_files):
            self.add_error(
                "transcripts",
                f"Give one transcript line per audio file: {len(audio_files)} audio "
                f"file(s), {len(lines)} line(s).",
            )
        cleaned["transcript_for"] = dict(zip([id(f) for f in audio_files], lines, strict=False))
        return cleaned


def _report_context(enrolment):
    voice = enrolment.voice
    report = datasets.dataset_report(voice)
    return {
        "report": report,
        "settling": report["totals"]["processing"] > 0,
        "min_consent": settings.CONSENT_MIN_TRAINING_RECORDINGS,
    }


def step_recordings(request, console, enrolment):
    voice = enrolment.voice
    form = RecordingsForm()
    status = 200
    if request.method == "POST":
        _post_only_with(console, Scope.VOICES_WRITE)
        if "delete" in request.POST:
            rec = _of_voice_or_404(TrainingRecording, console, voice, request.POST["delete"])
            datasets.delete_recording(console.access, rec, context=console.audit_context)
            return redirect("frontend:voices-step", console.tenant.slug, voice.pk, "recordings")
        form = RecordingsForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                for upload in form.cleaned_data["files"]:
                    datasets.upload_file(
                        console.access,
                        voice,
                        data=upload.read(),
                        filename=upload.name or "recording",
                        transcript=form.cleaned_data["transcript_for"].get(id(upload), ""),
                        context=console.audit_context,
                    )
            except ApiError as exc:
                if exc.error_code in form.error_fields:
                    form.add_service_error(exc)
                else:  # the file itself: too large, not a safe zip, empty...
                    form.add_error("files", exc.message)
            else:
                return redirect("frontend:voices-step", console.tenant.slug, voice.pk, "recordings")
        status = 400
    return _step_page(
        request, console, enrolment, "recordings", status=status, form=form,
        partial="frontend/voices/dataset_report.html", **_report_context(enrolment),
    )  # fmt: skip


def _uuid_or_404(value: str):
    import uuid

    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise Http404 from exc


def _of_voice_or_404(model, console, voice: Voice, raw_pk: str):
    """The tenant's row of `model` (a recording, a fine-tune) that belongs to `voice`; a
    malformed, unknown or foreign id is a 404."""
    found = (
        model.objects.for_tenant(console.tenant)
        .filter(voice=voice, pk=_uuid_or_404(raw_pk))
        .first()
    )
    if found is None:
        raise Http404
    return found


# --- consent statement ----------
def _statement_parts(consent: ConsentRecord | None) -> tuple[str, str, str]:
    """The statement split around its challenge phrase, to highlight it."""
    if consent is None:
        return "", "", ""
    before, found, after = consent.statement.partition(consent.challenge)
    return (before, found, after) if found else (consent.statement, "", "")


def step_statement(request, console, enrolment):
    voice = enrolment.voice
    if request.method == "POST":
        _post_only_with(console, Scope.CONSENT_WRITE)
        consent_services.request_statement(
            console.access, talent=voice.talent, voice=voice, context=console.audit_context
        )
        return redirect("frontend:voices-step", console.tenant.slug, voice.pk, "statement")
    consent = enrolment.consent if console.has(Scope.CONSENT_READ) else None
    return _step_page(
        request, console, enrolment, "statement", consent=consent,
        parts=_statement_parts(consent),
        fresh_needed=consent is None or consent.status != ConsentRecord.Status.PENDING
        or enrolment.statement_expired,
    )  # fmt: skip


# --- consent recording ----------
class ConsentRecordingForm(ConsoleForm):
    file = forms.FileField(
        label="Recording of the statement",
        help_text="Record it here, or upload a file (WAV, FLAC, MP3, OGG/Opus, WebM or M4A).",
        error_messages={"required": "Record the statement or choose a file to upload."},
    )
    error_fields = {
        "file_too_large": "file",
        "empty_upload": "file",
        "unsupported_audio_format": "file",
        "statement_expired": "file",
        "training_audio_required": None,
        "invalid_consent_state": None,
        "storage_limit_exceeded": None,
    }


def step_recording(request, console, enrolment):
    voice = enrolment.voice
    consent = enrolment.consent
    form = ConsentRecordingForm()
    status = 200
    if request.method == "POST":
        _post_only_with(console, Scope.CONSENT_WRITE)
        form = ConsentRecordingForm(request.POST, request.FILES)
        if consent is None:
            form.add_error(None, "Request a consent statement first.")
        elif form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                # The service refuses the same; checked on the size first so that an
                # oversized upload is never read into memory.
                if upload.size > settings.CONSENT_MAX_RECORDING_BYTES:
                    raise consent_services.InvalidConsentRequest(
                        f"The recording is larger than "
                        f"{settings.CONSENT_MAX_RECORDING_BYTES // (1024 * 1024)} MB.",
                        code="file_too_large",
                        status_code=413,
                    )
                consent_services.submit_recording(
                    console.access, consent, upload.read(), context=console.audit_context
                )
            except ApiError as exc:
                form.add_service_error(exc)
            else:
                return redirect(
                    "frontend:voices-step", console.tenant.slug, voice.pk, "verification"
                )
        status = 400
    return _step_page(
        request, console, enrolment, "recording", status=status, form=form,
        consent=consent if console.has(Scope.CONSENT_READ) else None,
        parts=_statement_parts(consent if console.has(Scope.CONSENT_READ) else None),
        max_mb=settings.CONSENT_MAX_RECORDING_BYTES // (1024 * 1024),
    )  # fmt: skip


# --- verification ----------
def step_verification(request, console, enrolment):
    if request.method == "POST":
        raise Http404
    consent = enrolment.consent
    evidence = None
    if consent is not None and console.has(Scope.CONSENT_READ):
        evidence = (
            ConsentEvidence.objects.for_tenant(console.tenant)
            .filter(consent=consent, kind="verification")
            .order_by("-created_at")
            .first()
        )
    return _step_page(
        request, console, enrolment, "verification", consent=consent, evidence=evidence,
        settling=consent is not None and consent.status in (
            ConsentRecord.Status.PENDING, ConsentRecord.Status.VERIFYING),
        partial="frontend/voices/verification_status.html",
    )  # fmt: skip


# --- fine-tune ----------
class FineTuneForm(ConsoleForm):
    steps = forms.IntegerField(
        label="Training steps",
        min_value=10,
        required=False,
        help_text="Leave empty for the default. More steps take longer.",
    )
    error_fields = {"invalid_request": "steps"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        steps = self.fields["steps"]
        steps.validators.append(MaxValueValidator(settings.FINE_TUNE_MAX_STEPS))
        steps.widget.attrs.update(
            max=settings.FINE_TUNE_MAX_STEPS, placeholder=settings.FINE_TUNE_STEPS
        )


def step_fine_tune(request, console, enrolment):
    voice = enrolment.voice
    form = FineTuneForm()
    status = 200
    if request.method == "POST":
        _post_only_with(console, Scope.VOICES_WRITE)
        if "cancel" in request.POST:
            job = _of_voice_or_404(FineTuneJob, console, voice, request.POST["cancel"])
            training.cancel(console.access, job, context=console.audit_context)
            return redirect("frontend:voices-step", console.tenant.slug, voice.pk, "fine-tune")
        form = FineTuneForm(request.POST)
        if form.is_valid():
            try:
                training.start(
                    console.access, voice, steps=form.cleaned_data["steps"],
                    context=console.audit_context,
                )  # fmt: skip
            except ApiError as exc:
                form.add_service_error(exc)
            else:
                return redirect("frontend:voices-step", console.tenant.slug, voice.pk, "fine-tune")
        status = 400
    return _step_page(
        request, console, enrolment, "fine-tune", status=status, form=form, job=enrolment.job,
        partial="frontend/voices/fine_tune_progress.html",
        min_recordings=settings.FINE_TUNE_MIN_RECORDINGS,
    )  # fmt: skip


# --- evaluation ----------
# (label, metric of the new voice, metric of the stock voice, metric of the talent's own takes,
#  the gate's metric names in gate_failures, higher is better)
EVALUATION_ROWS = [
    ("Speaker similarity", "speaker_similarity", "stock_similarity", "talent_similarity",
     {"speaker_similarity", "stock_similarity"}, True),
    ("Word error rate", "wer", "stock_wer", "talent_wer", {"wer", "talent_wer"}, False),
    ("Predicted MOS", "mos", "stock_mos", "talent_mos", {"mos", "stock_mos", "talent_mos"}, True),
    ("Mel cepstral distortion (dB)", "mcd_db", "stock_mcd_db", None, set(), False),
    ("Held-out sentences", "held_out_count", None, None, {"held_out_count"}, True),
]  # fmt: skip


def evaluation_rows(version: VoiceVersion) -> list[dict]:
    metrics = version.metrics or {}
    failed = {f.get("metric") for f in version.gate_failures or []}
    rows = []
    for label, mine, stock, talent, gates, higher in EVALUATION_ROWS:
        if metrics.get(mine) is None:
            continue
        rows.append(
            {
                "label": label,
                "value": metrics.get(mine),
                "stock": metrics.get(stock) if stock else None,
                "talent": metrics.get(talent) if talent else None,
                "gated": bool(gates),
                "passed": not (gates & failed),
                "higher_is_better": higher,
            }
        )
    return rows


def step_evaluation(request, console, enrolment):
    if request.method == "POST":
        raise Http404
    version = enrolment.version
    return _step_page(
        request, console, enrolment, "evaluation", version=version,
        rows=evaluation_rows(version) if version else [],
        failures=version.gate_failures if version else [],
    )  # fmt: skip


STEP_HANDLERS = {
    "talent": step_talent,
    "recordings": step_recordings,
    "statement": step_statement,
    "recording": step_recording,
    "verification": step_verification,
    "fine-tune": step_fine_tune,
    "evaluation": step_evaluation,
}


# --- playground ----------
class PlaygroundForm(ConsoleForm):
    voice = forms.ChoiceField(label="Voice")
    text = forms.CharField(
        label="Text",
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Type the text to speak."},
        strip=True,
    )
    emotion = forms.ChoiceField(label="Emotion", initial="neutral")
    speed = forms.FloatField(label="Speed", initial=1.0)
    pitch = forms.FloatField(label="Pitch (semitones)", initial=0.0)

    error_fields = {
        "text_empty": "text",
        "text_too_long": "text",
        "text_unspeakable": "text",
        "text_invalid": "text",
        "invalid_ssml": "text",
        "unknown_voice": "voice",
        "voice_not_ready": "voice",
        "consent_revoked": "voice",
    }

    def __init__(self, *args, voices, capabilities, max_characters, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["voice"].choices = [(v.slug, v.name) for v in voices]
        self.fields["emotion"].choices = [(e, e.capitalize()) for e in capabilities["emotions"]]
        self.fields["text"].max_length = max_characters
        self.fields["text"].widget.attrs["maxlength"] = max_characters
        self.fields[
            "text"
        ].help_text = f"Plain text or SSML-lite, up to {max_characters} characters."
        self.fields["text"].validators.append(MaxLengthValidator(max_characters))
        for name in ("speed", "pitch"):
            lo, hi = capabilities["controls"][name]["min"], capabilities["controls"][name]["max"]
            field = self.fields[name]
            field.validators += [MinValueValidator(lo), MaxValueValidator(hi)]
            field.widget.attrs.update(min=lo, max=hi, step="0.1" if name == "speed" else "0.5")
            field.help_text = f"{lo:g} to {hi:g}."

    def controls(self) -> dict:
        data = self.cleaned_data
        return {"emotion": data["emotion"], "speed": data["speed"], "pitch": data["pitch"]}


def _playable_voices(tenant):
    return list(
        Voice.objects.visible_to(tenant)
        .filter(status=Voice.Status.READY)
        .order_by("kind", "name")
        .only("pk", "slug", "name", "kind", "status")
    )


def _synthesize(request, console, slug: str, form: PlaygroundForm) -> SynthesisRequest:
    """The API's path: rate limit for this member, then admission (scope, voice and consent
    checks, quotas), the worker (watermark) and its result."""
    ratelimits.enforce(request, console.tenant, f"user:{request.user.pk}")
    job = synthesis.submit_as(
        console.access,
        synthesis.SynthesisParams(
            voice=slug,
            text=form.cleaned_data["text"],
            format=PLAYGROUND_FORMAT,
            controls=form.controls(),
        ),
        request.request_id,
    )
    job = synthesis.wait(job)
    if job.status != SynthesisRequest.Status.SUCCEEDED:
        raise synthesis.failure_error(job)
    return job


def playground(request, console, voice_id):
    if not console.has(Scope.SYNTHESIZE):
        raise Http404
    voice = _voice(console, voice_id, custom=False)
    tenant = console.tenant
    voices = _playable_voices(tenant)
    if voice.slug not in {v.slug for v in voices}:
        voices.append(voice)  # shown, so its own state is the message (not ready, revoked)
    capabilities = catalogue.capabilities(voice)
    kwargs = dict(
        voices=voices,
        capabilities=capabilities,
        max_characters=tenant.plan.max_text_characters,
    )
    initial = {"voice": voice.slug, "emotion": "neutral", "speed": 1.0, "pitch": 0.0}
    form = PlaygroundForm(request.POST or None, initial=initial, **kwargs)
    clip = compare = None
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                if "compare" in request.POST:
                    clip = _clip(console, request.POST.get("clip"))
                    compare = _synthesize(request, console, STOCK_SLUG, form)
                else:
                    clip = _synthesize(request, console, form.cleaned_data["voice"], form)
                status = 200
            except ApiError as exc:
                form.add_service_error(exc)
                status = exc.status_code if exc.status_code < 500 else 400
    enrolment = enrolment_of(voice) if voice.kind == Voice.Kind.CUSTOM else None
    return render_page(
        request,
        console,
        "frontend/voices/step_playground.html",
        section="voices",
        status=status,
        voice=voice,
        enrolment=enrolment,
        step="playground",
        steps=_steps(enrolment, "playground") if enrolment else None,
        form=form,
        clip=clip,
        compare=compare,
        stock_slug=STOCK_SLUG,
    )


def _clip(console, clip_id) -> SynthesisRequest | None:
    if not clip_id:
        return None
    return (
        SynthesisRequest.objects.for_tenant(console.tenant)
        .filter(pk=_uuid_or_404(clip_id), status=SynthesisRequest.Status.SUCCEEDED)
        .first()
    )


@console_view(Scope.SYNTHESIZE)
def clip_audio(request, console, clip_id):
    """A synthesized clip as stored by the worker (watermarked like every clip that leaves
    the platform); the tenant's own clips only, for members who may synthesize."""
    job = (
        SynthesisRequest.objects.for_tenant(console.tenant)
        .filter(pk=clip_id, status=SynthesisRequest.Status.SUCCEEDED)
        .exclude(audio_key="")
        .first()
    )
    if job is None:
        raise Http404
    response = HttpResponse(
        synthesis.audio_bytes(job), content_type=speech_audio.CONTENT_TYPES[job.format]
    )
    response["Content-Disposition"] = (
        f'inline; filename="{job.pk}.{speech_audio.FILE_EXTENSIONS[job.format]}"'
    )
    response["Cache-Control"] = "private, max-age=300"
    return response


urlpatterns = [
    path("<slug:slug>/voices/", voices_page, name="voices"),
    path("<slug:slug>/voices/new/", enrol_new, name="voices-new"),
    path("<slug:slug>/voices/clips/<uuid:clip_id>/audio/", clip_audio, name="voices-clip"),
    path("<slug:slug>/voices/<uuid:voice_id>/", voice_detail, name="voices-detail"),
    path("<slug:slug>/voices/<uuid:voice_id>/<slug:step>/", voice_step, name="voices-step"),
]

"""Watermark trace: upload a clip found in the wild and learn which request made it."""

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.urls import path

from frontend.console import ConsoleForm, console_view, render_page
from speech import audio
from synthesis import watermarking
from tenancy.roles import Scope


class TraceForm(ConsoleForm):
    file = forms.FileField(
        label="Audio file",
        help_text="WAV, MP3, OGG, Opus, FLAC, M4A or WebM.",
        error_messages={"required": "Choose an audio file to check."},
        widget=forms.ClearableFileInput(
            attrs={"accept": "audio/*,.wav,.mp3,.ogg,.opus,.flac,.m4a,.webm"}
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.WATERMARK_DETECT_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is too large ({filesizeformat(upload.size)}); clips up to "
                f"{filesizeformat(settings.WATERMARK_DETECT_MAX_BYTES)} can be checked."
            )
        return upload


@console_view(Scope.AUDIT_READ)
def watermark_detect(request, console):
    result = None
    status = 200
    form = TraceForm()
    if request.method == "POST":
        form = TraceForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                # identify() decides what this tenant may learn: its own request in full,
                # only "another tenant" for anyone else's clip.
                result = watermarking.identify(
                    console.tenant, form.cleaned_data["file"].read(), console.audit_context
                )
            except audio.AudioError as exc:
                form.add_error("file", exc.message)
        if form.errors:
            status = 400
    return render_page(
        request,
        console,
        "frontend/watermark.html",
        section="watermark",
        partial="frontend/watermark/_trace.html",
        status=status,
        form=form,
        result=result,
    )


urlpatterns = [
    path("<slug:slug>/watermark/", watermark_detect, name="watermark"),
]

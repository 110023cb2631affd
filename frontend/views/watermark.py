"""Watermark trace: upload a clip found in the wild and learn which request made it."""

from django.conf import settings
from django.urls import path

from frontend.console import console_view, render_page
from speech import audio
from synthesis import watermarking
from tenancy.roles import Scope


@console_view(Scope.AUDIT_READ)
def watermark_detect(request, console):
    result = error = None
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = "Choose an audio file to check."
        elif upload.size > settings.WATERMARK_DETECT_MAX_BYTES:
            error = "The file is too large."
        else:
            try:
                result = watermarking.identify(console.tenant, upload.read(), console.audit_context)
            except audio.AudioError as exc:
                error = exc.message
    return render_page(
        request,
        console,
        "frontend/watermark.html",
        section="watermark",
        result=result,
        error=error,
    )


urlpatterns = [
    path("<slug:slug>/watermark/", watermark_detect, name="watermark"),
]

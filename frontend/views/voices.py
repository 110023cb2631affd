"""Voices: the list, the enrolment wizard, training and the playground."""

from django.urls import path

from frontend.console import console_view, render_page
from tenancy.roles import Scope


@console_view(Scope.VOICES_READ)
def voices_page(request, console):
    return render_page(request, console, "frontend/placeholder.html", section="voices")


urlpatterns = [
    path("<slug:slug>/voices/", voices_page, name="voices"),
]

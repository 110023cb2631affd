"""Consent records: evidence, export for auditors, revoke."""

from django.urls import path

from frontend.console import console_view, render_page
from tenancy.roles import Scope


@console_view(Scope.CONSENT_READ)
def consents_page(request, console):
    return render_page(request, console, "frontend/placeholder.html", section="consent")


urlpatterns = [
    path("<slug:slug>/consent/", consents_page, name="consents"),
]

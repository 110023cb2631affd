"""API keys: create (secret shown once), scopes, expiry, IP allow-list, rotate, revoke."""

from django.urls import path

from frontend.console import console_view, render_page
from tenancy.roles import Scope


@console_view(Scope.KEYS_READ)
def keys_page(request, console):
    return render_page(request, console, "frontend/placeholder.html", section="keys")


urlpatterns = [
    path("<slug:slug>/keys/", keys_page, name="keys"),
]

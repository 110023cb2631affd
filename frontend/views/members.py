"""Members: invite, change role, remove."""

from django.urls import path

from frontend.console import console_view, render_page
from tenancy.roles import Scope


@console_view(Scope.MEMBERS_READ)
def members_page(request, console):
    return render_page(request, console, "frontend/placeholder.html", section="members")


urlpatterns = [
    path("<slug:slug>/members/", members_page, name="members"),
]
public_urlpatterns = []  # the invitation link (no tenant in the URL, no sign-in)

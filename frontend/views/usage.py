"""Usage: filters, charts and CSV export."""

from django.urls import path

from frontend.console import console_view, render_page
from tenancy.roles import Scope


@console_view(Scope.USAGE_READ)
def usage_page(request, console):
    return render_page(request, console, "frontend/placeholder.html", section="usage")


urlpatterns = [
    path("<slug:slug>/usage/", usage_page, name="usage"),
]

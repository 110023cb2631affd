"""Settings: the tenant's name and legal name."""

from django.urls import path

from frontend.console import console_view, render_page


@console_view()
def settings_page(request, console):
    return render_page(request, console, "frontend/placeholder.html", section="settings")


urlpatterns = [
    path("<slug:slug>/settings/", settings_page, name="settings"),
]

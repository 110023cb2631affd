"""Dashboard: usage against quota, recent jobs and alerts."""

from django.urls import path

from frontend.console import console_view, render_page


@console_view()
def dashboard_page(request, console):
    return render_page(request, console, "frontend/placeholder.html", section="dashboard")


urlpatterns = [
    path("<slug:slug>/", dashboard_page, name="dashboard"),
]

"""Rollouts: versions, percentages, metrics with intervals, decisions and actions."""

from django.urls import path

from frontend.console import console_view, render_page
from tenancy.roles import Scope


@console_view(Scope.MODELS_READ)
def rollouts_page(request, console):
    return render_page(request, console, "frontend/placeholder.html", section="rollouts")


urlpatterns = [
    path("<slug:slug>/rollouts/", rollouts_page, name="rollouts"),
]

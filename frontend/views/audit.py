"""Audit log: filters, pagination, diffs, chain status and export (read-only)."""

from django.urls import path

from audit.models import AuditEvent
from frontend.console import console_view, paginate, render_page
from tenancy.roles import Scope


@console_view(Scope.AUDIT_READ)
def audit_log(request, console):
    events = AuditEvent.objects.for_tenant(console.tenant).order_by("-seq")
    return render_page(
        request, console, "frontend/audit.html", section="audit", events=paginate(request, events)
    )


urlpatterns = [
    path("<slug:slug>/audit/", audit_log, name="audit"),
]

"""Audit log: filters, pagination, diffs, chain status and export (read-only).

The filters are the API's (`AuditEventFilter`), shown as a console form; the page and both
exports get their rows from `filtered_events`, so an export is exactly the filtered table."""

from __future__ import annotations

import json

from django import forms
from django.http import StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET

from audit import services as audit
from audit.filters import AuditEventFilter
from audit.models import AuditEvent
from frontend.console import ConsoleForm, console_view, csv_response, paginate, render_page
from tenancy.roles import Scope

# The filters the console shows; the API's others (request_id, actor_type…) work in the URL.
SHOWN_FILTERS = ("actor", "action", "target", "since", "until")


class ConsoleAuditFilter(AuditEventFilter):
    class Meta(AuditEventFilter.Meta):
        form = ConsoleForm

    def __init__(self, data=None, *args, actions=(), **kwargs):
        super().__init__(data, *args, **kwargs)
        fields = self.form.fields
        fields["actor"].label = "Actor"
        fields["actor"].help_text = "Name, e-mail or key label"
        fields["action"].label = "Action"
        # The tenant's own actions: a select of what happened here, not a guess.
        fields["action"].widget = forms.Select(
            choices=[("", "Any action"), *((a, a) for a in actions)]
        )
        fields["target"].label = "Target"
        fields["target"].help_text = "Type or name, e.g. apikey or Dana"
        for name, label in (("since", "From"), ("until", "To")):
            fields[name].label = label
            fields[name].widget = forms.DateTimeInput(attrs={"type": "datetime-local"})
            fields[name].help_text = "Your local time" if name == "since" else "Exclusive"


def filtered_events(request, console) -> tuple[ConsoleAuditFilter, object]:
    """The tenant's events under the request's filters (newest first); none when the filters
    are invalid, so a typo never exports the whole log."""
    actions = (
        AuditEvent.objects.for_tenant(console.tenant)
        .order_by("action")
        .values_list("action", flat=True)
        .distinct()
    )
    events = AuditEvent.objects.for_tenant(console.tenant).order_by("-seq")
    filterset = ConsoleAuditFilter(request.GET or None, queryset=events, actions=list(actions))
    if filterset.is_bound and not filterset.is_valid():
        return filterset, events.none()
    return filterset, filterset.qs


def diff(before, after) -> list[dict]:
    """Key by key: added, removed, changed or unchanged, with the values as JSON."""
    before = _as_dict(before)
    after = _as_dict(after)
    rows = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            kind = "added"
        elif key not in after:
            kind = "removed"
        elif before[key] != after[key]:
            kind = "changed"
        else:
            kind = "unchanged"
        rows.append(
            {
                "key": key,
                "kind": kind,
                "before": _json(before[key]) if key in before else "",
                "after": _json(after[key]) if key in after else "",
            }
        )
    return rows


def _as_dict(value) -> dict:
    if value is None:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def chain_status(console) -> dict:
    """Verify the tenant's chain now (O(n): on demand only)."""
    chain = str(console.tenant.pk)
    problems = audit.verify_chain(chain)
    return {
        "intact": not problems,
        "problems": problems,
        "events": AuditEvent.objects.for_tenant(console.tenant).filter(chain=chain).count(),
        "verified_at": timezone.now(),
    }


def _page(request, console, chain=None):
    filterset, events = filtered_events(request, console)
    pagination = paginate(request, events)
    for event in pagination.items:
        event.diff = diff(event.before, event.after)
        counts = {}
        for row in event.diff:
            counts[row["kind"]] = counts.get(row["kind"], 0) + 1
        event.diff_summary = ", ".join(
            f"{counts[k]} {k}" for k in ("changed", "added", "removed") if counts.get(k)
        )
    query = request.GET.copy()
    query.pop("page", None)
    return render_page(
        request,
        console,
        "frontend/audit/log.html",
        section="audit",
        partial="frontend/audit/_table.html",
        status=400 if filterset.form.errors else 200,
        filters=filterset.form,
        shown_filters=[filterset.form[name] for name in SHOWN_FILTERS],
        events=pagination,
        export_query=query.urlencode(),
        filtered=any(request.GET.get(name) for name in SHOWN_FILTERS),
        chain=chain,
    )


@require_GET
@console_view(Scope.AUDIT_READ)
def audit_log(request, console):
    return _page(request, console)


@require_GET
@console_view(Scope.AUDIT_READ)
def audit_verify(request, console):
    chain = chain_status(console)
    if getattr(request, "htmx", None):
        return render_page(
            request,
            console,
            "frontend/audit/log.html",
            section="audit",
            partial="frontend/audit/_chain.html",
            chain=chain,
        )
    return _page(request, console, chain=chain)


def _export(request, console, fmt: str):
    filterset, events = filtered_events(request, console)
    rows = audit.export_rows(
        console.tenant,
        events,
        fmt,
        filters=dict(request.GET.lists()),
        context=console.audit_context,
    )
    filename = f"audit-{console.tenant.slug}.{fmt}"
    if fmt == "csv":
        return csv_response(
            filename,
            audit.EXPORT_FIELDS,
            (
                [
                    json.dumps(row[name]) if name in ("before", "after") else row[name]
                    for name in audit.EXPORT_FIELDS
                ]
                for row in rows
            ),
        )
    response = StreamingHttpResponse(
        (json.dumps(row, default=str) + "\n" for row in rows),
        content_type="application/x-ndjson",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@console_view(Scope.AUDIT_READ)
def audit_export_csv(request, console):
    return _export(request, console, "csv")


@require_GET
@console_view(Scope.AUDIT_READ)
def audit_export_jsonl(request, console):
    return _export(request, console, "jsonl")


urlpatterns = [
    path("<slug:slug>/audit/", audit_log, name="audit"),
    path("<slug:slug>/audit/verify/", audit_verify, name="audit-verify"),
    path("<slug:slug>/audit/export.csv", audit_export_csv, name="audit-export-csv"),
    path("<slug:slug>/audit/export.jsonl", audit_export_jsonl, name="audit-export-jsonl"),
]

"""Usage: filters, charts and CSV export.

The filters are validated by the API's own query serializer (`UsageQuerySerializer`, whose
date-range rule is `usage.check_range`) and the key is looked up by `usage.tenant_key`, so a bad
date, a reversed or too long range and an unknown or foreign key are refused here exactly as
`GET /api/v1/usage` refuses them, with the message next to the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.urls import path
from django.utils import timezone

from core.errors import ApiError
from frontend import charts
from frontend.console import ConsoleForm, console_view, csv_response, paginate, render_page
from tenancy.api.serializers import UsageQuerySerializer
from tenancy.models import ApiKey
from tenancy.roles import Scope
from tenancy.services import quotas, usage
from voices.models import Voice

GROUPINGS = [
    ("day", "Day"),
    ("key", "API key"),
    ("voice", "Voice"),
    ("model_version", "Model version"),
]
TOP = 8  # bars shown before the rest is summed as "Other"


class UsageFilterForm(ConsoleForm):
    start = forms.CharField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.CharField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    group_by = forms.ChoiceField(label="Group by", choices=GROUPINGS, required=False)
    # Plain values with a select: the serializer parses them and `usage.tenant_key` decides
    # whether the key is the tenant's, as for the API.
    api_key = forms.CharField(label="API key", required=False, widget=forms.Select)
    voice = forms.CharField(label="Voice", required=False, widget=forms.Select)

    def __init__(self, data, *, tenant, keys, voices):
        super().__init__(data)
        self.tenant = tenant
        self.query: dict = {}
        self.fields["api_key"].widget.choices = [("", "All keys")] + [
            (str(key.pk), f"{key.name} ({key.masked})") for key in keys
        ]
        self.fields["voice"].widget.choices = [("", "All voices")] + [
            (voice.slug, f"{voice.name} ({voice.get_kind_display().lower()})") for voice in voices
        ]

    def clean(self):
        given = {name: value for name, value in self.cleaned_data.items() if value}
        params = UsageQuerySerializer(data=given)
        if not params.is_valid():
            for field, messages in params.errors.items():
                self.add_error(field if field in self.fields else None, [str(m) for m in messages])
            return self.cleaned_data
        query = dict(params.validated_data)
        try:
            query["api_key"] = usage.tenant_key(self.tenant, query.get("api_key"))
        except ApiError as exc:
            self.add_service_error(exc)
        self.query = query
        return self.cleaned_data


def filter_data(request) -> dict:
    """The query string with this month as the default range."""
    today = timezone.localdate()
    data = {"start": quotas.month_of().isoformat(), "end": today.isoformat(), "group_by": "day"}
    data.update({name: value for name, value in request.GET.items() if value and name != "page"})
    return data


@dataclass
class Row:
    label: str
    requests: int
    failed: int
    characters: int
    audio_seconds: float


def labelled(
    rows: list[dict], group_by: str, keys: dict, voices: dict, *, short: bool = False
) -> list[Row]:
    """Rows with a label a person recognises: a key's name (and mask, or its last four
    characters when `short`), a voice's name."""

    def label(value):
        if group_by == "key":
            key = keys.get(value)
            if key is None:
                return "No key" if value is None else value
            return f"{key.name} …{key.last4}" if short else f"{key.name} ({key.masked})"
        if group_by == "voice":
            return voices.get(value, value or "(none)")
        return value or "(none)"

    return [
        Row(
            label(row[group_by]),
            row["requests"],
            row["failed"],
            row["characters"],
            row["audio_seconds"],
        )
        for row in rows
    ]


def top_with_other(rows: list[Row], top: int = TOP) -> tuple[list[str], list[int]]:
    """The `top` groups by characters, the rest summed as one "Other" bar."""
    ranked = sorted(rows, key=lambda r: r.characters, reverse=True)
    labels = [r.label for r in ranked[:top]]
    values = [r.characters for r in ranked[:top]]
    rest = ranked[top:]
    if rest:
        labels.append(f"Other ({len(rest)})")
        values.append(sum(r.characters for r in rest))
    return labels, values


def usage_chart(rows: list[Row], group_by: str) -> charts.Chart:
    total = sum(r.characters for r in rows)
    if group_by == "day":
        return charts.bar(
            "usage-chart",
            "Characters per day",
            [r.label for r in rows],
            {"Characters": [r.characters for r in rows]},
            summary=f"{total:,} characters over {len(rows)} days with usage.",
        )
    labels, values = top_with_other(rows)
    name = dict(GROUPINGS)[group_by].lower()
    top = f"; most by {labels[0]} ({values[0]:,})" if labels else ""
    return charts.bar(
        "usage-chart",
        f"Characters by {name}",
        labels,
        {"Characters": values},
        horizontal=True,
        summary=f"{total:,} characters across {len(rows)} {name}s{top}.",
    )


@dataclass
class Report:
    form: UsageFilterForm
    query: dict | None  # None: the filters are invalid (the form says why)
    rows: list[dict]
    keys: dict  # id -> ApiKey, for labels
    voices: dict  # slug -> name, for labels


def build_report(request, console) -> Report:
    tenant = console.tenant
    keys = list(ApiKey.objects.for_tenant(tenant).order_by("name", "created_at"))
    voices = list(Voice.objects.visible_to(tenant).order_by("kind", "name"))
    form = UsageFilterForm(filter_data(request), tenant=tenant, keys=keys, voices=voices)
    report = Report(form, None, [], {str(k.pk): k for k in keys}, {v.slug: v.name for v in voices})
    if form.is_valid():
        query = report.query = form.query
        api_key = query.get("api_key")
        report.rows = usage.usage_rows(
            tenant,
            group_by=query["group_by"],
            start=query.get("start"),
            end=query.get("end"),
            api_key_id=api_key.pk if api_key else None,
            voice=query.get("voice"),
        )
    return report


@console_view(Scope.USAGE_READ)
def usage_page(request, console):
    report = build_report(request, console)
    context = {"form": report.form, "tenant": console.tenant}
    if report.query is not None:
        group_by = report.query["group_by"]
        rows = labelled(report.rows, group_by, report.keys, report.voices)
        params = request.GET.copy()
        params.pop("page", None)
        context.update(
            group_by=group_by,
            group_label=dict(GROUPINGS)[group_by],
            query=report.query,
            rows=paginate(request, rows),
            chart=usage_chart(rows, group_by) if rows else None,
            totals={
                "requests": sum(r.requests for r in rows),
                "failed": sum(r.failed for r in rows),
                "characters": sum(r.characters for r in rows),
                "audio_seconds": round(sum(r.audio_seconds for r in rows), 3),
            },
            querystring=params.urlencode(),
        )
    return render_page(
        request,
        console,
        "frontend/usage.html",
        section="usage",
        partial="frontend/usage_body.html",
        status=200 if report.query is not None else 400,
        **context,
    )


@console_view(Scope.USAGE_READ)
def usage_export(request, console):
    """The same report as CSV (the API's columns), with the page's filters."""
    report = build_report(request, console)
    if report.query is None:
        return render_page(
            request,
            console,
            "frontend/usage.html",
            section="usage",
            status=400,
            form=report.form,
        )
    query = report.query
    columns = usage.csv_columns(query["group_by"])
    return csv_response(
        f"usage-{query['group_by']}-{query['start']}-{query['end']}.csv",
        columns,
        ([row[column] for column in columns] for row in report.rows),
    )


urlpatterns = [
    path("<slug:slug>/usage/", usage_page, name="usage"),
    path("<slug:slug>/usage/export.csv", usage_export, name="usage-export"),
]

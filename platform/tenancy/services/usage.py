"""The usage ledger and its reports."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from core.errors import ApiError, NotFound
from tenancy.models import ApiKey, Tenant, UsageRecord

# The longest explicit date range a report covers (a year, leap day included): one report
# stays one bounded aggregate query.
MAX_RANGE_DAYS = 366

GROUPINGS = {
    "day": ("day", TruncDate("created_at")),
    "key": ("api_key", None),
    "voice": ("voice", None),
    "model_version": ("model_version", None),
}


class InvalidUsageRange(ApiError):
    default_code = "invalid_date_range"


def check_range(start: date | None, end: date | None) -> None:
    """The rule for a report's dates, for the API and the console alike: the end is not before
    the start, and an explicit range (an open end runs to today) spans at most
    MAX_RANGE_DAYS. Without a start the report covers everything, as it always has."""
    if start and end and end < start:
        raise InvalidUsageRange("The end date is before the start date.", details={"field": "end"})
    if start and ((end or timezone.localdate()) - start) >= timedelta(days=MAX_RANGE_DAYS):
        raise InvalidUsageRange(
            f"A report covers at most {MAX_RANGE_DAYS} days; choose a shorter range.",
            details={"field": "start"},
        )


def tenant_key(tenant: Tenant, api_key_id) -> ApiKey | None:
    """The tenant's own key to filter by; an unknown id and another tenant's are the same 404."""
    if not api_key_id:
        return None
    key = ApiKey.objects.for_tenant(tenant).filter(pk=api_key_id).first()
    if key is None:
        raise NotFound("Unknown API key.", details={"field": "api_key"})
    return key


def record_usage(
    tenant: Tenant,
    *,
    api_key: ApiKey | None,
    request_id: str,
    voice: str,
    characters: int,
    audio_seconds: float,
    model_version: str,
    status: str,
) -> UsageRecord:
    return UsageRecord.objects.for_tenant(tenant).create(
        tenant=tenant,
        api_key=api_key,
        request_id=request_id,
        voice=voice,
        characters=characters,
        audio_seconds=audio_seconds,
        model_version=model_version,
        status=status,
    )


def usage_rows(
    tenant: Tenant,
    *,
    group_by: str = "day",
    start: date | None = None,
    end: date | None = None,
    api_key_id=None,
    voice: str | None = None,
) -> list[dict]:
    if group_by not in GROUPINGS:
        raise ValueError(group_by)
    records = UsageRecord.objects.for_tenant(tenant)
    if start:
        records = records.filter(created_at__date__gte=start)
    if end:
        records = records.filter(created_at__date__lte=end)
    if api_key_id:
        records = records.filter(api_key_id=api_key_id)
    if voice:
        records = records.filter(voice=voice)
    name, expression = GROUPINGS[group_by]
    if expression is not None:
        records = records.annotate(**{name: expression})
    succeeded = Q(status=UsageRecord.Status.SUCCEEDED)
    rows = (
        records.values(name)
        .annotate(
            requests=Count("id"),
            failed=Count("id", filter=~succeeded),
            characters=Sum("characters", filter=succeeded, default=0),
            audio_seconds=Sum("audio_seconds", filter=succeeded, default=0.0),
        )
        .order_by(name)
    )
    out = []
    for row in rows:
        key = row.pop(name)
        row[group_by] = key.isoformat() if isinstance(key, date) else (str(key) if key else None)
        row["audio_seconds"] = round(row["audio_seconds"], 3)
        out.append(row)
    return out


def csv_columns(group_by: str) -> list[str]:
    return [group_by, "requests", "failed", "characters", "audio_seconds"]


def rows_to_csv(rows: list[dict], group_by: str) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(group_by))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()

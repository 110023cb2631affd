"""The usage ledger and its reports."""

from __future__ import annotations

import csv
import io
from datetime import date

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from tenancy.models import ApiKey, Tenant, UsageRecord

GROUPINGS = {
    "day": ("day", TruncDate("created_at")),
    "key": ("api_key", None),
    "voice": ("voice", None),
    "model_version": ("model_version", None),
}


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


def rows_to_csv(rows: list[dict], group_by: str) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=[group_by, "requests", "failed", "characters", "audio_seconds"]
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()

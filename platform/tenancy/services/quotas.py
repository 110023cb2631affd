"""Quota reservation: reserve before work, commit on success, refund on failure.

Every counter change is one conditional UPDATE (`... WHERE used + reserved + n <= limit`), so
concurrent reservations cannot overspend: PostgreSQL re-checks the condition against the row
version it waited for. Reservations settle exactly once (status moves only from `reserved`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from tenancy.models import ApiKey, QuotaCounter, QuotaReservation, Tenant
from tenancy.services.errors import QuotaExceeded

CHARACTERS = "characters"
CONCURRENT_JOBS = "concurrent_jobs"
VOICES = "voices"  # custom voices that exist
FINE_TUNES = "fine_tunes"  # fine-tunes started this month
STORAGE_BYTES = "storage_bytes"  # bytes of recordings and artefacts held
# Counts of things held (not spent per month) live in one counter in this fixed period.
NO_PERIOD = date(1970, 1, 1)
HELD_METRICS = (CONCURRENT_JOBS, VOICES, STORAGE_BYTES)

PLAN_LIMIT_MESSAGES = {
    VOICES: ("voice_limit_exceeded", "The plan allows {limit} custom voices; delete one first."),
    FINE_TUNES: (
        "fine_tune_limit_exceeded",
        "The plan allows {limit} fine-tunes per month; this month's are used up.",
    ),
    STORAGE_BYTES: (
        "storage_limit_exceeded",
        "The plan's storage ({limit} bytes) does not cover {amount} more bytes. "
        "Delete recordings or voices first.",
    ),
}


def month_of(moment: datetime | None = None) -> date:
    moment = (moment or timezone.now()).astimezone(UTC)
    return moment.date().replace(day=1)


def _scope(api_key: ApiKey | None) -> str:
    return f"key:{api_key.pk}" if api_key else "tenant"


def _counters(tenant: Tenant, metric: str, period: date):
    return QuotaCounter.objects.for_tenant(tenant).filter(metric=metric, period=period)


def _take(
    tenant: Tenant, scope: str, metric: str, period: date, amount: int, limit: int | None
) -> bool:
    rows = _counters(tenant, metric, period).filter(scope=scope)
    if limit is not None:
        rows = rows.filter(used__lte=Value(limit - amount) - F("reserved"))
    if rows.update(reserved=F("reserved") + amount) == 1:
        return True  # the usual case: one statement
    # No counter yet (the period's first reservation) or over the limit: create the counter if
    # it is missing, then try once more.
    QuotaCounter.objects.for_tenant(tenant).bulk_create(
        [QuotaCounter(tenant=tenant, scope=scope, metric=metric, period=period)],
        ignore_conflicts=True,
    )
    return rows.update(reserved=F("reserved") + amount) == 1


def _limits(tenant: Tenant, api_key: ApiKey | None, metric: str) -> list[tuple[str, int | None]]:
    plan = tenant.plan
    if metric == CHARACTERS:
        limits = [("tenant", plan.monthly_characters)]
        if api_key is not None and api_key.monthly_character_limit is not None:
            limits.append((_scope(api_key), api_key.monthly_character_limit))
        return limits
    if metric == CONCURRENT_JOBS:
        return [("tenant", plan.concurrent_jobs)]
    if metric == VOICES:
        return [("tenant", plan.max_voices)]
    if metric == FINE_TUNES:
        return [("tenant", plan.fine_tunes_per_month)]
    if metric == STORAGE_BYTES:
        return [("tenant", plan.storage_bytes)]
    raise ValueError(metric)


def period_of(metric: str) -> date:
    return NO_PERIOD if metric in HELD_METRICS else month_of()


def reserve(
    tenant: Tenant, api_key: ApiKey | None, amount: int, metric: str = CHARACTERS
) -> QuotaReservation:
    period = period_of(metric)
    with transaction.atomic():
        for scope, limit in _limits(tenant, api_key, metric):
            if not _take(tenant, scope, metric, period, amount, limit):
                if metric in PLAN_LIMIT_MESSAGES:
                    code, message = PLAN_LIMIT_MESSAGES[metric]
                    raise QuotaExceeded(
                        message.format(limit=limit, amount=amount), code=code, status_code=403
                    )
                if metric == CONCURRENT_JOBS:
                    raise QuotaExceeded(
                        f"At most {limit} jobs may run at once for this tenant.",
                        code="concurrency_limit_exceeded",
                        headers={"Retry-After": "1"},
                    )
                who = "API key's" if scope != "tenant" else "tenant's"
                raise QuotaExceeded(
                    f"The {who} monthly character quota ({limit}) does not cover "
                    f"{amount} more characters."
                )
        return QuotaReservation.objects.for_tenant(tenant).create(
            tenant=tenant, api_key=api_key, metric=metric, period=period, amount=amount
        )


def _settle(reservation: QuotaReservation, status: str, used: int) -> bool:
    tenant = reservation.tenant
    with transaction.atomic():
        moved = (
            QuotaReservation.objects.for_tenant(tenant)
            .filter(pk=reservation.pk, status=QuotaReservation.Status.RESERVED)
            .update(status=status, committed_amount=used, settled_at=timezone.now())
        )
        if not moved:
            return False  # already settled: commit/refund are idempotent
        scopes = [s for s, _ in _limits(tenant, reservation.api_key, reservation.metric)]
        _counters(tenant, reservation.metric, reservation.period).filter(scope__in=scopes).update(
            reserved=F("reserved") - reservation.amount, used=F("used") + used
        )
    reservation.status = status
    return True


def commit(reservation: QuotaReservation, actual: int | None = None) -> bool:
    used = reservation.amount if actual is None else min(actual, reservation.amount)
    if reservation.metric == CONCURRENT_JOBS:
        used = 0  # a finished job frees its slot
    return _settle(reservation, QuotaReservation.Status.COMMITTED, used)


def refund(reservation: QuotaReservation) -> bool:
    return _settle(reservation, QuotaReservation.Status.REFUNDED, 0)


def take(tenant: Tenant, metric: str, amount: int) -> QuotaReservation:
    """Reserve and commit at once: for things held (a voice, stored bytes) or spent up front."""
    with transaction.atomic():
        reservation = reserve(tenant, None, amount, metric)
        _settle(reservation, QuotaReservation.Status.COMMITTED, amount)
    return reservation


def release(tenant: Tenant, metric: str, amount: int) -> None:
    """Give back held usage (a voice deleted, bytes freed). Never goes below zero."""
    if amount <= 0:
        return
    _counters(tenant, metric, period_of(metric)).filter(scope="tenant").update(
        used=Greatest(F("used") - amount, Value(0))
    )


def held(tenant: Tenant, metric: str) -> dict:
    counter = _counters(tenant, metric, period_of(metric)).filter(scope="tenant").first()
    limit = dict(_limits(tenant, None, metric)).get("tenant")
    used = counter.used + counter.reserved if counter else 0
    return {"limit": limit, "used": used}


def plan_usage(tenant: Tenant, metrics=(VOICES, FINE_TUNES, STORAGE_BYTES)) -> dict[str, dict]:
    """`held` for several metrics in one query: {metric: {"limit": ..., "used": ...}}."""
    counters = _counters_of(tenant, metrics)
    return {
        metric: {
            "limit": dict(_limits(tenant, None, metric)).get("tenant"),
            "used": counters.get((metric, period_of(metric)), 0),
        }
        for metric in metrics
    }


def _counters_of(tenant: Tenant, metrics) -> dict[tuple[str, date], int]:
    rows = QuotaCounter.objects.for_tenant(tenant).filter(
        scope="tenant", metric__in=metrics, period__in={period_of(m) for m in metrics}
    )
    return {(row.metric, row.period): row.used + row.reserved for row in rows}


def refund_stale_reservations() -> int:
    """Refund reservations whose work died without settling them (housekeeping task)."""
    cutoff = timezone.now() - settings.QUOTA_RESERVATION_TTL
    stale = QuotaReservation.dangerously_unscoped.select_related("tenant", "api_key").filter(
        status=QuotaReservation.Status.RESERVED, created_at__lt=cutoff
    )
    return sum(refund(r) for r in stale)


def usage_summary(tenant: Tenant, api_key: ApiKey | None = None) -> dict:
    period = month_of()
    counter = _counters(tenant, CHARACTERS, period).filter(scope=_scope(api_key)).first()
    limit = dict(_limits(tenant, api_key, CHARACTERS)).get(_scope(api_key))
    used = counter.used if counter else 0
    reserved = counter.reserved if counter else 0
    return {
        "period": period.isoformat(),
        "characters_limit": limit,
        "characters_used": used,
        "characters_reserved": reserved,
        "characters_remaining": None if limit is None else max(0, limit - used - reserved),
    }

"""Dashboard: usage against quota, recent jobs and alerts.

Every member sees it; each panel only for a role with its scope (usage:read, voices:read,
consent:read, models:read). Everything is aggregated in the database, so the page makes the same
number of queries whatever the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Q
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils import timezone

from consent.models import ConsentRecord
from frontend import charts
from frontend.console import console_view, render_page
from frontend.views.usage import labelled, top_with_other
from rollout.services import lifecycle
from rollout.services.authority import Authority
from synthesis.models import SynthesisRequest
from tenancy.models import ApiKey
from tenancy.roles import Scope
from tenancy.services import quotas, usage
from voices.models import FineTuneJob, Voice

DAYS = 30  # the daily chart's span
RECENT_JOBS = 10
RECENT_FINE_TUNES = 5
CONSENT_WARNING = timedelta(days=30)  # a consent ending sooner than this asks for renewal
FAILED_WINDOW = timedelta(hours=24)
FINE_TUNE_FAILURE_WINDOW = timedelta(days=7)
QUOTA_WARNING = 0.8  # a limit used beyond this share raises an alert
ALERT_ITEMS = 5  # at most this many consents / fine-tunes named per alert group

HOLD_REASONS = {
    "insufficient_data": "not enough requests or quality samples to judge the step yet",
    "unavailable": "the metrics it is judged on are unavailable",
}


@dataclass
class Alert:
    level: str  # "bad" or "warn"
    title: str
    text: str  # what happened and what to do about it
    url: str
    link_label: str


@dataclass
class Limit:
    label: str
    used: int
    limit: int | None
    display_used: str
    display_limit: str

    @property
    def percent(self) -> int | None:
        return round(100 * self.used / self.limit) if self.limit else None


def _url(console, name: str) -> str:
    return reverse(name, args=[console.tenant.slug])


def usage_panel(console) -> dict:
    """Characters this month against the plan, the last 30 days, this month by voice and key,
    and the other plan limits the counters track."""
    tenant = console.tenant
    today = timezone.localdate()
    month = quotas.month_of()
    summary = quotas.usage_summary(tenant)
    used = summary["characters_used"] + summary["characters_reserved"]
    limit = summary["characters_limit"]
    characters = Limit(
        "Characters this month", used, limit, f"{used:,}", f"{limit:,}" if limit else "unlimited"
    )
    held = quotas.plan_usage(tenant)
    storage = held[quotas.STORAGE_BYTES]
    limits = [
        _count_limit("Custom voices", held[quotas.VOICES]),
        _count_limit("Fine-tunes this month", held[quotas.FINE_TUNES]),
        Limit(
            "Storage",
            storage["used"],
            storage["limit"],
            filesizeformat(storage["used"]),
            filesizeformat(storage["limit"]) if storage["limit"] else "unlimited",
        ),
    ]

    start = today - timedelta(days=DAYS - 1)
    daily = {r["day"]: r for r in usage.usage_rows(tenant, group_by="day", start=start, end=today)}
    days = [(start + timedelta(days=n)).isoformat() for n in range(DAYS)]
    by_voice = usage.usage_rows(tenant, group_by="voice", start=month)
    by_key = usage.usage_rows(tenant, group_by="key", start=month)
    # Labels for the groups shown: one query each, whatever the number of rows.
    keys = {
        str(k.pk): k
        for k in ApiKey.objects.for_tenant(tenant).filter(
            pk__in=[r["key"] for r in by_key if r["key"]]
        )
    }
    voices = dict(
        Voice.objects.visible_to(tenant)
        .filter(slug__in=[r["voice"] for r in by_voice])
        .values_list("slug", "name")
    )
    voice_labels, voice_values = top_with_other(labelled(by_voice, "voice", keys, voices))
    key_labels, key_values = top_with_other(labelled(by_key, "key", keys, voices, short=True))
    month_total = sum(r["characters"] for r in by_voice)
    return {
        "characters": characters,
        "limits": limits,
        # The numbers are in the canvas's name and in the text beside it.
        "gauge": charts.gauge(
            "quota-gauge",
            f"Characters this month: {used:,} of {limit:,} ({characters.percent} %)"
            if limit
            else f"Characters this month: {used:,} (no monthly limit)",
            used,
            limit,
        ),
        "daily": daily_chart(days, daily),
        "by_voice": charts.bar(
            "usage-by-voice",
            "Characters this month by voice",
            voice_labels,
            {"Characters": voice_values},
            horizontal=True,
            summary=_share_summary(voice_labels, voice_values, month_total, "voice"),
        ),
        "by_key": charts.bar(
            "usage-by-key",
            "Characters this month by API key",
            key_labels,
            {"Characters": key_values},
            horizontal=True,
            summary=_share_summary(key_labels, key_values, month_total, "key"),
        ),
        "has_month_usage": bool(by_voice),
    }


def daily_chart(days: list[str], daily: dict) -> charts.Chart:
    """Characters (left axis) and requests (right axis) per day."""
    characters = [daily[d]["characters"] if d in daily else 0 for d in days]
    requests = [daily[d]["requests"] if d in daily else 0 for d in days]
    chart = charts.line(
        "daily-usage",
        f"Characters and requests per day, last {DAYS} days",
        [d[5:] for d in days],
        {"Characters": characters, "Requests": requests},
        summary=f"{sum(characters):,} characters in {sum(requests):,} requests over the last "
        f"{DAYS} days; busiest day {max(characters):,} characters.",
    )
    # Requests are a few hundred where characters are thousands: give them their own scale.
    chart.spec["data"]["datasets"][1]["yAxisID"] = "requests"
    chart.spec["options"] = {
        "scales": {
            "y": {"beginAtZero": True, "title": {"display": True, "text": "Characters"}},
            "requests": {
                "position": "right",
                "beginAtZero": True,
                "grid": {"drawOnChartArea": False},
                "title": {"display": True, "text": "Requests"},
            },
        }
    }
    return chart


def _count_limit(label: str, held: dict) -> Limit:
    limit = held["limit"]
    return Limit(
        label, held["used"], limit, f"{held['used']:,}", f"{limit:,}" if limit else "unlimited"
    )


def _share_summary(labels, values, total, what) -> str:
    if not labels:
        return f"No usage this month by {what}."
    return f"{total:,} characters this month; most by {labels[0]} ({values[0]:,})."


def recent_requests(console) -> list[SynthesisRequest]:
    return list(
        SynthesisRequest.objects.for_tenant(console.tenant)
        .select_related("api_key")
        .order_by("-created_at")[:RECENT_JOBS]
    )


def recent_fine_tunes(console) -> list[FineTuneJob]:
    return list(
        FineTuneJob.objects.for_tenant(console.tenant)
        .select_related("voice")
        .order_by("-created_at")[:RECENT_FINE_TUNES]
    )


def alerts(console, usage_limits: list[Limit]) -> list[Alert]:
    found: list[Alert] = []
    now = timezone.now()
    if console.has(Scope.CONSENT_READ):
        found += consent_alerts(console, now)
    if console.has(Scope.USAGE_READ):
        found += failed_request_alerts(console, now)
    if console.has(Scope.VOICES_READ):
        found += fine_tune_alerts(console, now)
    if console.has(Scope.MODELS_READ):
        found += rollout_alerts(console, now)
    for item in usage_limits:
        if item.limit and item.used >= QUOTA_WARNING * item.limit:
            full = item.used >= item.limit
            found.append(
                Alert(
                    "bad" if full else "warn",
                    f"{item.label}: {item.percent} % of the plan's limit",
                    f"{item.display_used} of {item.display_limit} used. "
                    + (
                        "New work of this kind is refused until the limit resets or the plan "
                        "grows. "
                        if full
                        else "Work is refused once the limit is reached. "
                    )
                    + "Check which keys and voices use it, and ask an owner to raise the plan "
                    "if you need more.",
                    _url(console, "frontend:usage"),
                    "See usage",
                )
            )
    return found


def consent_alerts(console, now) -> list[Alert]:
    """Verified consents ending within 30 days, and ended ones still referenced by a voice."""
    referenced = Exists(Voice.objects.for_tenant(console.tenant).filter(consent=OuterRef("pk")))
    consents = (
        ConsentRecord.objects.for_tenant(console.tenant)
        .annotate(referenced=referenced)
        .filter(
            Q(status=ConsentRecord.Status.VERIFIED, valid_until__lte=now + CONSENT_WARNING)
            | Q(status__in=ConsentRecord.ENDED, referenced=True)
        )
        .select_related("talent", "voice")
        .order_by("valid_until", "ended_at")[:ALERT_ITEMS]
    )
    url = _url(console, "frontend:consents")
    out = []
    for consent in consents:
        voice = consent.voice.name if consent.voice else "no voice yet"
        if consent.status == ConsentRecord.Status.VERIFIED:
            days = max(0, (consent.valid_until - now).days)
            out.append(
                Alert(
                    "warn",
                    f"Consent of {consent.talent.name} ends in {days} day{'s' * (days != 1)}",
                    f"The consent for {voice} is valid until "
                    f"{consent.valid_until:%d %b %Y}; then the voice is disabled. Ask "
                    f"{consent.talent.name} to record a new consent statement before then.",
                    url,
                    "Open consent",
                )
            )
        else:
            out.append(
                Alert(
                    "bad",
                    f"Consent of {consent.talent.name} {consent.get_status_display().lower()}",
                    f"{voice} still refers to it and cannot synthesize; its trained artefacts "
                    "are deleted after the retention period. Record a new consent with the "
                    "talent, or delete the voice.",
                    url,
                    "Open consent",
                )
            )
    return out


def failed_request_alerts(console, now) -> list[Alert]:
    by_code = list(
        SynthesisRequest.objects.for_tenant(console.tenant)
        .filter(status=SynthesisRequest.Status.FAILED, created_at__gte=now - FAILED_WINDOW)
        .values("error_code")
        .annotate(n=Count("id"))
        .order_by("-n", "error_code")
    )
    total = sum(row["n"] for row in by_code)
    if not total:
        return []
    top = ", ".join(f"{row['error_code'] or 'unknown'} ({row['n']})" for row in by_code[:3])
    return [
        Alert(
            "bad",
            f"{total} synthesis request{'s' * (total != 1)} failed in the last 24 hours",
            f"Most common errors: {top}. Failed requests are refunded; look up the codes in "
            "the API reference and check the calling keys and voices.",
            _url(console, "frontend:usage"),
            "See usage",
        )
    ]


def fine_tune_alerts(console, now) -> list[Alert]:
    jobs = (
        FineTuneJob.objects.for_tenant(console.tenant)
        .filter(status=FineTuneJob.Status.FAILED, finished_at__gte=now - FINE_TUNE_FAILURE_WINDOW)
        .select_related("voice")
        .order_by("-finished_at")[:ALERT_ITEMS]
    )
    url = _url(console, "frontend:voices")
    return [
        Alert(
            "bad",
            f"Fine-tune of {job.voice.name} failed",
            f"{job.error_message or job.error_code or 'The training job failed.'} "
            "Check the voice's training recordings, then start the fine-tune again.",
            url,
            "Open voices",
        )
        for job in jobs
    ]


def rollout_alerts(console, now) -> list[Alert]:
    authority = Authority.for_access(console.access, console.audit_context)
    url = _url(console, "frontend:rollouts")
    out = []
    rollouts = list(lifecycle.needing_attention(authority, now=now))
    # The custom voices the rollouts ramp, by name (one query; platform rollouts have none).
    voice_ids = [r.family.removeprefix("voice:") for r in rollouts if r.family.startswith("voice:")]
    names = {
        f"voice:{pk}": name
        for pk, name in Voice.objects.for_tenant(console.tenant)
        .filter(pk__in=voice_ids)
        .values_list("pk", "name")
    }
    for rollout in rollouts:
        family = names.get(rollout.family, "the stock voices" if rollout.is_platform else "a voice")
        what = f"Rollout of {family} {rollout.candidate.semver}"
        if rollout.state == rollout.State.ROLLED_BACK:
            title, level = f"{what} was rolled back", "bad"
            advice = "The stable version serves all traffic. Fix the version, then retry."
        elif rollout.state == rollout.State.PAUSED:
            title, level = f"{what} is paused at {rollout.percent:g} %", "warn"
            advice = "Review its evidence, then resume or roll it back."
        else:
            title, level = f"{what} is holding at {rollout.percent:g} %", "warn"
            advice = "Its step does not advance until there is enough evidence."
        reason = HOLD_REASONS.get(rollout.hold_reason) if rollout.hold_reason else None
        reason = reason or rollout.latest_reason or ""
        reason = reason[:1].upper() + reason[1:]
        out.append(
            Alert(
                level,
                title,
                f"{reason.rstrip('.')}. {advice}" if reason else advice,
                url,
                "Open rollouts",
            )
        )
    return out


@console_view()
def dashboard_page(request, console):
    context: dict = {"tenant": console.tenant, "usage": None, "requests": None, "fine_tunes": None}
    limits: list[Limit] = []
    if console.has(Scope.USAGE_READ):
        panel = context["usage"] = usage_panel(console)
        limits = [panel["characters"], *panel["limits"]]
        context["requests"] = recent_requests(console)
    if console.has(Scope.VOICES_READ):
        context["fine_tunes"] = recent_fine_tunes(console)
    context["alerts"] = alerts(console, limits)
    context["show_alerts"] = any(
        console.has(s)
        for s in (Scope.USAGE_READ, Scope.VOICES_READ, Scope.CONSENT_READ, Scope.MODELS_READ)
    )
    # Shortcuts for roles that may act; the pages behind them refuse the others anyway.
    context["actions"] = [
        {"label": label, "url": _url(console, name)}
        for scope, label, name in (
            (Scope.VOICES_WRITE, "New voice", "frontend:voices"),
            (Scope.KEYS_WRITE, "Create API key", "frontend:keys"),
        )
        if console.has(scope)
    ]
    return render_page(request, console, "frontend/dashboard.html", section="dashboard", **context)


urlpatterns = [
    path("<slug:slug>/", dashboard_page, name="dashboard"),
]

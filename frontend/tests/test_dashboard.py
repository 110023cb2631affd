"""The dashboard without a browser: panels per role, numbers, alerts, isolation, query budget."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from frontend.tests import dashboard_data as data
from voices.models import FineTuneJob

pytestmark = pytest.mark.django_db


def dashboard(client, user, tenant):
    client.force_login(user)
    response = client.get(f"/console/{tenant.slug}/")
    assert response.status_code == 200
    return response


def alert_titles(response) -> list[str]:
    return [alert.title for alert in response.context["alerts"]]


def test_panels_follow_the_role(client, tenant, make_member, make_key):
    voice = data.custom_voice(tenant, "Aurora")
    data.consent(tenant, "Ada Lovelace", voice=voice, valid_for=timedelta(days=10))
    data.use(tenant, key=make_key(tenant).key, characters=120)

    owner = dashboard(client, make_member(tenant, "owner"), tenant).content.decode()
    for text in (
        "Alerts",
        "Usage against your plan",
        "Recent synthesis requests",
        "Recent fine-tunes",
        "Consent of Ada Lovelace",
        "New voice",
        "Create API key",
    ):
        assert text in owner, text

    auditor = dashboard(client, make_member(tenant, "auditor"), tenant).content.decode()
    assert "Usage against your plan" in auditor and "Alerts" in auditor
    assert "Consent of Ada Lovelace" in auditor  # auditors read consent
    assert "New voice" not in auditor and "Create API key" not in auditor  # no write actions

    developer = dashboard(client, make_member(tenant, "developer"), tenant).content.decode()
    assert "Usage against your plan" in developer and "Create API key" in developer
    assert "Ada Lovelace" not in developer  # no consent:read
    assert "New voice" not in developer

    manager = dashboard(client, make_member(tenant, "brand_manager"), tenant).content.decode()
    assert "New voice" in manager and "Create API key" not in manager
    assert "Consent of Ada Lovelace" in manager


def test_numbers_match_the_data(client, tenant, other_tenant, make_member, make_key, make_job):
    web, app = make_key(tenant, name="web").key, make_key(tenant, name="app").key
    aurora = data.custom_voice(tenant, "Aurora", slug="aurora")
    data.use(tenant, key=web, voice="stock-joe", characters=100, count=3)
    data.use(tenant, key=app, voice="aurora", characters=50, count=2)
    data.use(tenant, key=app, voice="aurora", characters=999, status="failed")
    data.use(tenant, key=web, characters=70, days_ago=12)  # in the 30 days, maybe last month
    data.use(tenant, key=web, characters=5000, days_ago=45)  # outside the chart
    data.spend(tenant, 400, key=web)
    # Another tenant's usage, quota and jobs never count.
    foreign_key = make_key(other_tenant, name="web").key
    data.use(other_tenant, key=foreign_key, characters=777_777, count=2)
    data.spend(other_tenant, 9999)
    make_job(other_tenant, status="failed", error_code="worker_lost")
    for n in range(3):
        make_job(tenant, api_key=web, characters=10 + n, format="mp3", status="succeeded")
    FineTuneJob.objects.for_tenant(tenant).create(
        tenant=tenant, voice=aurora, status="running", percent=42
    )

    response = dashboard(client, make_member(tenant, "owner"), tenant)
    panel = response.context["usage"]
    assert panel["characters"].used == 400 and panel["characters"].limit == 2_000_000
    daily = panel["daily"].spec["data"]["datasets"]
    assert len(daily[0]["data"]) == 30
    assert sum(daily[0]["data"]) == 300 + 100 + 70  # characters: failed ones are not billed
    assert sum(daily[1]["data"]) == 3 + 2 + 1 + 1  # requests, failed included
    assert daily[0]["data"][-1] == 400
    by_voice = panel["by_voice"].spec["data"]
    this_month = 70 if timezone.localdate().day > 12 else 0
    assert dict(zip(by_voice["labels"], by_voice["datasets"][0]["data"])) == {
        "Joe (US English, stock)": 300 + this_month,
        "Aurora": 100,
    }
    by_key = panel["by_key"].spec["data"]
    assert by_key["labels"][0] == f"web …{web.last4}"
    assert by_key["datasets"][0]["data"] == [300 + this_month, 100]
    limits = {item.label: (item.used, item.limit) for item in panel["limits"]}
    assert limits["Custom voices"][1] == 10 and limits["Fine-tunes this month"][1] == 5

    html = response.content.decode()
    assert "400" in html and "2,000,000" in html
    assert web.masked in html and foreign_key.masked not in html
    assert len(response.context["requests"]) == 3
    assert "42 %" in html
    assert "777" not in html and "worker_lost" not in html


def test_alerts_fire_and_say_what_to_do(client, make_tenant, make_member, make_job):
    tenant = make_tenant("acme", monthly_characters=1000)
    aurora = data.custom_voice(tenant, "Aurora")
    max_voice = data.custom_voice(tenant, "Max")
    owner = make_member(tenant, "owner")
    assert "All clear" in dashboard(client, owner, tenant).content.decode()

    data.consent(tenant, "Ada Lovelace", voice=aurora, valid_for=timedelta(days=10))
    data.consent(tenant, "Alan Turing", valid_for=timedelta(days=90))  # not yet
    data.consent(tenant, "Grace Hopper", voice=max_voice, status="revoked")
    for code in ("worker_lost", "worker_lost", "synthesis_timeout"):
        make_job(tenant, status="failed", error_code=code)
    old = make_job(tenant, status="failed", error_code="ancient")
    type(old).objects.for_tenant(tenant).filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    FineTuneJob.objects.for_tenant(tenant).create(
        tenant=tenant,
        voice=aurora,
        status="failed",
        error_code="too_few_recordings",
        error_message="Only 3 accepted recordings; at least 20 are needed.",
        finished_at=timezone.now(),
    )
    data.held_rollout(tenant, aurora)
    data.held_rollout(
        tenant,
        max_voice,
        state="paused",
        hold_reason="",
        reason="Guardrail failed: WER rose by 4 points.",
    )
    data.spend(tenant, 850)

    response = dashboard(client, owner, tenant)
    titles = alert_titles(response)
    html = response.content.decode()
    assert "All clear" not in html
    assert "Consent of Ada Lovelace ends in 9 days" in titles or (
        "Consent of Ada Lovelace ends in 10 days" in titles
    )
    assert "Consent of Grace Hopper revoked" in titles
    assert not any("Alan Turing" in t for t in titles)
    assert "3 synthesis requests failed in the last 24 hours" in titles
    failed = next(a for a in response.context["alerts"] if "synthesis requests failed" in a.title)
    assert "worker_lost (2), synthesis_timeout (1)." in failed.text  # not the 2-day-old one
    assert "Fine-tune of Aurora failed" in titles and "at least 20 are needed" in html
    assert "Rollout of Aurora 1.1.0 is holding at 5 %" in titles
    assert "Not enough requests or quality samples" in html
    assert "Rollout of Max 1.1.0 is paused at 5 %" in titles and "WER rose by 4 points" in html
    assert "Characters this month: 85 % of the plan&#x27;s limit" in html
    # Each alert links to where it is handled.
    links = {alert.link_label: alert.url for alert in response.context["alerts"]}
    assert links == {
        "Open consent": f"/console/{tenant.slug}/consent/",
        "See usage": f"/console/{tenant.slug}/usage/",
        "Open voices": f"/console/{tenant.slug}/voices/",
        "Open rollouts": f"/console/{tenant.slug}/rollouts/",
    }

    # A developer reads no consent, so no consent alert; the others stay.
    developer_titles = alert_titles(dashboard(client, make_member(tenant, "developer"), tenant))
    assert not any(t.startswith("Consent") for t in developer_titles)
    assert "3 synthesis requests failed in the last 24 hours" in developer_titles


def test_other_tenants_trouble_never_shows(client, tenant, other_tenant, make_member, make_job):
    voice = data.custom_voice(other_tenant, "Theirs")
    data.consent(other_tenant, "Someone Else", voice=voice, valid_for=timedelta(days=3))
    data.held_rollout(other_tenant, voice)
    make_job(other_tenant, status="failed", error_code="worker_lost")
    data.spend(other_tenant, 1_999_000)
    response = dashboard(client, make_member(tenant, "owner"), tenant)
    assert response.context["alerts"] == []
    assert "All clear" in response.content.decode()
    assert response.context["usage"]["characters"].used == 0


def _seed(tenant, make_key, make_job, *, days, jobs):
    keys = [make_key(tenant, name=f"key {n}").key for n in range(3)]
    custom = [data.custom_voice(tenant, f"Voice {n}") for n in range(3)]
    voices = ["stock-joe"] + [voice.slug for voice in custom]
    for voice in custom[: min(jobs, 3)]:
        data.held_rollout(tenant, voice)
    for day in range(days):
        for n, key in enumerate(keys):
            data.use(
                tenant,
                key=key,
                voice=voices[(day + n) % len(voices)],
                characters=100 + day,
                days_ago=day,
            )
    for n in range(jobs):
        make_job(
            tenant,
            api_key=keys[n % 3],
            status="failed" if n % 5 == 0 else "succeeded",
            error_code=f"code_{n % 4}" if n % 5 == 0 else "",
        )
        data.consent(tenant, f"Talent {n}", valid_for=timedelta(days=1 + n))
        FineTuneJob.objects.for_tenant(tenant).create(
            tenant=tenant,
            voice=custom[n % 3],
            status="failed",
            error_code="gate_failed",
            finished_at=timezone.now(),
        )


def test_queries_do_not_grow_with_data(
    client, tenant, make_member, make_key, make_job, page_queries
):
    client.force_login(make_member(tenant, "owner"))
    url = f"/console/{tenant.slug}/"
    _seed(tenant, make_key, make_job, days=1, jobs=1)
    client.get(url)  # warm caches (content types, the stock voice)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    _seed(tenant, make_key, make_job, days=30, jobs=30)
    with page_queries(), CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]


def test_charts_show_the_top_eight_and_sum_the_rest():
    from frontend.views.usage import Row, top_with_other

    rows = [Row(f"voice {n}", 1, 0, 100 * n, 0.0) for n in range(1, 12)]
    labels, values = top_with_other(rows)
    assert labels[:2] == ["voice 11", "voice 10"] and labels[-1] == "Other (3)"
    assert len(labels) == 9 and values[-1] == 100 + 200 + 300

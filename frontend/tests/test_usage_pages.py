"""The usage page without a browser: filters, CSV, bad input, isolation and query budget."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from frontend.tests import dashboard_data as data
from tenancy.services import usage

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate  # called in each test: a run may cross midnight


@pytest.fixture
def seeded(tenant, other_tenant, make_key):
    """Two keys, two voices, usage today and 20 days ago; another tenant's usage too."""
    web, app = make_key(tenant, name="web").key, make_key(tenant, name="app").key
    data.custom_voice(tenant, "Aurora", slug="aurora")
    data.use(tenant, key=web, voice="stock-joe", characters=100, count=2)
    data.use(tenant, key=app, voice="aurora", characters=40, count=3)
    data.use(tenant, key=app, voice="aurora", characters=500, status="failed")
    data.use(
        tenant,
        key=web,
        voice="aurora",
        characters=7,
        days_ago=20,
        model_version="adapted:aurora-v1",
    )
    foreign = make_key(other_tenant, name="web").key
    data.use(other_tenant, key=foreign, voice="stock-joe", characters=55_555)
    return {"web": web, "app": app, "foreign": foreign}


def get(client, tenant, path="usage/", **params):
    return client.get(f"/console/{tenant.slug}/{path}", params)


@pytest.fixture
def member(client, tenant, make_member):
    client.force_login(make_member(tenant, "auditor"))  # read-only, and may read usage
    return client


def rows_of(response) -> dict:
    return {row.label: row for row in response.context["rows"].page.object_list}


def test_defaults_to_this_month_by_day(member, tenant, seeded):
    response = get(member, tenant)
    assert response.status_code == 200
    form = response.context["form"]
    today = TODAY()
    assert form["start"].value() == today.replace(day=1).isoformat()
    assert form["end"].value() == today.isoformat()
    rows = rows_of(response)
    assert rows[today.isoformat()].characters == 200 + 120  # failed requests not billed
    assert rows[today.isoformat()].requests == 6 and rows[today.isoformat()].failed == 1
    assert (today - timedelta(days=20)).isoformat() not in rows or today.day > 20
    assert response.context["totals"]["characters"] == sum(r.characters for r in rows.values())
    html = response.content.decode()
    assert "55,555" not in html and str(seeded["foreign"].pk) not in html
    # The key select lists the tenant's own keys only; voices: its own and the stock ones.
    choices = dict(form.fields["api_key"].widget.choices)
    assert set(choices) == {"", str(seeded["web"].pk), str(seeded["app"].pk)}
    voices = dict(form.fields["voice"].widget.choices)
    assert {"aurora", "stock-joe"} <= set(voices)


def test_filters_filter(member, tenant, seeded):
    start = (TODAY() - timedelta(days=30)).isoformat()
    by_key = rows_of(get(member, tenant, start=start, group_by="key"))
    assert by_key[f"web ({seeded['web'].masked})"].characters == 207
    assert by_key[f"app ({seeded['app'].masked})"].characters == 120

    only_app = rows_of(get(member, tenant, start=start, group_by="voice", api_key=seeded["app"].pk))
    assert {label: r.characters for label, r in only_app.items()} == {"Aurora": 120}

    aurora = rows_of(get(member, tenant, start=start, group_by="model_version", voice="aurora"))
    assert {label: r.characters for label, r in aurora.items()} == {
        "piper:en_US-joe-medium": 120,
        "adapted:aurora-v1": 7,
    }
    old_only = (TODAY() - timedelta(days=20)).isoformat()
    by_day = rows_of(get(member, tenant, start=old_only, end=old_only))
    assert {label: r.characters for label, r in by_day.items()} == {old_only: 7}
    empty = get(member, tenant, start=old_only, end=old_only, voice="stock-joe")
    assert "No usage in this range" in empty.content.decode()


def test_csv_honours_the_filters(member, tenant, seeded):
    start = (TODAY() - timedelta(days=30)).isoformat()
    response = get(
        member, tenant, "usage/export.csv", start=start, group_by="voice", api_key=seeded["web"].pk
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == usage.csv_columns("voice")
    assert {r["voice"]: int(r["characters"]) for r in rows} == {"stock-joe": 200, "aurora": 7}
    # The same columns and rows as the API's CSV.
    api_rows = usage.usage_rows(
        tenant, group_by="voice", start=TODAY() - timedelta(days=30), api_key_id=seeded["web"].pk
    )
    assert response.content.decode().replace("\r\n", "\n") == usage.rows_to_csv(
        api_rows, "voice"
    ).replace("\r\n", "\n")
    # The page links the export with its own filters.
    page = get(member, tenant, start=start, group_by="voice", api_key=seeded["web"].pk)
    assert "usage/export.csv?start=" in page.content.decode()
    bad = get(member, tenant, "usage/export.csv", start="yesterday")
    assert bad.status_code == 400 and "Date has wrong format" in bad.content.decode()


def field_error(response, field: str) -> str:
    assert response.status_code == 400
    return " ".join(response.context["form"].errors.get(field, []))


def test_bad_filters_are_400_with_the_message_next_to_the_field(
    member, tenant, seeded, make_key, client_for
):
    today = TODAY()
    assert "wrong format" in field_error(get(member, tenant, start="31/12/2026"), "start")
    assert "wrong format" in field_error(get(member, tenant, end="soon"), "end")
    reversed_range = get(
        member, tenant, start=today.isoformat(), end=(today - timedelta(days=1)).isoformat()
    )
    assert "before the start" in field_error(reversed_range, "end")
    too_long = get(member, tenant, start=(today - timedelta(days=400)).isoformat())
    assert f"at most {usage.MAX_RANGE_DAYS} days" in field_error(too_long, "start")
    assert "valid choice" in field_error(get(member, tenant, group_by="planet"), "group_by")
    assert "valid UUID" in field_error(get(member, tenant, api_key="nope"), "api_key")
    foreign = get(member, tenant, api_key=seeded["foreign"].pk)
    unknown = get(member, tenant, api_key=uuid.uuid4())
    assert field_error(foreign, "api_key") == field_error(unknown, "api_key") == "Unknown API key."
    html = foreign.content.decode()
    assert 'id="id_api_key_error"' in html and 'aria-invalid="true"' in html
    assert "55,555" not in html

    # The API refuses the same filters with the same rule.
    api = client_for(make_key(tenant, scopes=["usage:read"]).token)
    api_reversed = api.get(
        "/api/v1/usage",
        {"start": today.isoformat(), "end": (today - timedelta(days=1)).isoformat()},
    )
    assert api_reversed.status_code == 400
    assert "before the start" in api_reversed.json()["error"]["details"]["fields"]["end"]
    api_too_long = api.get("/api/v1/usage", {"start": (today - timedelta(days=400)).isoformat()})
    assert api_too_long.status_code == 400
    assert api.get("/api/v1/usage", {"api_key": seeded["foreign"].pk}).status_code == 404


def test_htmx_gets_the_fragment(member, tenant, seeded):
    response = member.get(
        f"/console/{tenant.slug}/usage/", {"group_by": "voice"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert 'id="usage-filters"' in html and 'id="usage-table"' in html
    assert 'hx-swap-oob="innerHTML"' in html  # the polite announcement of the new totals
    bad = member.get(f"/console/{tenant.slug}/usage/", {"end": "never"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and "<html" not in bad.content.decode()
    assert "wrong format" in bad.content.decode()


def test_usage_is_scoped_to_membership(client, tenant, other_tenant, make_member, seeded):
    client.force_login(make_member(other_tenant, "owner"))
    assert get(client, tenant).status_code == 404
    assert get(client, tenant, "usage/export.csv").status_code == 404
    client.logout()
    assert get(client, tenant).status_code == 302


def test_queries_do_not_grow_with_data(member, tenant, make_key, page_queries):
    keys = [make_key(tenant, name=f"key {n}").key for n in range(2)]
    data.use(tenant, key=keys[0])
    url = f"/console/{tenant.slug}/usage/"
    member.get(url)
    with CaptureQueriesContext(connection) as few:
        assert member.get(url, {"api_key": keys[0].pk}).status_code == 200
    keys += [make_key(tenant, name=f"key {n}").key for n in range(2, 6)]
    voices = ["stock-joe"] + [data.custom_voice(tenant, f"Voice {n}").slug for n in range(4)]
    for day in range(30):
        for n, key in enumerate(keys):
            data.use(tenant, key=key, voice=voices[(day + n) % 5], days_ago=day)
    for group_by in ("day", "key", "voice", "model_version"):
        with page_queries(), CaptureQueriesContext(connection) as many:
            response = member.get(
                url,
                {
                    "api_key": keys[0].pk,
                    "group_by": group_by,
                    "start": (TODAY() - timedelta(days=40)).isoformat(),
                },
            )
            assert response.status_code == 200
        assert len(many) == len(few), group_by
    by_day = member.get(url, {"start": (TODAY() - timedelta(days=40)).isoformat()})
    assert by_day.context["rows"].page.paginator.num_pages == 2  # 30 days, 25 a page

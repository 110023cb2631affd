"""No main console page makes more than PAGE_QUERY_BUDGET queries, however much data there is."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from frontend.console import NAV
from frontend.tests.conftest import PAGE_QUERY_BUDGET

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_tenant(tenant, make_key, make_member, make_job):
    """A tenant with a few dozen of everything the main pages list."""
    from tenancy.services import usage

    keys = [make_key(tenant, name=f"app {n}").key for n in range(30)]
    for n in range(12):
        make_member(tenant, ["developer", "auditor", "brand_manager"][n % 3])
    now = timezone.now()
    for n in range(30):
        status = "failed" if n % 4 == 0 else "succeeded"
        job = make_job(tenant, api_key=keys[n], status=status)
        record = usage.record_usage(
            tenant,
            api_key=keys[n % 5],
            request_id=job.request_id,
            voice="stock-joe",
            characters=100 + n,
            audio_seconds=2.5,
            model_version="x",
            status=status,
        )
        record.created_at = now - timedelta(days=n % 20)
        record.save(update_fields=["created_at"])
    return tenant


def test_every_main_page_stays_within_the_query_budget(
    client, busy_tenant, make_member, django_assert_max_num_queries
):
    owner = make_member(busy_tenant, "owner", email=f"owner-{uuid.uuid4().hex[:6]}@example.com")
    client.force_login(owner)
    for item in NAV:
        url = reverse(item.url_name, args=[busy_tenant.slug])
        with django_assert_max_num_queries(PAGE_QUERY_BUDGET):
            response = client.get(url)
        assert response.status_code == 200, url

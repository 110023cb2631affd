"""A tenant's own voice wins over a stock voice of the same slug; other tenants keep stock.
(The embedded end-to-end test, tests/test_embedded.py, proves the same on SQLite, which sorts
NULL tenants first.)"""

import pytest

from voices.models import Voice
from voices.services import resolve_voice
from voices.tests.journey import verified_voice_rows

pytestmark = pytest.mark.django_db


def test_own_voice_shadows_the_stock_voice_of_the_same_slug(tenant, other_tenant):
    # The API refuses stock slugs for custom voices; a row made behind its back still wins.
    stock = Voice.objects.visible_to(tenant).get(slug="stock-joe", tenant=None)
    own = verified_voice_rows(tenant, slug="stock-joe", recordings=0)
    Voice.objects.for_tenant(tenant).filter(pk=own.pk).update(
        status=Voice.Status.READY, model_version=stock.model_version
    )
    assert resolve_voice(tenant, "stock-joe").pk == own.pk
    assert resolve_voice(other_tenant, "stock-joe").pk == stock.pk

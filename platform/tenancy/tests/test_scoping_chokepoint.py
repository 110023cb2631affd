"""The scoping chokepoint fails closed everywhere Django and DRF look at rows: filters,
relation fields, validators, the renderer, writes, and every HTTP method.

Regressions: tenant B's key listed every tenant's API keys in the browsable API's filter form,
and `?api_key=<A's key>` answered differently from an unknown id (an existence oracle).
"""

from __future__ import annotations

import uuid

import django_filters
import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from consent.api.serializers import ConsentRequestSerializer
from consent.models import ConsentEvidence, ConsentRecord, VoiceTalent
from core import scoping
from core.filters import TenantScopedFilterBackend
from core.scoping import TenantScopedManager, TenantScopeError
from synthesis.models import SynthesisRequest
from tenancy.api.base import TenantScopedMixin
from tenancy.models import ApiKey, Membership, UsageRecord
from voices.api.serializers import VoiceCreateSerializer
from voices.models import FineTuneJob, TrainingRecording, Voice, VoiceVersion

pytestmark = pytest.mark.django_db


# --- fixtures -------------------------------------------------------------------------------
@pytest.fixture
def victim_rows(tenant, make_key, make_member, make_job):
    """One row of every tenant-owned kind in the victim tenant A."""
    key = make_key(tenant, name="victim key").key
    make_member(tenant, "developer")
    talent = VoiceTalent.objects.for_tenant(tenant).create(name="Victim Talent")
    voice = Voice.objects.for_tenant(tenant).create(
        slug="victim-voice", name="Victim", kind=Voice.Kind.CUSTOM, talent=talent
    )
    consent = ConsentRecord.objects.for_tenant(tenant).create(
        talent=talent,
        voice=voice,
        language="en-US",
        template_version=1,
        company="Victim Ltd",
        purpose="p",
        challenge="c",
        statement="s",
        statement_expires_at=timezone.now(),
    )
    return {
        "key": key,
        "voice": voice,
        "talent": talent,
        "consent": consent,
        "recording": TrainingRecording.objects.for_tenant(tenant).create(
            voice=voice, filename="a.wav", transcript="t"
        ),
        "fine_tune": FineTuneJob.objects.for_tenant(tenant).create(voice=voice),
        "job": make_job(tenant, api_key=key),
    }


# Serializers that views use for writes besides their `serializer_class`.
WRITE_SERIALIZERS = (ConsentRequestSerializer, VoiceCreateSerializer)


def _scoped_views():
    """Every view class behind a URL that scopes by tenant."""

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                cls = getattr(pattern.callback, "cls", None)
                if cls is not None and issubclass(cls, TenantScopedMixin):
                    yield cls

    return sorted(set(walk(get_resolver().url_patterns)), key=lambda c: c.__name__)


def _drf_request(tenant):
    request = Request(APIRequestFactory().get("/"))
    request.tenant = tenant
    return request


def _tenant_of(row):
    return getattr(row, "tenant_id", None)


def _assert_only_visible_rows(queryset, tenant, foreign_pks):
    rows = list(queryset)
    assert not {row.pk for row in rows} & foreign_pks
    assert all(_tenant_of(row) in (tenant.pk, None) for row in rows)


# --- the walk ------------------------------------------------------------------------------
def test_no_filter_or_relation_field_names_a_foreign_row(victim_rows, other_tenant):
    foreign_pks = {row.pk for row in victim_rows.values()}
    foreign_pks |= set(Membership.dangerously_unscoped.values_list("pk", flat=True))
    views = _scoped_views()
    assert len(views) >= 8, views
    relation_filters = 0
    for view_class in views:
        view = view_class()
        view.request = _drf_request(other_tenant)
        view.format_kwarg = None
        with scoping.tenant_context(other_tenant):
            if view_class.scoped_model is not None:
                queryset = getattr(view_class.scoped_model.objects, view_class.scope_method)(
                    other_tenant
                )
                filterset_class = TenantScopedFilterBackend().get_filterset_class(view, queryset)
                if filterset_class is not None:
                    filterset = filterset_class(data={}, queryset=queryset, request=view.request)
                    for name, filter_ in filterset.filters.items():
                        if not isinstance(filter_, django_filters.ModelChoiceFilter):
                            continue
                        relation_filters += 1
                        field = filterset.form.fields[name]
                        _assert_only_visible_rows(field.queryset, other_tenant, foreign_pks)
                        # A foreign id and an unknown id get the same answer.
                        answers = []
                        related = filter_.queryset.model
                        victim = next(
                            (r for r in victim_rows.values() if isinstance(r, related)),
                            victim_rows["key"],
                        )
                        for value in (victim.pk, uuid.uuid4()):
                            probe = filterset_class(
                                data={name: str(value)}, queryset=queryset, request=view.request
                            )
                            answers.append((probe.is_valid(), dict(probe.errors)))
                        assert answers[0] == answers[1], (view_class, name, answers)
            serializer_class = getattr(view_class, "serializer_class", None)
            for cls in filter(None, (serializer_class, *WRITE_SERIALIZERS)):
                serializer = cls(context={"request": view.request, "view": view})
                for name, field in serializer.fields.items():
                    if isinstance(field, serializers.ManyRelatedField):
                        field = field.child_relation
                    if isinstance(field, serializers.RelatedField) and not field.read_only:
                        _assert_only_visible_rows(field.get_queryset(), other_tenant, foreign_pks)
    # The synthesis-request list's `api_key` filter is the case that leaked.
    assert relation_filters >= 1


def test_default_managers_refuse_to_list_without_a_tenant(victim_rows):
    for model in (
        ApiKey,
        Membership,
        SynthesisRequest,
        UsageRecord,
        Voice,
        VoiceTalent,
        ConsentRecord,
        ConsentEvidence,
        TrainingRecording,
        FineTuneJob,
        VoiceVersion,
    ):
        assert isinstance(model._default_manager, TenantScopedManager)
        queryset = model._default_manager.all()  # composing is fine (filters do it at import)
        with pytest.raises(TenantScopeError):
            list(queryset)
        with pytest.raises(TenantScopeError):
            queryset.count()
        with pytest.raises(TenantScopeError):
            ApiKey.dangerously_unscoped.filter(pk__in=model._default_manager.values("pk"))


def test_html_accept_gets_json_without_foreign_keys(
    victim_rows, other_tenant, make_key, client_for
):
    attacker = client_for(make_key(other_tenant).token)
    response = attacker.get("/api/v1/synthesis-requests/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    victim_key = victim_rows["key"]
    assert victim_key.key_id not in response.content.decode()
    assert "victim key" not in response.content.decode()


@pytest.mark.parametrize(
    "path",
    ["/api/v1/synthesis-requests/?api_key={}", "/api/v1/usage?api_key={}"],
)
def test_foreign_id_answers_like_an_unknown_one(
    path, victim_rows, other_tenant, make_key, client_for
):
    attacker = client_for(make_key(other_tenant).token)
    foreign = attacker.get(path.format(victim_rows["key"].pk))
    unknown = attacker.get(path.format(uuid.uuid4()))
    assert foreign.status_code == unknown.status_code and foreign.status_code in (400, 404)
    assert foreign.json()["error"]["code"] == unknown.json()["error"]["code"]
    assert foreign.json()["error"]["message"] == unknown.json()["error"]["message"]


# --- writes --------------------------------------------------------------------------------
def test_scoped_querysets_refuse_writes_into_another_tenant(tenant, other_tenant, make_key):
    key = make_key(tenant).key
    scoped = ApiKey.objects.for_tenant(tenant)
    with pytest.raises(TenantScopeError):
        scoped.create(tenant=other_tenant, name="x", key_id="x" * 12, digest="0", last4="0000")
    with pytest.raises(TenantScopeError):
        scoped.create(tenant_id=other_tenant.pk, name="x", key_id="y" * 12, digest="0")
    with pytest.raises(TenantScopeError):
        scoped.filter(pk=key.pk).update(tenant=other_tenant)
    with pytest.raises(TenantScopeError):
        scoped.bulk_create([ApiKey(tenant=other_tenant, name="x", key_id="z" * 12, digest="0")])
    with pytest.raises(TenantScopeError):
        scoped.update_or_create(name="x", defaults={"tenant": other_tenant})
    with pytest.raises(TenantScopeError):
        Voice.objects.visible_to(tenant).create(tenant=other_tenant, slug="v", name="v")
    loaded = scoped.get(pk=key.pk)
    loaded.tenant = other_tenant
    with pytest.raises(TenantScopeError):
        loaded.save()
    assert ApiKey.dangerously_unscoped.get(pk=key.pk).tenant_id == tenant.pk
    # Creating through the scope fills the tenant in.
    created = scoped.create(name="ok", key_id="w" * 12, digest="0", last4="0000")
    assert created.tenant_id == tenant.pk


# --- suspension, one resolver ----------------------------------------------------------------
def test_console_refuses_a_suspended_tenant_like_the_api(tenant, make_member, client):
    from tenancy.models import Tenant
    from tenancy.services import tenants

    owner = make_member(tenant, "owner")
    client.force_login(owner)
    assert client.get(f"/console/{tenant.slug}/").status_code == 200
    tenants.set_tenant_status(tenant, Tenant.Status.SUSPENDED)
    for page in ("", "audit/", "watermark/"):
        response = client.get(f"/console/{tenant.slug}/{page}")
        assert response.status_code == 403, page
        assert b"suspended" in response.content
    api = client.get(f"/api/v1/tenants/{tenant.slug}/tenant")
    assert api.status_code == 403 and api.json()["error"]["code"] == "tenant_suspended"


# --- HEAD and OPTIONS ------------------------------------------------------------------------
READ_ROUTES = [
    "/api/v1/tenant",
    "/api/v1/keys",
    "/api/v1/members",
    "/api/v1/usage",
    "/api/v1/audit-events",
    "/api/v1/voices",
    "/api/v1/synthesis-requests",
]


@pytest.mark.parametrize("path", READ_ROUTES)
def test_head_and_options_answer_like_get(path, tenant, make_key, client_for):
    strong = client_for(make_key(tenant).token)
    weak = client_for(make_key(tenant, scopes=["synthesize"]).token)
    for client in (strong, weak):
        expected = client.get(path).status_code
        assert client.head(path).status_code == expected, path
        assert client.options(path).status_code == expected, path


def test_options_on_a_post_only_route_needs_that_routes_scope(tenant, make_key, client_for):
    assert client_for(make_key(tenant).token).options("/api/v1/synthesize").status_code == 200
    weak = client_for(make_key(tenant, scopes=["voices:read"]).token)
    assert weak.options("/api/v1/synthesize").status_code == 403


# --- public ids ------------------------------------------------------------------------------
def test_public_ids_do_not_count_other_tenants(tenant, other_tenant, make_member, make_key, api):
    make_member(other_tenant, "auditor")
    members = api.get("/api/v1/members").json()["results"]
    make_member(tenant, "auditor")
    for member in api.get("/api/v1/members").json()["results"] + members:
        uuid.UUID(member["id"])
    events = api.get("/api/v1/audit-events?page_size=500").json()["results"]
    assert "id" not in events[0]
    # Audit events are numbered per tenant: 1..n with no gaps for other tenants' activity.
    assert sorted(e["seq"] for e in events) == list(range(1, len(events) + 1))
    seq = events[0]["seq"]
    assert api.get(f"/api/v1/audit-events/{seq}").json()["hash"] == events[0]["hash"]

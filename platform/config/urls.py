"""Routes. Tenant-scoped API routes are mounted twice: at /api/v1/ (the tenant comes from the
API key) and at /api/v1/tenants/<slug>/ (for signed-in members)."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from rollout.api import model_urls, rollout_urls

tenant_api = [
    path("", include("tenancy.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("consent.api.urls")),
    path("", include("voices.api.urls")),
    path("", include("synthesis.api.urls")),
    path("", include("rollout.api.model_urls")),
    path("", include("rollout.api.rollout_urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False)),
    path("", include("core.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/platform/", include(model_urls.platform_urlpatterns)),
    path("api/v1/platform/", include(rollout_urls.platform_urlpatterns)),
    path("api/v1/", include(tenant_api)),
    path("api/v1/tenants/<slug:tenant_slug>/", include(tenant_api)),
    # OpenAI-compatible surface (the `openai` SDK with base_url=<host>/v1).
    path("v1/", include("synthesis.api.openai_urls")),
    path("console/", include("frontend.urls")),
    path("django-admin/", admin.site.urls),
]

handler400 = "core.errors.handler400"
handler403 = "core.errors.handler403"
handler404 = "core.errors.handler404"
handler500 = "core.errors.handler500"

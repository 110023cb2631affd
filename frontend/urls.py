from frontend.views import (
    audit,
    auth,
    consent,
    dashboard,
    keys,
    members,
    rollouts,
    settings,
    usage,
    voices,
    watermark,
)

app_name = "frontend"

# Tenant-less routes first; their names are reserved tenant slugs (tenancy.services.tenants).
urlpatterns = [
    *auth.urlpatterns,
    *members.public_urlpatterns,
    *dashboard.urlpatterns,
    *voices.urlpatterns,
    *consent.urlpatterns,
    *keys.urlpatterns,
    *usage.urlpatterns,
    *rollouts.urlpatterns,
    *audit.urlpatterns,
    *watermark.urlpatterns,
    *members.urlpatterns,
    *settings.urlpatterns,
]

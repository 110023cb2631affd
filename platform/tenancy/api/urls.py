from django.urls import re_path

from core.routers import OptionalSlashRouter
from tenancy.api import views

router = OptionalSlashRouter()
router.register("keys", views.ApiKeyViewSet, basename="apikey")
router.register("members", views.MembershipViewSet, basename="member")

urlpatterns = [
    re_path(r"^tenant/?$", views.TenantView.as_view(), name="tenant"),
    re_path(r"^usage/?$", views.UsageView.as_view(), name="usage"),
    *router.urls,
]

"""Rollout control routes. `urlpatterns` are tenant routes (mounted in `tenant_api`);
`platform_urlpatterns` are the operators' (mounted at /api/v1/platform/)."""

from django.urls import path, re_path

from core.routers import OptionalSlashRouter
from rollout.api import rollouts

router = OptionalSlashRouter()
router.register("rollouts", rollouts.RolloutViewSet, basename="rollout")
router.register("pins", rollouts.PinViewSet, basename="pin")

urlpatterns = [
    re_path(r"^rollout-policy/?$", rollouts.RolloutPolicyView.as_view(), name="rollout-policy"),
    path("models/<str:version_id>/metrics", rollouts.ModelMetricsView.as_view()),
    *router.urls,
]

platform_router = OptionalSlashRouter()
platform_router.register("rollouts", rollouts.PlatformRolloutViewSet, basename="platform-rollout")

platform_urlpatterns = [
    path("models/<str:version_id>/metrics", rollouts.PlatformModelMetricsView.as_view()),
    *platform_router.urls,
]

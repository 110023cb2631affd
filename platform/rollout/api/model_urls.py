"""Model version routes. `urlpatterns` are tenant routes (mounted in `tenant_api`);
`platform_urlpatterns` are the operators' (mounted at /api/v1/platform/)."""

from core.routers import OptionalSlashRouter
from rollout.api import models

router = OptionalSlashRouter()
router.register("models", models.ModelVersionViewSet, basename="model-version")
urlpatterns = router.urls

platform_router = OptionalSlashRouter()
platform_router.register(
    "models", models.PlatformModelVersionViewSet, basename="platform-model-version"
)
platform_urlpatterns = platform_router.urls

from audit.api.views import AuditEventViewSet
from core.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("audit-events", AuditEventViewSet, basename="auditevent")

urlpatterns = router.urls

from consent.api import views
from core.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("talents", views.VoiceTalentViewSet, basename="talent")
router.register("consents", views.ConsentViewSet, basename="consent")

urlpatterns = router.urls

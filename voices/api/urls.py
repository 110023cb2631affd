from core.routers import OptionalSlashRouter
from voices.api.views import FineTuneJobViewSet, VoiceViewSet

router = OptionalSlashRouter()
router.register("voices", VoiceViewSet, basename="voice")
router.register("fine-tunes", FineTuneJobViewSet, basename="fine-tune")

urlpatterns = router.urls

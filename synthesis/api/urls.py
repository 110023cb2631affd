from django.urls import re_path

from core.routers import OptionalSlashRouter
from synthesis.api import views
from synthesis.api.watermark import WatermarkDetectView
from voices.api.views import VoiceViewSet

router = OptionalSlashRouter()
router.register("synthesis-requests", views.SynthesisRequestViewSet, basename="synthesisrequest")
router.register("voices", VoiceViewSet, basename="voice")

urlpatterns = [
    re_path(r"^synthesize/?$", views.SynthesizeView.as_view(), name="synthesize"),
    re_path(r"^watermark/detect/?$", WatermarkDetectView.as_view(), name="watermark-detect"),
    *router.urls,
]

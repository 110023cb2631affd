from django.urls import re_path

from core.routers import OptionalSlashRouter
from synthesis.api import views
from synthesis.api.watermark import WatermarkDetectView

router = OptionalSlashRouter()
router.register("synthesis-requests", views.SynthesisRequestViewSet, basename="synthesisrequest")

urlpatterns = [
    re_path(r"^synthesize/?$", views.SynthesizeView.as_view(), name="synthesize"),
    re_path(r"^watermark/detect/?$", WatermarkDetectView.as_view(), name="watermark-detect"),
    *router.urls,
]

from django.urls import path

from core import views

app_name = "core"

urlpatterns = [
    path("healthz", views.liveness, name="liveness"),
    path("readyz", views.readiness, name="readiness"),
    path("metrics", views.metrics, name="metrics"),
    path("files/<str:token>", views.file_download, name="file-download"),
]

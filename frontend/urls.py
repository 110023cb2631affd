from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import views

app_name = "frontend"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="frontend:login"), name="logout"),
    path("", views.home, name="home"),
    path("<slug:slug>/", views.tenant_overview, name="tenant"),
    path("<slug:slug>/audit/", views.tenant_audit, name="audit"),
    path("<slug:slug>/watermark/", views.watermark_detect, name="watermark"),
]

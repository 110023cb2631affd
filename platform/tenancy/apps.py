from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Tenancy"

    def ready(self):
        from tenancy import schema, signals  # noqa: F401 - sign-in audit receivers, OpenAPI auth

"""OpenAPI description of API-key authentication (registered when the app loads)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.ApiKeyAuthentication"
    name = ["BearerApiKey", "HeaderApiKey"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "http", "scheme": "bearer", "bearerFormat": "tb_live_<id>_<secret>"},
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]

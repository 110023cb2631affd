"""Security headers for console pages."""

from django.conf import settings

# Scripts only from our own static files: no inline script, no eval, no third-party origin, so
# an injected string cannot run. Inline style attributes stay allowed (progress widths, charts).
CONSOLE_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ConsoleSecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.prefix = "/" + settings.CONSOLE_URL_PREFIX.strip("/") + "/"

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(self.prefix):
            response.setdefault("Content-Security-Policy", CONSOLE_CSP)
            response.setdefault("Referrer-Policy", "same-origin")
            response.setdefault(
                "Permissions-Policy", "microphone=(self), camera=(), geolocation=()"
            )
            response.setdefault("Cache-Control", "private, no-store")
        return response

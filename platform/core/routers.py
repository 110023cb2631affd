from rest_framework.routers import SimpleRouter


class OptionalSlashRouter(SimpleRouter):
    """Routes that match with or without a trailing slash (clients differ; no redirects)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"

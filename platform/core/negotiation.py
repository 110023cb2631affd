from rest_framework.negotiation import DefaultContentNegotiation


class JsonFallbackNegotiation(DefaultContentNegotiation):
    """Never answer 406: audio endpoints return their own media types, and anything else
    (errors included) falls back to JSON whatever the client's Accept header says (the
    `openai` SDK sends `Accept: application/octet-stream` to the speech endpoint)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Exception:  # noqa: BLE001 - NotAcceptable: use the first (JSON) renderer
            return renderers[0], renderers[0].media_type

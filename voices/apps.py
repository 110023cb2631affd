from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_stock_voices(sender, **kwargs):
    from voices.services import ensure_stock_voices

    ensure_stock_voices()


class VoicesConfig(AppConfig):
    name = "voices"

    def ready(self):
        post_migrate.connect(_ensure_stock_voices, sender=self)

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_statement_templates(sender, **kwargs):
    from consent.services import ensure_statement_templates

    ensure_statement_templates()


class ConsentConfig(AppConfig):
    name = "consent"

    def ready(self):
        post_migrate.connect(_ensure_statement_templates, sender=self)

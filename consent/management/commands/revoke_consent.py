from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor, RequestContext
from consent import services
from core.errors import ApiError
from core.scoping import tenant_context
from tenancy.services import tenants
from tenancy.services.access import Access


class Command(BaseCommand):
    help = (
        "Revoke a consent at the talent's request (operator). Takes effect at once: the voices "
        "using it are disabled, their fine-tunes and syntheses cancelled, and their artefacts "
        "deleted after CONSENT_ARTEFACT_RETENTION_S."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("consent", help="consent id")
        parser.add_argument("--reason", required=True, help="why (recorded in the audit log)")

    def handle(self, *args, **options):
        try:
            tenant = tenants.get_tenant_by_slug(options["tenant"])
            access = Access.operator(tenant)
            context = RequestContext(actor=Actor.system("operator:revoke_consent"))
            with tenant_context(tenant):
                consent = services.get_consent(access, options["consent"])
                consent = services.revoke(access, consent, options["reason"], context=context)
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        except ValidationError as exc:
            raise CommandError(f"{options['consent']!r} is not a consent id.") from exc
        self.stdout.write(f"{consent.pk} {consent.status}")

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit.services import Actor, RequestContext
from core.errors import ApiError
from tenancy.roles import ALL_SCOPES
from tenancy.services import keys, tenants
from tenancy.services.access import Access

OPERATOR = RequestContext(actor=Actor.system("operator:createapikey"))


class Command(BaseCommand):
    help = "Create an API key and print its secret once."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="tenant slug")
        parser.add_argument("--name", default="operator key")
        parser.add_argument(
            "--scopes",
            default="synthesize,voices:read",
            help=f"comma-separated: {', '.join(ALL_SCOPES)}",
        )
        parser.add_argument("--expires-days", type=int)
        parser.add_argument("--allowed-ips", default="", help="comma-separated IPs/CIDRs")
        parser.add_argument("--monthly-characters", type=int)

    def handle(self, *args, **options):
        try:
            tenant = tenants.get_tenant_by_slug(options["tenant"])
            expires = options["expires_days"]
            issued = keys.create_key(
                Access.operator(tenant),
                name=options["name"],
                scopes=[s.strip() for s in options["scopes"].split(",") if s.strip()],
                context=OPERATOR,
                expires_at=timezone.now() + timedelta(days=expires) if expires else None,
                allowed_ips=[s.strip() for s in options["allowed_ips"].split(",") if s.strip()],
                monthly_character_limit=options["monthly_characters"],
            )
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(issued.token)

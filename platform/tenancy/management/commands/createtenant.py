from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor, RequestContext
from core.errors import ApiError
from tenancy.services import tenants
from tenancy.services.access import Access

OPERATOR = RequestContext(actor=Actor.system("operator:createtenant"))


class Command(BaseCommand):
    help = "Create a tenant (optionally with its first owner)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name")
        parser.add_argument("--plan", default="starter", choices=sorted(tenants.DEFAULT_PLANS))
        parser.add_argument("--owner", help="email of an existing user to make owner")

    def handle(self, *args, slug, name, plan, owner, **options):
        try:
            tenant = tenants.create_tenant(slug, name or slug, plan, context=OPERATOR)
            if owner:
                from django.contrib.auth import get_user_model

                user = get_user_model().objects.filter(username=owner).first()
                if user is None:
                    raise CommandError(f"No user {owner!r}; run createuser first.")
                tenants.add_member(Access.operator(tenant), user, "owner", context=OPERATOR)
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"tenant {tenant.slug} ({tenant.pk}) created on plan {plan}")

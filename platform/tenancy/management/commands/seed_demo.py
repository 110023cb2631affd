"""Seed the embedded demo: a tenant, an owner and an API key (printed once)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from audit.services import Actor, RequestContext
from tenancy.models import Tenant
from tenancy.roles import ALL_SCOPES
from tenancy.services import keys, tenants
from tenancy.services.access import Access

OPERATOR = RequestContext(actor=Actor.system("operator:seed_demo"))


class Command(BaseCommand):
    help = "Create the demo tenant, admin user and a fresh API key; prints the credentials."

    def add_arguments(self, parser):
        parser.add_argument("--slug", default="demo")
        parser.add_argument("--email", default="admin@demo.timbre.local")
        parser.add_argument("--password", default="timbre-demo-password")

    def handle(self, *args, slug, email, password, **options):
        tenant = Tenant.objects.filter(slug=slug).first() or tenants.create_tenant(
            slug, "Demo Company", "business", context=OPERATOR
        )
        User = get_user_model()
        user = User.objects.filter(username=email).first()
        if user is None:
            user = tenants.create_user(email, password, is_staff=True, is_superuser=True)
            tenants.add_member(Access.operator(tenant), user, "owner", context=OPERATOR)
        issued = keys.create_key(
            Access.operator(tenant), name="demo key", scopes=ALL_SCOPES, context=OPERATOR
        )
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "=" * 72,
                    f"  Demo tenant : {tenant.slug}",
                    f"  Console     : {email} / {password}",
                    f"  API key     : {issued.token}",
                    "  (the key is shown once; run `make run` again for a new one)",
                    "=" * 72,
                    "",
                ]
            )
        )

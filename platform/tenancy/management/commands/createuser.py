import getpass

from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor, RequestContext
from core.errors import ApiError
from tenancy.roles import Role
from tenancy.services import tenants
from tenancy.services.access import Access

OPERATOR = RequestContext(actor=Actor.system("operator:createuser"))


class Command(BaseCommand):
    help = "Create a console user, optionally as a member of a tenant with a role."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--password", help="omit to be prompted (or set via the console)")
        parser.add_argument("--tenant", help="tenant slug to join")
        parser.add_argument("--role", choices=Role.values, default=Role.DEVELOPER)
        parser.add_argument("--superuser", action="store_true", help="Django admin access")

    def handle(self, *args, email, password, tenant, role, superuser, **options):
        if password is None and options.get("interactive", True):
            try:
                password = getpass.getpass("Password: ")
            except (EOFError, KeyboardInterrupt):
                password = None
        try:
            user = tenants.create_user(
                email, password or None, is_staff=superuser, is_superuser=superuser
            )
            if tenant:
                access = Access.operator(tenants.get_tenant_by_slug(tenant))
                tenants.add_member(access, user, role, context=OPERATOR)
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"user {email} created" + (f" as {role} of {tenant}" if tenant else ""))

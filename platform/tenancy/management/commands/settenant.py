from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor, RequestContext
from core.errors import ApiError
from tenancy.models import Tenant
from tenancy.services import tenants

OPERATOR = RequestContext(actor=Actor.system("operator:settenant"))


class Command(BaseCommand):
    help = "Change a tenant's plan or status (suspend/activate). Audited."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--plan", choices=sorted(tenants.DEFAULT_PLANS))
        parser.add_argument("--status", choices=Tenant.Status.values)

    def handle(self, *args, slug, plan, status, **options):
        if not plan and not status:
            raise CommandError("Give --plan and/or --status.")
        try:
            tenant = tenants.get_tenant_by_slug(slug)
            if plan:
                tenants.change_plan(tenant, plan, context=OPERATOR)
            if status:
                tenants.set_tenant_status(tenant, status, context=OPERATOR)
        except ApiError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"tenant {tenant.slug}: plan {tenant.plan.slug}, {tenant.status}")

from django.core.management.base import BaseCommand, CommandError

from audit.services import all_chains, verify_chain


class Command(BaseCommand):
    help = "Verify the audit hash chains; exits non-zero and names each broken event."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="tenant id (UUID) or 'global'; default: all chains")

    def handle(self, *args, **options):
        chains = [options["tenant"]] if options["tenant"] else all_chains()
        problems = [problem for chain in chains for problem in verify_chain(chain)]
        for problem in problems:
            self.stderr.write(str(problem))
        if problems:
            raise CommandError(f"audit chain verification FAILED: {len(problems)} problem(s)")
        self.stdout.write(f"audit chain OK: {len(chains)} chain(s) verified")

"""`manage.py rollout ...`: the operators' rollout console.

Every subcommand goes through the same services as the API, as `Authority.operator()`, so
every change is a decision and an audit event like any other.
"""

from __future__ import annotations

import importlib
import json

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApiError
from rollout.models import ModelVersion, Rollout
from rollout.services import lifecycle, policy
from rollout.services.authority import Authority
from tenancy.models import Tenant


def _percentages(value: str) -> list[float]:
    try:
        return [float(p) for p in value.split(",") if p.strip()]
    except ValueError:
        raise CommandError(f"--steps must be comma-separated percentages, not {value!r}") from None


def _on_off(value: str) -> bool:
    return value == "on"


class Command(BaseCommand):
    help = "Run progressive rollouts of model versions (operators)."

    def add_arguments(self, parser):
        parser.add_argument("--operator", default="operator", help="name recorded in the audit")
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("list", help="rollouts, newest first").add_argument(
            "--live", action="store_true", help="running and paused only"
        )
        sub.add_parser("show", help="a rollout with its decisions").add_argument("rollout")

        start = sub.add_parser("start", help="start rolling out a validated version")
        start.add_argument("version")
        start.add_argument("--steps", type=_percentages, help="e.g. 1,5,20,50,100")
        start.add_argument("--on-fail", choices=[c for c, _ in Rollout.OnFail.choices])
        start.add_argument("--min-duration", type=int, dest="min_step_duration_s", help="s")
        start.add_argument("--min-requests", type=int)
        start.add_argument("--min-quality-samples", type=int)
        start.add_argument("--max-extensions", type=int)
        start.add_argument("--quality-sample-rate", type=float)
        start.add_argument("--tenant-min-requests", type=int)
        start.add_argument("--alpha", type=float)
        start.add_argument("--reason", default="")

        for name in ("pause", "resume", "rollback"):
            cmd = sub.add_parser(name, help=f"{name} a rollout")
            cmd.add_argument("rollout")
            cmd.add_argument("--reason", default="", required=name == "rollback")
        promote = sub.add_parser("promote", help="next step now, or --complete")
        promote.add_argument("rollout")
        promote.add_argument("--complete", action="store_true")
        promote.add_argument("--reason", default="")
        retry = sub.add_parser("retry", help="an audited new attempt of a rolled-back rollout")
        retry.add_argument("rollout")
        retry.add_argument("--reason", required=True)

        target = sub.add_parser("target", help="change which tenants a rollout reaches")
        target.add_argument("rollout")
        target.add_argument("--include", help="tenant slugs (comma-separated), or 'all'")
        target.add_argument("--exclude", help="tenant slugs (comma-separated); '' for none")
        target.add_argument("--reason", default="")

        pin = sub.add_parser("pin", help="pin a tenant to a version of a family")
        pin.add_argument("tenant")
        pin.add_argument("family")
        pin.add_argument("version")
        unpin = sub.add_parser("unpin", help="remove a tenant's pin of a family")
        unpin.add_argument("tenant")
        unpin.add_argument("family")

        pol = sub.add_parser("policy", help="show or change a tenant's rollout policy")
        pol.add_argument("tenant")
        pol.add_argument("--early-access", choices=["on", "off"])
        pol.add_argument("--explicit", choices=["on", "off"])

        sub.add_parser("evaluate", help="run the guardrails evaluator once")

    def handle(self, *args, **options):
        self.authority = Authority.operator(options["operator"])
        try:
            getattr(self, f"cmd_{options['command']}")(options)
        except ApiError as exc:
            raise CommandError(f"{exc.error_code}: {exc.message}") from None

    # --- helpers -----------------------------------------------------------------------------
    def _rollout(self, rollout_id) -> Rollout:
        return lifecycle.get_rollout(self.authority, rollout_id)

    def _tenant(self, slug: str) -> Tenant:
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"no tenant {slug!r}")
        return tenant

    def _tenant_ids(self, slugs: str) -> list[str]:
        return [str(self._tenant(s.strip()).pk) for s in slugs.split(",") if s.strip()]

    def _line(self, rollout: Rollout) -> str:
        owner = "platform" if rollout.is_platform else str(rollout.tenant_id)
        hold = f" hold={rollout.hold_reason}" if rollout.hold_reason else ""
        return (
            f"{rollout.pk}  {rollout.state:<11} {rollout.percent:>5g} %  step "
            f"{rollout.step_index + 1}/{len(rollout.steps)}  {rollout.family}  "
            f"{rollout.candidate_id} vs {rollout.stable_id}  ({owner}){hold}"
        )

    # --- subcommands ---------------------------------------------------------------------------
    def cmd_list(self, options):
        rollouts = lifecycle.list_rollouts(self.authority)
        if options["live"]:
            rollouts = rollouts.filter(state__in=Rollout.LIVE)
        for rollout in rollouts:
            self.stdout.write(self._line(rollout))

    def cmd_show(self, options):
        rollout = self._rollout(options["rollout"])
        self.stdout.write(self._line(rollout))
        deadline = lifecycle.step_deadline(rollout).isoformat() if rollout.is_live else "-"
        self.stdout.write(f"steps {rollout.steps}; step ends no earlier than {deadline}")
        for d in rollout.decisions.all():
            who = "auto" if d.automatic else d.actor
            self.stdout.write(
                f"  {d.created_at:%Y-%m-%d %H:%M:%S} {d.action:<8} {d.percent_before:g}->"
                f"{d.percent_after:g} % {d.outcome or '-'} by {who}: {d.reason}"
            )
            if d.evidence:
                self.stdout.write(f"    evidence: {json.dumps(d.evidence, default=str)}")

    def cmd_start(self, options):
        version = ModelVersion.dangerously_unscoped.filter(pk=options["version"]).first()
        if version is None:
            raise CommandError(f"no model version {options['version']!r}")
        names = (
            "on_fail",
            "min_step_duration_s",
            "min_requests",
            "min_quality_samples",
            "max_extensions",
            "quality_sample_rate",
            "tenant_min_requests",
            "alpha",
        )
        settings = {n: options[n] for n in names if options.get(n) is not None}
        rollout = lifecycle.start(
            self.authority, version, steps=options["steps"], reason=options["reason"], **settings
        )
        self.stdout.write(f"started {self._line(rollout)}")

    def cmd_pause(self, options):
        rollout = lifecycle.pause(
            self.authority, self._rollout(options["rollout"]), options["reason"]
        )
        self.stdout.write(self._line(rollout))

    def cmd_resume(self, options):
        rollout = lifecycle.resume(
            self.authority, self._rollout(options["rollout"]), options["reason"]
        )
        self.stdout.write(self._line(rollout))

    def cmd_rollback(self, options):
        rollout = lifecycle.rollback(
            self.authority, self._rollout(options["rollout"]), options["reason"]
        )
        self.stdout.write(self._line(rollout))

    def cmd_promote(self, options):
        rollout = lifecycle.promote(
            self.authority,
            self._rollout(options["rollout"]),
            options["reason"],
            complete=options["complete"],
        )
        self.stdout.write(self._line(rollout))

    def cmd_retry(self, options):
        rollout = lifecycle.retry(
            self.authority, self._rollout(options["rollout"]), options["reason"]
        )
        self.stdout.write(f"retrying as {self._line(rollout)}")

    def cmd_target(self, options):
        changes = {}
        if options["include"] is not None:
            if options["include"] == "all":
                changes["include_all_tenants"] = True
            else:
                changes["include_all_tenants"] = False
                changes["included_tenants"] = self._tenant_ids(options["include"])
        if options["exclude"] is not None:
            changes["excluded_tenants"] = self._tenant_ids(options["exclude"])
        if not changes:
            raise CommandError("give --include and/or --exclude")
        rollout = lifecycle.set_targeting(
            self.authority, self._rollout(options["rollout"]), reason=options["reason"], **changes
        )
        self.stdout.write(self._line(rollout))
        self.stdout.write(
            f"include_all={rollout.include_all_tenants} included={rollout.included_tenants} "
            f"excluded={rollout.excluded_tenants}"
        )

    def cmd_pin(self, options):
        tenant = self._tenant(options["tenant"])
        pinned = policy.pin(self.authority, tenant, options["version"], options["family"])
        self.stdout.write(f"{tenant.slug}: {pinned.family} pinned to {pinned.version_id}")

    def cmd_unpin(self, options):
        tenant = self._tenant(options["tenant"])
        pinned = policy.pin_for_family(self.authority, tenant, options["family"])
        policy.unpin(self.authority, tenant, pinned)
        self.stdout.write(f"{tenant.slug}: {options['family']} unpinned")

    def cmd_policy(self, options):
        tenant = self._tenant(options["tenant"])
        changes = {}
        if options["early_access"] is not None:
            changes["early_access"] = _on_off(options["early_access"])
        if options["explicit"] is not None:
            changes["allow_explicit_versions"] = _on_off(options["explicit"])
        if changes:
            current = policy.update_policy(self.authority, tenant, **changes)
        else:
            current = policy.get_policy(self.authority, tenant)
        self.stdout.write(
            f"{tenant.slug}: early_access={'on' if current.early_access else 'off'} "
            f"explicit={'on' if current.allow_explicit_versions else 'off'}"
        )

    def cmd_evaluate(self, options):
        try:
            guardrails = importlib.import_module("rollout.services.guardrails")
        except ModuleNotFoundError as exc:
            if exc.name != "rollout.services.guardrails":
                raise
            raise CommandError("the guardrails evaluator is not installed") from None
        result = guardrails.evaluate_all()
        self.stdout.write(f"evaluated: {result}")

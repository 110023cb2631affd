"""Register a model version as a platform operator, optionally validating it.

    manage.py register_model --family stock --engine piper --version joe-v2 \
        --artefact model.onnx --config model.onnx.json --validate-now
    manage.py register_model --stock-int8 --validate

The same services as the versions API (rollout.services.registry), as `Authority.operator()`.
Registering the same artefact under the same version again prints the existing version.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApiError
from rollout.services import registry
from rollout.services.authority import Authority


class Command(BaseCommand):
    help = "Register a model version (platform operator)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version names the model version here, not Django's.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--family", help='"stock" or "voice:<voice id>"')
        parser.add_argument("--engine", default="piper")
        parser.add_argument("--version", dest="model_version", help="version name, e.g. joe-v2")
        parser.add_argument("--semver", help="x.y.z (default: the family's next minor)")
        parser.add_argument("--artefact", type=Path, help="the model file")
        parser.add_argument("--config", type=Path, help="Piper's .onnx.json (default: beside)")
        parser.add_argument("--tenant", help="slug of the tenant owning the voice family")
        parser.add_argument("--notes", default="")
        parser.add_argument(
            "--stock-int8",
            action="store_true",
            help="build the int8-quantised stock voice and register it in the stock family",
        )
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--validate", action="store_true", help="queue the validation job")
        when.add_argument("--validate-now", action="store_true", help="validate inline")

    def handle(self, *args, **options):
        authority = Authority.operator("operator:register_model")
        try:
            if options["stock_int8"]:
                version, created = registry.register_stock_int8(
                    authority, semver=options["semver"], notes=options["notes"]
                )
            else:
                version, created = self._register(authority, options)
            self.stdout.write(
                f"{'registered' if created else 'already registered'} {version.id} "
                f"({version.family} {version.semver}, {version.status})"
            )
            if options["validate"] or options["validate_now"]:
                version = self._validate(authority, version, inline=options["validate_now"])
        except ApiError as exc:
            raise CommandError(f"{exc.error_code}: {exc.message}") from None

    def _register(self, authority, options):
        missing = [n for n in ("family", "model_version", "artefact") if not options[n]]
        if missing:
            names = ", ".join("--" + n.replace("model_", "") for n in missing)
            raise CommandError(f"{names} required (or --stock-int8)")
        family, artefact = options["family"], options["artefact"]
        if options["tenant"]:
            from voices.models import Voice

            voice_id = family.removeprefix("voice:")
            if not Voice.dangerously_unscoped.filter(
                pk=voice_id if voice_id != family else None, tenant__slug=options["tenant"]
            ).exists():
                raise CommandError(f"{family} is not a voice of tenant {options['tenant']}")
        config = options["config"] or Path(f"{artefact}.json")
        try:
            data = artefact.read_bytes()
            config_data = config.read_bytes() if config.is_file() else None
        except OSError as exc:
            raise CommandError(str(exc)) from None
        return registry.register_version(
            authority,
            family=family,
            engine=options["engine"],
            version=options["model_version"],
            semver=options["semver"],
            artefact=data,
            config=config_data,
            notes=options["notes"],
        )

    def _validate(self, authority, version, *, inline: bool):
        from rollout.models import ModelVersion

        if version.status == ModelVersion.Status.VALIDATED:
            self.stdout.write(f"{version.id} is already validated")
            return version
        if inline:
            from rollout.services.validation import validate

            # The same transition as the queued job, then its body in this process.
            version = registry.request_validation(authority, version, enqueue=False)
            version = validate(version.pk)
            self.stdout.write(f"{version.id}: {version.status} {version.validation}")
        else:
            version = registry.request_validation(authority, version)
            self.stdout.write(f"{version.id}: validation queued")
        return version

"""Detect the built-in watermark in an audio file; prints JSON."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from speech import audio
from synthesis import watermarking


class Command(BaseCommand):
    help = "watermark_detect FILE: JSON verdict, payload (hex), key id, confidence, reason."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--lookup",
            action="store_true",
            help="also name the request the payload belongs to (operator view)",
        )

    def handle(self, *args, file, lookup, **options):
        try:
            samples, sr = audio.decode(Path(file).read_bytes())
        except (OSError, audio.AudioError) as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        backend, detection = watermarking.detect_samples(samples, sr)
        result = {"backend": backend, **detection.to_dict()}
        if lookup and detection.verdict == "watermarked":
            result["requests"] = [
                {"id": str(job.pk), "tenant": job.tenant.slug, "request_id": job.request_id}
                for job in watermarking.find_requests(detection.payload.hex(), detection.key_id)
            ]
        self.stdout.write(json.dumps(result))

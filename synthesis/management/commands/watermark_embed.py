"""Embed a watermark into an audio file (for benchmarks and attack suites)."""

from pathlib import Path

import soundfile as sf
from django.core.management.base import BaseCommand, CommandError

from speech import audio
from speech.watermark.base import WatermarkError
from synthesis import watermarking


class Command(BaseCommand):
    help = "watermark_embed IN OUT --payload HEX: mark IN with the current key, write OUT (WAV)."

    def add_arguments(self, parser):
        parser.add_argument("input")
        parser.add_argument("output")
        parser.add_argument("--payload", required=True, help="hex, the backend's payload size")
        parser.add_argument("--backend", default="builtin", choices=["builtin", "audiowmark"])

    def handle(self, *args, input, output, payload, backend, **options):
        try:
            samples, sr = audio.decode(Path(input).read_bytes())
        except (OSError, audio.AudioError) as exc:
            raise CommandError(f"cannot read {input}: {exc}") from exc
        marker = watermarking.make_backend(backend)
        if not marker.available():
            raise CommandError(f"backend {backend} is not available here")
        try:
            data = bytes.fromhex(payload)
        except ValueError as exc:
            raise CommandError("--payload must be hex") from exc
        if len(data) * 8 != marker.payload_bits:
            raise CommandError(f"{backend} payloads are {marker.payload_bits // 4} hex digits")
        _, key = watermarking.current_key()
        try:
            marked = marker.embed(samples, sr, data, key)
        except WatermarkError as exc:
            raise CommandError(f"embedding failed: {exc}") from exc
        sf.write(output, marked, sr, subtype="PCM_16")

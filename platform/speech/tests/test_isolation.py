"""`speech` is a library: importing any of it must not pull in Django, an app, or torch.

Checked in a fresh interpreter, since this test process may have loaded them already."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import speech

FORBIDDEN = (
    "django",
    "rest_framework",
    "celery",
    "config",
    "core",
    "tenancy",
    "audit",
    "rollout",
    "synthesis",
    "voices",
    "consent",
    "frontend",
    "torch",
)
PLATFORM = Path(speech.__file__).resolve().parents[1]


def speech_modules() -> list[str]:
    found = [
        info.name
        for info in pkgutil.walk_packages(speech.__path__, prefix="speech.")
        if ".tests" not in info.name and not info.name.endswith(".tests")
    ]
    return ["speech", *sorted(found)]


def test_speech_imports_no_django_app_or_torch():
    modules = speech_modules()
    assert {"speech.audio", "speech.engines.cache", "speech.watermark.builtin"} <= set(modules)
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(json.dumps(bad))\n"
    )
    # Only platform/ on the path: an app import would have to come from there to succeed.
    env = {"PYTHONPATH": str(PLATFORM), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []

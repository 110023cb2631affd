"""Dependency directions between our packages (read from the source, no imports needed).

apps -> speech, apps -> core; speech -> nothing of ours (also checked at runtime by
platform/speech/tests/test_isolation.py); synthesis -> voices, never back; consent -> voices and
synthesis, never back; rollout -> speech, not synthesis; services enqueue tasks by name and
never import tasks."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(folder: Path) -> dict[str, set[str]]:
    """{file: every module it imports (absolute names; relative ones resolved)}, tests excluded."""
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        if "tests" in path.relative_to(folder).parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


def offenders(folder: Path, *forbidden: str) -> list[str]:
    return sorted(
        f"{path}: {name}"
        for path, names in imported_modules(folder).items()
        for name in names
        if any(name == f or name.startswith(f"{f}.") for f in forbidden)
    )


def test_speech_imports_nothing_of_ours():
    ours = ("django", "config", "core", "tenancy", "audit", "rollout", "synthesis", "voices")
    assert offenders(ROOT / "platform" / "speech", *ours, "consent", "frontend") == []


def test_voices_and_rollout_do_not_import_synthesis():
    assert offenders(ROOT / "voices", "synthesis") == []
    assert offenders(ROOT / "platform" / "rollout", "synthesis") == []


def test_consent_sits_above_voices_and_synthesis():
    """consent -> voices, consent -> synthesis (revocation disables and cancels); voices reads
    consent's models only, synthesis never imports consent."""
    assert offenders(ROOT / "voices", "consent.services", "consent.tasks", "consent.api") == []
    assert offenders(ROOT / "synthesis", "consent") == []


def test_synthesis_services_do_not_import_tasks():
    assert offenders(ROOT / "synthesis" / "services", "synthesis.tasks") == []


def test_services_enqueue_the_registered_task_names():
    from synthesis import tasks
    from synthesis.services import queueing

    assert tasks.synthesize.name == queueing.SYNTHESIZE_TASK
    assert tasks.deliver_webhook.name == queueing.DELIVER_WEBHOOK_TASK
    from consent import services as consent_services
    from consent import tasks as consent_tasks
    from voices import tasks as voice_tasks
    from voices.services import datasets, training

    assert consent_tasks.verify_consent.name == consent_services.VERIFY_TASK
    assert voice_tasks.check_recordings.name == datasets.CHECK_TASK
    assert voice_tasks.fine_tune.name == training.FINE_TUNE_TASK

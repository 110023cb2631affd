"""Signals for apps above the registry (rollout never imports them)."""

from django.dispatch import Signal

# Sent after a model version is retired, with `version` (a ModelVersion). The synthesis app
# forgets what its repeat-prompt cache holds for it.
version_retired = Signal()

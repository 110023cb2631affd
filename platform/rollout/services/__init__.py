"""The rollout app's services: the registry (`registry`), who may act (`authority`), a
rollout's life (`lifecycle`), which version serves a request (`resolution`), the guardrails
(`guardrails`, `quality`) and the live set workers keep loaded (`live`)."""

from rollout.models import ModelVersion
from rollout.services.registry import register, spec_for, stock_spec

__all__ = ["ModelVersion", "register", "spec_for", "stock_spec"]

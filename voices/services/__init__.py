"""Voices' services, by concern: `catalogue` (stock and custom voices, resolution for
synthesis, consent state), `datasets` (training recordings) and `training` (fine-tunes).
The names other apps use are re-exported here."""

from voices.services.catalogue import (
    ConsentRevoked,
    UnknownVoice,
    VoiceNotReady,
    capabilities,
    check_usable,
    check_usable_now,
    delete_artefacts_for_consent,
    disable_for_consent,
    ensure_stock_voices,
    parse_controls,
    resolve_voice,
    stock_embedding,
)
from voices.services.training import cancel_fine_tunes

__all__ = [
    "ConsentRevoked",
    "UnknownVoice",
    "VoiceNotReady",
    "cancel_fine_tunes",
    "capabilities",
    "check_usable",
    "check_usable_now",
    "delete_artefacts_for_consent",
    "disable_for_consent",
    "ensure_stock_voices",
    "parse_controls",
    "resolve_voice",
    "stock_embedding",
]

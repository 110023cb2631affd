"""Roles, scopes and the permission matrix (documented in docs/permissions.md).

Scopes are the one vocabulary of permission: an API key carries scopes, a member's role grants
scopes. `admin` grants everything.
"""

from __future__ import annotations

from django.db import models


class Scope:
    SYNTHESIZE = "synthesize"
    VOICES_READ = "voices:read"
    VOICES_WRITE = "voices:write"
    CONSENT_READ = "consent:read"
    CONSENT_WRITE = "consent:write"
    USAGE_READ = "usage:read"
    AUDIT_READ = "audit:read"
    KEYS_READ = "keys:read"
    KEYS_WRITE = "keys:write"
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    MODELS_READ = "models:read"
    MODELS_WRITE = "models:write"
    ADMIN = "admin"


ALL_SCOPES = [
    Scope.SYNTHESIZE,
    Scope.VOICES_READ,
    Scope.VOICES_WRITE,
    Scope.CONSENT_READ,
    Scope.CONSENT_WRITE,
    Scope.USAGE_READ,
    Scope.AUDIT_READ,
    Scope.KEYS_READ,
    Scope.KEYS_WRITE,
    Scope.MEMBERS_READ,
    Scope.MEMBERS_WRITE,
    Scope.MODELS_READ,
    Scope.MODELS_WRITE,
    Scope.ADMIN,
]


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    BRAND_MANAGER = "brand_manager", "Brand manager"
    DEVELOPER = "developer", "Developer"
    AUDITOR = "auditor", "Auditor"


ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(ALL_SCOPES),
    Role.ADMIN: frozenset(ALL_SCOPES),
    Role.BRAND_MANAGER: frozenset(
        {
            Scope.SYNTHESIZE,
            Scope.VOICES_READ,
            Scope.VOICES_WRITE,
            Scope.CONSENT_READ,
            Scope.CONSENT_WRITE,
            Scope.USAGE_READ,
            Scope.MEMBERS_READ,
            Scope.MODELS_READ,
        }
    ),
    Role.DEVELOPER: frozenset(
        {
            Scope.SYNTHESIZE,
            Scope.VOICES_READ,
            Scope.USAGE_READ,
            Scope.KEYS_READ,
            Scope.KEYS_WRITE,
            Scope.MEMBERS_READ,
            Scope.MODELS_READ,
        }
    ),
    # Auditors read everything a compliance review needs and change nothing.
    Role.AUDITOR: frozenset(
        {
            Scope.VOICES_READ,
            Scope.CONSENT_READ,
            Scope.USAGE_READ,
            Scope.AUDIT_READ,
            Scope.KEYS_READ,
            Scope.MEMBERS_READ,
            Scope.MODELS_READ,
        }
    ),
}


def expand(scopes) -> frozenset[str]:
    scopes = frozenset(scopes)
    return frozenset(ALL_SCOPES) if Scope.ADMIN in scopes else scopes


def has_scope(granted, required: str | None) -> bool:
    return required is None or required in expand(granted)

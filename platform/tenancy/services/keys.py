"""API key lifecycle: issue, authenticate, revoke, rotate.

Token format: `tb_<env>_<key_id>_<secret>`. `key_id` (public, 12 chars) finds the row; only an
HMAC-SHA256 of the secret under a server-side pepper is stored. Secrets carry 256 bits of
entropy, so a fast keyed hash is enough (no slow KDF needed) and comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit import services as audit
from core.errors import NotFound
from tenancy.models import ApiKey
from tenancy.roles import ALL_SCOPES, Scope
from tenancy.services.access import Access
from tenancy.services.errors import (
    ApiKeyExpired,
    ApiKeyRevoked,
    InsufficientScope,
    InvalidApiKey,
    InvalidRequest,
    IpNotAllowed,
)

logger = logging.getLogger(__name__)

TOKEN_PATTERN = re.compile(
    r"^tb_(?P<env>[a-z]+)_(?P<key_id>[a-z0-9]{12})_(?P<secret>[A-Za-z0-9]{43})$"
)
KEY_ID_ALPHABET = string.ascii_lowercase + string.digits
SECRET_ALPHABET = string.ascii_letters + string.digits
_DUMMY_DIGEST = "0" * 64


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: str  # shown once, never stored


def _digest(secret: str) -> str:
    return hmac.new(settings.API_KEY_PEPPER.encode(), secret.encode(), hashlib.sha256).hexdigest()


def _new_token() -> tuple[str, str, str]:
    key_id = "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(12))
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(43))  # ~256 bits
    return key_id, secret, f"tb_{settings.API_KEY_ENVIRONMENT}_{key_id}_{secret}"


def validate_scopes(scopes) -> list[str]:
    scopes = sorted(set(scopes or []))
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown or not scopes:
        raise InvalidRequest(
            f"Unknown or missing scopes {unknown}. Allowed: {', '.join(ALL_SCOPES)}."
            if unknown
            else "Choose at least one scope.",
            code="invalid_scopes",
            details={"field": "scopes"},
        )
    return scopes


def check_can_manage(access: Access, key: ApiKey, what: str) -> None:
    """The one rule for every path that creates, rotates, modifies or revokes a key: the
    caller needs `keys:write` and every scope the key holds."""
    access.require(Scope.KEYS_WRITE)
    if key.tenant_id != access.tenant.pk:
        raise NotFound()
    access.require_all(key.scopes, f"{what} a key")


def can_manage(access: Access, key: ApiKey) -> bool:
    """Whether `check_can_manage` would let `access` change `key` (to offer the controls)."""
    try:
        check_can_manage(access, key, "manage")
    except (InsufficientScope, NotFound):
        return False
    return True


def validate_allowed_ips(values) -> list[str]:
    try:
        return [str(ipaddress.ip_network(str(v).strip(), strict=False)) for v in values or []]
    except ValueError as exc:
        raise InvalidRequest(
            f"Invalid IP address or network: {exc}",
            code="invalid_ip",
            details={"field": "allowed_ips"},
        ) from exc


NAME_MAX_LENGTH = ApiKey._meta.get_field("name").max_length


def validate_name(name) -> str:
    """A key's name, stripped: required, at most 100 characters (API and console alike)."""
    name = str(name or "").strip()
    if not name:
        raise InvalidRequest("Give the key a name.", code="invalid_name", details={"field": "name"})
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidRequest(
            f"A key's name has at most {NAME_MAX_LENGTH} characters.",
            code="invalid_name",
            details={"field": "name"},
        )
    return name


def validate_character_limit(limit) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidRequest(
            "The monthly character limit is a whole number, 0 or more (empty: no limit).",
            code="invalid_character_limit",
            details={"field": "monthly_character_limit"},
        )
    return limit


KEY_STATUSES = ("active", "revoked", "expired")


def filter_by_status(queryset, status: str):
    """Keys whose `ApiKey.status` is `status`, as a query (the API filter and the console)."""
    now = timezone.now()
    not_expired = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    if status == "revoked":
        return queryset.filter(revoked_at__isnull=False)
    if status == "expired":
        return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
    if status == "active":
        return queryset.filter(not_expired, revoked_at__isnull=True)
    return queryset


def key_snapshot(key: ApiKey) -> dict:
    return {
        "name": key.name,
        "prefix": key.prefix,
        "last4": key.last4,
        "scopes": key.scopes,
        "allowed_ips": key.allowed_ips,
        "expires_at": key.expires_at,
        "monthly_character_limit": key.monthly_character_limit,
        "revoked_at": key.revoked_at,
    }


@transaction.atomic
def create_key(
    access: Access,
    *,
    name: str,
    scopes,
    context: audit.RequestContext | None = None,
    created_by=None,
    expires_at: datetime | None = None,
    allowed_ips=(),
    monthly_character_limit: int | None = None,
    rotated_from: ApiKey | None = None,
) -> IssuedKey:
    access.require(Scope.KEYS_WRITE)
    name = validate_name(name)
    scopes = validate_scopes(scopes)
    access.require_all(scopes, "create")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidRequest(
            "expires_at must be in the future.",
            code="invalid_expiry",
            details={"field": "expires_at"},
        )
    allowed_ips = validate_allowed_ips(allowed_ips)
    monthly_character_limit = validate_character_limit(monthly_character_limit)
    tenant = access.tenant
    key_id, secret, token = _new_token()
    key = ApiKey.objects.for_tenant(tenant).create(
        tenant=tenant,
        name=name,
        key_id=key_id,
        digest=_digest(secret),
        last4=secret[-4:],
        scopes=scopes,
        allowed_ips=allowed_ips,
        monthly_character_limit=monthly_character_limit,
        created_by=created_by,
        expires_at=expires_at,
        rotated_from=rotated_from,
    )
    audit.record(
        "apikey.create", tenant=tenant, context=context, target=key, after=key_snapshot(key)
    )
    return IssuedKey(key, token)


def _ip_allowed(key: ApiKey, ip: str | None) -> bool:
    if not key.allowed_ips:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in key.allowed_ips)


def parse_token(token: str) -> tuple[str, str] | None:
    match = TOKEN_PATTERN.match(token.strip())
    if not match or match["env"] != settings.API_KEY_ENVIRONMENT:
        return None
    return match["key_id"], match["secret"]


def authenticate(token: str, ip: str | None) -> ApiKey:
    """Return the key for a presented token or raise a 401/403 with a stable code."""
    parsed = parse_token(token)
    key = None
    if parsed:
        key = (
            ApiKey.dangerously_unscoped.select_related("tenant", "tenant__plan")
            .filter(key_id=parsed[0])
            .first()
        )
    # Compare even when nothing matched, so timing does not reveal which key ids exist.
    presented = _digest(parsed[1]) if parsed else _digest(token)
    if not hmac.compare_digest(presented, key.digest if key else _DUMMY_DIGEST) or key is None:
        raise InvalidApiKey()
    now = timezone.now()
    if key.revoked_at:
        raise ApiKeyRevoked()
    if key.expires_at and key.expires_at <= now:
        raise ApiKeyExpired()
    if not _ip_allowed(key, ip):
        raise IpNotAllowed()
    _touch_last_used(key, ip, now)
    return key


def _touch_last_used(key: ApiKey, ip: str | None, now: datetime) -> None:
    # At most one write per interval per key: the hot path should not write on every call.
    if key.last_used_at and now - key.last_used_at < settings.LAST_USED_WRITE_INTERVAL:
        return
    ApiKey.dangerously_unscoped.filter(pk=key.pk).update(last_used_at=now, last_used_ip=ip)
    key.last_used_at, key.last_used_ip = now, ip


UPDATABLE_FIELDS = ("name", "monthly_character_limit", "allowed_ips")


@transaction.atomic
def update_key(
    access: Access, key: ApiKey, context: audit.RequestContext | None = None, **changes
) -> ApiKey:
    """Change a key's name, per-key monthly character budget or IP allow-list (audited)."""
    check_can_manage(access, key, "modify")
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise InvalidRequest(f"Only {', '.join(UPDATABLE_FIELDS)} can be changed.")
    if "name" in changes:
        changes["name"] = validate_name(changes["name"])
    if "allowed_ips" in changes:
        changes["allowed_ips"] = validate_allowed_ips(changes["allowed_ips"])
    if "monthly_character_limit" in changes:
        changes["monthly_character_limit"] = validate_character_limit(
            changes["monthly_character_limit"]
        )
    before = key_snapshot(key)
    for name, value in changes.items():
        setattr(key, name, value)
    key.save(update_fields=list(changes) or None)
    audit.record(
        "apikey.update",
        tenant=key.tenant,
        context=context,
        target=key,
        before=before,
        after=key_snapshot(key),
    )
    return key


@transaction.atomic
def revoke_key(access: Access, key: ApiKey, context: audit.RequestContext | None = None) -> ApiKey:
    check_can_manage(access, key, "revoke")
    if key.revoked_at:
        return key
    before = key_snapshot(key)
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    audit.record(
        "apikey.revoke",
        tenant=key.tenant,
        context=context,
        target=key,
        before=before,
        after=key_snapshot(key),
    )
    return key


@transaction.atomic
def rotate_key(
    access: Access,
    key: ApiKey,
    *,
    grace: timedelta,
    context: audit.RequestContext | None = None,
    created_by=None,
) -> IssuedKey:
    """Issue a replacement with the same settings; the old key keeps working for `grace`."""
    check_can_manage(access, key, "rotate")
    if key.status != "active":
        raise InvalidRequest("Only an active key can be rotated.", code="key_not_active")
    if hasattr(key, "rotated_to"):
        raise InvalidRequest("This key has already been rotated.", code="key_already_rotated")
    if grace < timedelta(0) or grace > settings.API_KEY_MAX_ROTATION_GRACE:
        raise InvalidRequest(
            f"grace must be between 0 and {settings.API_KEY_MAX_ROTATION_GRACE}.",
            code="invalid_grace",
            details={"field": "grace"},
        )
    before = key_snapshot(key)
    original_expiry = key.expires_at
    grace_end = timezone.now() + grace
    key.expires_at = min(key.expires_at, grace_end) if key.expires_at else grace_end
    key.save(update_fields=["expires_at"])
    issued = create_key(
        access,
        name=key.name,
        scopes=key.scopes,
        context=context,
        created_by=created_by,
        expires_at=original_expiry,
        allowed_ips=key.allowed_ips,
        monthly_character_limit=key.monthly_character_limit,
        rotated_from=key,
    )
    audit.record(
        "apikey.rotate",
        tenant=key.tenant,
        context=context,
        target=key,
        before=before,
        after={**key_snapshot(key), "replaced_by": issued.key.prefix},
    )
    return issued

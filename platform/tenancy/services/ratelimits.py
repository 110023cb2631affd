"""Per-key and per-tenant request rate limits on the shared cache (django-ratelimit).

django-ratelimit only counts; this module turns its counts into 429s with `Retry-After` and
the IETF `RateLimit-*` headers (its own decorator would raise a bare 403).
"""

from __future__ import annotations

import math

from django.conf import settings
from django_ratelimit import ALL
from django_ratelimit.core import get_usage

from tenancy.services.errors import TooManyRequests


def _usage(request, group: str, ident: str, per_minute: int) -> dict:
    return get_usage(
        request,
        group=group,
        key=lambda _group, _request: ident,
        rate=f"{per_minute}/m",
        method=ALL,
        increment=True,
    )


def enforce(request, tenant, principal_id: str) -> dict[str, str]:
    """Count this request; raise 429 when over a limit. Returns headers for the response."""
    if not settings.RATELIMIT_ENABLE:
        return {}
    plan = tenant.plan
    windows = [
        _usage(request, "timbre.rl.principal", principal_id, plan.requests_per_minute_per_key),
        _usage(
            request, "timbre.rl.tenant", f"tenant:{tenant.pk}", plan.requests_per_minute_per_tenant
        ),
    ]
    tightest = min(windows, key=lambda w: w["limit"] - w["count"])
    remaining = max(0, tightest["limit"] - tightest["count"])
    reset = max(1, math.ceil(tightest["time_left"]))
    headers = {
        "RateLimit-Limit": str(tightest["limit"]),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
    }
    limited = [w for w in windows if w["should_limit"]]
    if limited:
        retry_after = max(math.ceil(w["time_left"]) for w in limited)
        headers.update({"Retry-After": str(max(1, retry_after)), "RateLimit-Remaining": "0"})
        raise TooManyRequests(
            f"Rate limit exceeded: at most {limited[0]['limit']} requests per minute. "
            f"Retry after {headers['Retry-After']} s.",
            code="rate_limited",
            headers=headers,
        )
    return headers

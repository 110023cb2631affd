"""The console's frame: access, navigation, pages, pagination, forms and exports.

Every console page goes through `console_view`, which resolves the signed-in member with the
same resolver, role matrix and suspension rule as the API, and scopes default-manager queries to
that tenant. Pages call the same services as the API; a service's `ApiError` becomes a message on
the form field it concerns, or an error page with the API's status and code. No rule lives here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.forms.renderers import DjangoTemplates
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage

from audit.services import RequestContext, context_from_request
from core import scoping
from core.errors import ApiError, NotFound
from tenancy.roles import Scope
from tenancy.services.access import Access, memberships_of, resolve_access
from tenancy.services.errors import TenantSuspended

PER_PAGE = 25


@dataclass(frozen=True)
class NavItem:
    section: str
    label: str
    url_name: str
    scope: str | None
    icon: str


# The sidebar, in order. A member sees the items their role's scopes allow; the page behind an
# item refuses the same members (404), so hiding a link is a courtesy, never the rule.
NAV = [
    NavItem("dashboard", "Dashboard", "frontend:dashboard", None, "home"),
    NavItem("voices", "Voices", "frontend:voices", Scope.VOICES_READ, "mic"),
    NavItem("consent", "Consent", "frontend:consents", Scope.CONSENT_READ, "shield"),
    NavItem("keys", "API keys", "frontend:keys", Scope.KEYS_READ, "key"),
    NavItem("usage", "Usage", "frontend:usage", Scope.USAGE_READ, "chart"),
    NavItem("rollouts", "Rollouts", "frontend:rollouts", Scope.MODELS_READ, "layers"),
    NavItem("audit", "Audit log", "frontend:audit", Scope.AUDIT_READ, "list"),
    NavItem("watermark", "Trace a clip", "frontend:watermark", Scope.AUDIT_READ, "search"),
    NavItem("members", "Members", "frontend:members", Scope.MEMBERS_READ, "users"),
    NavItem("settings", "Settings", "frontend:settings", None, "settings"),
]


class ConsoleRequest:
    """What a console view gets besides the request: who is acting, and the audit context the
    services record their events with."""

    def __init__(self, request, access: Access):
        self.request = request
        self.access = access

    @property
    def tenant(self):
        return self.access.tenant

    @property
    def audit_context(self) -> RequestContext:
        return context_from_request(self.request)

    def has(self, scope: str | None) -> bool:
        return self.access.has(scope)


def console_view(scope: str | None = None):
    """Decorate a view `view(request, console: ConsoleRequest, **kwargs)`.

    A tenant the user cannot see, or a page their role does not allow, is a 404 (as in the API,
    nothing is revealed); a suspended tenant is a 403 page that says so. A service error that the
    view does not handle itself becomes an error page with its status and code."""

    def decorate(view: Callable):
        @login_required
        @wraps(view)
        def wrapper(request, slug, *args, **kwargs):
            try:
                access = resolve_access(user=request.user, slug=slug)
            except NotFound as exc:
                raise Http404 from exc
            except TenantSuspended as exc:
                return render(
                    request, "frontend/suspended.html", {"message": exc.message}, status=403
                )
            if not access.has(scope):
                raise Http404
            console = ConsoleRequest(request, access)
            with scoping.tenant_context(access.tenant):
                try:
                    return view(request, console, *args, **kwargs)
                except NotFound as exc:
                    raise Http404 from exc
                except ApiError as exc:
                    return error_page(request, console, exc)

        return wrapper

    return decorate


def page_context(request, console: ConsoleRequest, section: str) -> dict:
    access = console.access
    return {
        "tenant": access.tenant,
        "membership": access.membership,
        "access": access,
        "console": console,
        "section": section,
        "nav": [item for item in NAV if access.has(item.scope)],
        "memberships": memberships_of(request.user),
    }


def render_page(
    request,
    console: ConsoleRequest,
    template: str,
    *,
    section: str,
    partial: str | None = None,
    status: int = 200,
    **context,
) -> HttpResponse:
    """Render a full page, or only `partial` when htmx asks for a fragment (a filter, a poll, an
    inline form): the same view and context serve both."""
    htmx = getattr(request, "htmx", None)
    if partial and htmx and not htmx.boosted:
        return render(request, partial, {"console": console, **context}, status=status)
    return render(
        request,
        template,
        {**page_context(request, console, section), **context},
        status=status,
    )


def error_page(request, console: ConsoleRequest, exc: ApiError) -> HttpResponse:
    return render(
        request,
        "frontend/error.html",
        {
            **page_context(request, console, ""),
            "error": exc,
            "request_id": getattr(request, "request_id", ""),
        },
        status=exc.status_code,
    )


@dataclass
class Pagination:
    page: object  # django.core.paginator.Page
    querystring: str  # the current filters, without `page`, for the page links

    @property
    def items(self):
        return self.page.object_list


def paginate(request, items, per_page: int = PER_PAGE) -> Pagination:
    """A page of `items`; an out-of-range or malformed page number gives the nearest page."""
    page = Paginator(items, per_page).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return Pagination(page=page, querystring=params.urlencode())


class ConsoleFormRenderer(DjangoTemplates):
    # Label, control, help and errors, with aria-describedby / aria-invalid wiring.
    field_template_name = "frontend/components/field.html"


class ConsoleForm(forms.Form):
    """A form whose fields render with their errors next to them, and which takes a service's
    `ApiError` onto the field it concerns (`error_fields` maps an error code to a field)."""

    default_renderer = ConsoleFormRenderer
    error_fields: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def add_service_error(self, exc: ApiError) -> None:
        field = self.error_fields.get(exc.error_code) or exc.details.get("field")
        self.add_error(field if field in self.fields else None, exc.message)


def _cell(value) -> str:
    # A spreadsheet runs a cell that starts with = + - @ as a formula: quote it (CSV injection).
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def throttled(request, group: str, subject: str, *, per_ip="20/m", per_subject="10/m") -> int:
    """Seconds to wait when this client, or anyone trying this `subject` (an account name, an
    invitation link), has tried too often; 0 when the attempt may go ahead. Counts the attempt."""
    windows = [
        get_usage(request, group=f"{group}.ip", key="ip", rate=per_ip, increment=True),
        get_usage(
            request,
            group=f"{group}.subject",
            key=lambda g, r: subject,
            rate=per_subject,
            increment=True,
        ),
    ]
    limited = [w for w in windows if w and w["should_limit"]]
    return max(1, max(int(w["time_left"]) for w in limited)) if limited else 0


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

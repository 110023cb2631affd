"""Admin console: server-rendered pages over the same services the API uses."""

from functools import wraps

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django_ratelimit.core import get_usage

from audit.models import AuditEvent
from audit.services import context_from_request
from core import scoping
from core.errors import NotFound
from speech import audio
from synthesis import watermarking
from tenancy.models import ApiKey
from tenancy.roles import Scope
from tenancy.services import quotas
from tenancy.services.access import Access, memberships_of, resolve_access
from tenancy.services.errors import TenantSuspended


class LoginView(auth_views.LoginView):
    """Sign-in, rate limited per client IP and per account name against password guessing."""

    template_name = "frontend/login.html"

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")[:200].lower()
        windows = [
            get_usage(request, group="console.login.ip", key="ip", rate="20/m", increment=True),
            get_usage(
                request,
                group="console.login.user",
                key=lambda g, r: username,
                rate="10/m",
                increment=True,
            ),
        ]
        limited = [w for w in windows if w and w["should_limit"]]
        if limited:
            retry = max(1, max(int(w["time_left"]) for w in limited))
            response = render(
                request,
                "frontend/login.html",
                {"form": self.get_form(), "rate_limited": retry},
                status=429,
            )
            response["Retry-After"] = str(retry)
            return response
        return super().post(request, *args, **kwargs)


def console_view(scope: str | None = None):
    """Resolve the signed-in member's access through the same resolver, role matrix and
    suspension rule as the API, and scope default-manager queries to that tenant. A tenant the
    user cannot see, or a page their role does not allow, is a 404 (as in the API, nothing is
    revealed); a suspended tenant is a 403 page that says so."""

    def decorate(view):
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
            with scoping.tenant_context(access.tenant):
                return view(request, access, *args, **kwargs)

        return wrapper

    return decorate


def _page(request, template: str, access: Access, **context):
    return render(
        request,
        template,
        {
            "tenant": access.tenant,
            "membership": access.membership,
            "can_audit": access.has(Scope.AUDIT_READ),
            **context,
        },
    )


@login_required
def home(request):
    return render(request, "frontend/home.html", {"memberships": memberships_of(request.user)})


@console_view()
def tenant_overview(request, access: Access):
    keys = (
        ApiKey.objects.for_tenant(access.tenant).order_by("-created_at")[:50]
        if access.has(Scope.KEYS_READ)
        else None
    )
    return _page(
        request,
        "frontend/tenant.html",
        access,
        keys=keys,
        quota=quotas.usage_summary(access.tenant),
    )


@console_view(Scope.AUDIT_READ)
def tenant_audit(request, access: Access):
    events = AuditEvent.objects.for_tenant(access.tenant).order_by("-seq")[:200]
    return _page(request, "frontend/audit.html", access, events=events)


@console_view(Scope.AUDIT_READ)
def watermark_detect(request, access: Access):
    """Auditors upload a clip found in the wild and learn which request made it."""
    result = error = None
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = "Choose an audio file to check."
        elif upload.size > settings.WATERMARK_DETECT_MAX_BYTES:
            error = "The file is too large."
        else:
            try:
                result = watermarking.identify(
                    access.tenant, upload.read(), context_from_request(request)
                )
            except audio.AudioError as exc:
                error = exc.message
    return _page(request, "frontend/watermark.html", access, result=result, error=error)

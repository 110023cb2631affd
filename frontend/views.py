"""Admin console: server-rendered pages over the same services the API uses."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django_ratelimit.core import get_usage

from audit.models import AuditEvent
from audit.services import context_from_request
from speech import audio
from synthesis import watermarking
from tenancy.models import ApiKey, Membership, Tenant
from tenancy.roles import ROLE_SCOPES, Scope
from tenancy.services import quotas, tenants


def _membership_or_404(request, slug: str) -> Membership:
    tenant = Tenant.objects.select_related("plan").filter(slug=slug).first()
    membership = tenants.membership_for(request.user, tenant) if tenant else None
    if membership is None:
        raise Http404
    return membership


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


@login_required
def home(request):
    memberships = Membership.dangerously_unscoped.filter(user=request.user).select_related("tenant")
    return render(request, "frontend/home.html", {"memberships": memberships})


@login_required
def tenant_overview(request, slug):
    membership = _membership_or_404(request, slug)
    tenant = membership.tenant
    scopes = ROLE_SCOPES[membership.role]
    keys = (
        ApiKey.objects.for_tenant(tenant).order_by("-created_at")[:50]
        if Scope.KEYS_READ in scopes
        else None
    )
    return render(
        request,
        "frontend/tenant.html",
        {
            "tenant": tenant,
            "membership": membership,
            "keys": keys,
            "quota": quotas.usage_summary(tenant),
            "can_audit": Scope.AUDIT_READ in scopes,
        },
    )


@login_required
def tenant_audit(request, slug):
    membership = _membership_or_404(request, slug)
    if Scope.AUDIT_READ not in ROLE_SCOPES[membership.role]:
        raise Http404
    events = AuditEvent.objects.for_tenant(membership.tenant).order_by("-seq")[:200]
    return render(
        request,
        "frontend/audit.html",
        {"tenant": membership.tenant, "membership": membership, "events": events},
    )


@login_required
def watermark_detect(request, slug):
    """Auditors upload a clip found in the wild and learn which request made it."""
    membership = _membership_or_404(request, slug)
    if Scope.AUDIT_READ not in ROLE_SCOPES[membership.role]:
        raise Http404
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
                    membership.tenant, upload.read(), context_from_request(request)
                )
            except audio.AudioError as exc:
                error = exc.message
    return render(
        request,
        "frontend/watermark.html",
        {
            "tenant": membership.tenant,
            "membership": membership,
            "result": result,
            "error": error,
        },
    )

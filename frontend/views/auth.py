"""Sign-in (rate limited), sign-out, the tenant picker and the tenant switcher."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from frontend.console import throttled
from tenancy.services.access import memberships_of


class LoginView(auth_views.LoginView):
    """Sign-in, rate limited per client IP and per account name against password guessing."""

    template_name = "frontend/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")[:200].lower()
        retry = throttled(request, "console.login", username)
        if retry:
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
    """The tenant picker; a member of one tenant goes straight to its dashboard."""
    memberships = list(memberships_of(request.user))
    if len(memberships) == 1:
        return redirect("frontend:dashboard", slug=memberships[0].tenant.slug)
    return render(request, "frontend/home.html", {"memberships": memberships})


@login_required
@require_POST
def switch_tenant(request):
    """The switcher posts a slug; the tenant page itself decides whether the user may see it."""
    slug = request.POST.get("tenant", "")
    if not any(m.tenant.slug == slug for m in memberships_of(request.user)):
        return redirect("frontend:home")
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        # Stay on the same section in the other tenant: /console/<slug>/<section>/...
        parts = target.split("/")
        if len(parts) > 3 and parts[1] == "console":
            section = parts[3]
            return redirect(f"/console/{slug}/{section + '/' if section else ''}")
    return redirect("frontend:dashboard", slug=slug)


urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="frontend:login"), name="logout"),
    path("switch/", switch_tenant, name="switch"),
    path("", home, name="home"),
]

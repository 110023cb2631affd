"""Settings: the tenant's name and legal name, its plan and limits.

Everyone sees them; owners and admins (scope `admin`) edit the name and the legal name, through
`tenancy.services.tenants.update_tenant_profile`, the service the API's `PATCH /tenant` uses.
"""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_POST

from core.errors import ApiError
from frontend.console import ConsoleForm, console_view, render_page
from tenancy.roles import Scope
from tenancy.services import quotas, tenants


class ProfileForm(ConsoleForm):
    error_fields = {"invalid_name": "name", "invalid_legal_name": "legal_name"}

    # The service strips and checks lengths; these bounds only keep the input reasonable.
    name = forms.CharField(
        required=False,
        max_length=1000,
        strip=False,
        widget=forms.TextInput(attrs={"required": True, "autocomplete": "organization"}),
        help_text="Shown in the console.",
    )
    legal_name = forms.CharField(
        required=False,
        max_length=1000,
        strip=False,
        label="Legal name",
        help_text="The company consent statements name (“… will be used by Acme Inc. …”). "
        "Empty: the name is used.",
    )


def _page(request, console, form, status=200):
    tenant = console.tenant
    return render_page(
        request,
        console,
        "frontend/settings.html",
        section="settings",
        form=form,
        can_edit=console.has(Scope.ADMIN),
        plan=tenant.plan,
        quota=quotas.usage_summary(tenant),
        status=status,
    )


@console_view()
def settings_page(request, console):
    tenant = console.tenant
    form = ProfileForm(initial={"name": tenant.name, "legal_name": tenant.legal_name})
    return _page(request, console, form)


@console_view(Scope.ADMIN)
@require_POST
def edit_profile(request, console):
    form = ProfileForm(request.POST)
    if form.is_valid():
        try:
            tenants.update_tenant_profile(
                console.access,
                name=form.cleaned_data["name"],
                legal_name=form.cleaned_data["legal_name"],
                context=console.audit_context,
            )
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, "Saved the profile.")
            return redirect("frontend:settings", slug=console.tenant.slug)
    return _page(request, console, form, status=400)


urlpatterns = [
    path("<slug:slug>/settings/", settings_page, name="settings"),
    path("<slug:slug>/settings/profile/", edit_profile, name="settings-profile"),
]

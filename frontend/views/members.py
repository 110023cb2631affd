"""Members: invite, change role, remove; pending invitations; the public accept page.

The rules (nobody grants more than they hold, only owners make owners, the last owner stays,
one-time invitation tokens) live in `tenancy.services.tenants`. An invitation's accept link is
rendered once, in the POST response that creates it, and mailed to the invitee; it is never
stored, put in the session or logged.
"""

import hashlib

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit.services import context_from_request
from core.errors import ApiError, NotFound
from frontend.console import ConsoleForm, console_view, paginate, render_page, throttled
from tenancy.models import Invitation, Membership
from tenancy.roles import Role, Scope
from tenancy.services import tenants

MAX_LISTED_INVITATIONS = 100


class InviteForm(ConsoleForm):
    error_fields = {
        "invalid_email": "email",
        "member_exists": "email",
        "invitation_pending": "email",
        "invalid_role": "role",
        "insufficient_scope": "role",
    }

    email = forms.CharField(
        max_length=254,
        required=False,
        widget=forms.EmailInput(attrs={"autocomplete": "off", "required": True}),
        help_text="Someone with an account joins at once; anyone else gets a link to set a "
        "password.",
    )
    # Every role is a valid choice (a role the member may not grant reaches the service, which
    # refuses it); only the roles they may grant are offered.
    role = forms.ChoiceField(choices=Role.choices)

    def __init__(self, *args, grantable=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].widget.choices = [
            (r, label) for r, label in Role.choices if r in grantable
        ]
        if Role.DEVELOPER in grantable:
            self.fields["role"].initial = Role.DEVELOPER


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class AcceptForm(ConsoleForm):
    error_fields = {"invalid_password": "password"}

    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "required": True}),
        help_text="At least 8 characters, not a common password.",
    )
    password_again = forms.CharField(
        required=False,
        strip=False,
        label="Password again",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "required": True}),
    )

    def clean(self):
        data = super().clean()
        if data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data


def _members_page(request, console, *, status=200, invite_form=None, **extra):
    tenant = console.tenant
    grantable = tenants.grantable_roles(console.access) if console.has(Scope.MEMBERS_WRITE) else []
    members = paginate(
        request,
        Membership.objects.for_tenant(tenant).select_related("user").order_by("created_at", "pk"),
    )
    pending = list(
        Invitation.objects.for_tenant(tenant)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())
        .select_related("invited_by")
        .order_by("-created_at")[: MAX_LISTED_INVITATIONS + 1]
    )
    for membership in members.items:
        membership.manageable = membership.role in grantable
    for invitation in pending:
        invitation.manageable = invitation.role in grantable
    response = render_page(
        request,
        console,
        "frontend/members.html",
        section="members",
        members=members,
        invitations=pending[:MAX_LISTED_INVITATIONS],
        more_invitations=len(pending) > MAX_LISTED_INVITATIONS,
        role_choices=[(r, label) for r, label in Role.choices if r in grantable],
        can_write=bool(grantable),
        invite_form=invite_form or InviteForm(grantable=grantable),
        status=status,
        **extra,
    )
    return response


@console_view(Scope.MEMBERS_READ)
def members_page(request, console):
    return _members_page(request, console)


@console_view(Scope.MEMBERS_WRITE)
@require_POST
def invite(request, console):
    grantable = tenants.grantable_roles(console.access)
    form = InviteForm(request.POST, grantable=grantable)
    if form.is_valid():
        try:
            result = tenants.invite_member(
                console.access,
                form.cleaned_data["email"],
                form.cleaned_data["role"],
                context=console.audit_context,
                base_url=request.build_absolute_uri("/"),
            )
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            if result.membership is not None:
                messages.success(
                    request,
                    f"{result.membership.user.get_username()} joined as "
                    f"{result.membership.get_role_display()}.",
                )
                return redirect("frontend:members", slug=console.tenant.slug)
            response = _members_page(
                request,
                console,
                status=201,
                invited=result.invitation,
                accept_url=request.build_absolute_uri(result.accept_url),
            )
            response["Cache-Control"] = "no-store"  # the page holds the one-time link
            return response
    return _members_page(request, console, status=400, invite_form=form)


def _membership_or_404(console, member_id) -> Membership:
    queryset = Membership.objects.for_tenant(console.tenant).select_related("user")
    return get_object_or_404(queryset, pk=member_id)


def _refused(request, console, exc: ApiError):
    """A refused change (the last owner, a role above the member's own) is shown on the
    members page with the service's message and status."""
    return _members_page(request, console, status=exc.status_code, action_error=exc.message)


@console_view(Scope.MEMBERS_WRITE)
@require_POST
def change_role(request, console, member_id):
    membership = _membership_or_404(console, member_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _members_page(
            request, console, status=400, action_error="Choose one of the listed roles."
        )
    try:
        tenants.change_role(
            console.access, membership, form.cleaned_data["role"], context=console.audit_context
        )
    except ApiError as exc:
        return _refused(request, console, exc)
    messages.success(
        request, f"{membership.user.get_username()} is now {membership.get_role_display()}."
    )
    return redirect("frontend:members", slug=console.tenant.slug)


@console_view(Scope.MEMBERS_WRITE)
@require_POST
def remove(request, console, member_id):
    membership = _membership_or_404(console, member_id)
    try:
        tenants.remove_member(console.access, membership, context=console.audit_context)
    except ApiError as exc:
        return _refused(request, console, exc)
    messages.success(request, f"Removed {membership.user.get_username()}.")
    if membership.user_id == request.user.pk:
        return redirect("frontend:home")
    return redirect("frontend:members", slug=console.tenant.slug)


@console_view(Scope.MEMBERS_WRITE)
@require_POST
def revoke_invitation(request, console, invitation_id):
    invitation = get_object_or_404(Invitation.objects.for_tenant(console.tenant), pk=invitation_id)
    try:
        tenants.revoke_invitation(console.access, invitation, context=console.audit_context)
    except ApiError as exc:
        return _refused(request, console, exc)
    messages.success(request, f"Revoked the invitation for {invitation.email}.")
    return redirect("frontend:members", slug=console.tenant.slug)


# --- The public accept page ---------------------------------------------------------------
def accept_invitation(request, token):
    invitation = tenants.pending_invitation(token)
    if invitation is None:
        return render(request, "frontend/invite_invalid.html", status=404)
    existing = tenants.existing_user_for(invitation)
    signed_in_as_invitee = existing is not None and request.user.pk == existing.pk
    context = {
        "invitation": invitation,
        "tenant": invitation.tenant,
        "existing": existing,
        "signed_in_as_invitee": signed_in_as_invitee,
    }
    if request.method != "POST":
        return render(request, "frontend/invite_accept.html", {**context, "form": AcceptForm()})
    # As sign-in: per client, and per link (its digest: the token itself is never a cache key).
    retry = throttled(request, "console.invite", hashlib.sha256(token.encode()).hexdigest())
    if retry:
        response = render(
            request,
            "frontend/invite_accept.html",
            {**context, "form": AcceptForm(), "rate_limited": retry},
            status=429,
        )
        response["Retry-After"] = str(retry)
        return response
    form = AcceptForm(request.POST)
    valid = form.is_valid()
    if existing is not None or valid:
        try:
            membership = tenants.accept_invitation(
                token,
                None if existing is not None else form.cleaned_data["password"],
                user=request.user,
                context=context_from_request(request),
            )
        except NotFound:
            return render(request, "frontend/invite_invalid.html", status=404)
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            if not signed_in_as_invitee:
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {membership.tenant.name}.")
            return redirect("frontend:dashboard", slug=membership.tenant.slug)
    return render(request, "frontend/invite_accept.html", {**context, "form": form}, status=400)


urlpatterns = [
    path("<slug:slug>/members/", members_page, name="members"),
    path("<slug:slug>/members/invite/", invite, name="members-invite"),
    path("<slug:slug>/members/<uuid:member_id>/role/", change_role, name="members-role"),
    path("<slug:slug>/members/<uuid:member_id>/remove/", remove, name="members-remove"),
    path(
        "<slug:slug>/members/invitations/<uuid:invitation_id>/revoke/",
        revoke_invitation,
        name="members-invitation-revoke",
    ),
]
# The invitation link: no tenant in the URL (the token names it), no sign-in.
public_urlpatterns = [
    path("invite/<str:token>/", accept_invitation, name="invite-accept"),
]

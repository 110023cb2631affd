"""API keys: create (secret shown once), scopes, expiry, IP allow-list, rotate, revoke.

Every change goes through `tenancy.services.keys`, which holds the rules (scopes the member
holds, expiry in the future, valid networks, grace limits). A new secret is rendered in the
POST response only: it is never put in the session, a URL, a message or a log, so reloading
or going back cannot show it again.
"""

import re
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.views.decorators.http import require_POST

from core.errors import ApiError
from frontend.console import ConsoleForm, console_view, paginate, render_page
from tenancy.models import ApiKey
from tenancy.roles import ALL_SCOPES, Scope
from tenancy.services import keys

SCOPE_HELP = {
    Scope.SYNTHESIZE: "Synthesize speech and read its own jobs",
    Scope.VOICES_READ: "List and read voices",
    Scope.VOICES_WRITE: "Create voices, upload recordings, fine-tune",
    Scope.CONSENT_READ: "Read talents and consent records",
    Scope.CONSENT_WRITE: "Enrol talents, record and revoke consent",
    Scope.USAGE_READ: "Usage reports and exports",
    Scope.AUDIT_READ: "Audit log and watermark detection",
    Scope.KEYS_READ: "List API keys",
    Scope.KEYS_WRITE: "Create, rotate and revoke API keys",
    Scope.MEMBERS_READ: "List members",
    Scope.MEMBERS_WRITE: "Invite, change and remove members",
    Scope.MODELS_READ: "Model versions and rollouts",
    Scope.MODELS_WRITE: "Register versions, run rollouts",
    Scope.ADMIN: "Everything above",
}
GRACE_CHOICES = [
    ("0", "None: the old key stops now"),
    ("3600", "1 hour"),
    ("86400", "24 hours"),
    ("604800", "7 days"),
]
DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


def split_networks(text: str) -> list[str]:
    """One address or CIDR per line, or separated by commas; the service validates each."""
    return [part.strip() for part in re.split(r"[,\s]+", text or "") if part.strip()]


class KeyFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), *[(s, s.title()) for s in keys.KEY_STATUSES]],
        widget=forms.Select(attrs={"data-autosubmit": ""}),
    )
    q = forms.CharField(
        required=False,
        max_length=100,
        label="Name",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Search by name"}),
    )


class KeyFieldsForm(ConsoleForm):
    """Name, IP allow-list and monthly character limit: what creating and editing share.
    The service validates them (blank name, bad network, negative limit)."""

    error_fields = {
        "invalid_name": "name",
        "invalid_ip": "allowed_ips",
        "invalid_character_limit": "monthly_character_limit",
    }

    name = forms.CharField(
        required=False,
        max_length=200,  # the service's limit (100) is the rule; this only bounds the input
        widget=forms.TextInput(attrs={"required": True, "autocomplete": "off"}),
        help_text="What uses this key, e.g. “mobile app (production)”.",
    )
    allowed_ips = forms.CharField(
        required=False,
        label="IP allow-list",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "203.0.113.0/24\n198.51.100.7"}),
        help_text="One address or CIDR range per line, or separated by commas. Empty: any IP.",
    )
    monthly_character_limit = forms.IntegerField(
        required=False,
        label="Monthly character limit",
        help_text="At most this many characters a month with this key. Empty: the plan's limit.",
    )

    # The service's own validators, field by field, so that every bad field is reported at
    # once; the service runs them again on save.
    def clean_name(self):
        return _validated(keys.validate_name, self.cleaned_data["name"])

    def clean_allowed_ips(self):
        return _validated(
            keys.validate_allowed_ips, split_networks(self.cleaned_data["allowed_ips"])
        )

    def clean_monthly_character_limit(self):
        return _validated(
            keys.validate_character_limit, self.cleaned_data["monthly_character_limit"]
        )


def _validated(validator, value):
    try:
        validator(value)
    except ApiError as exc:
        raise forms.ValidationError(exc.message) from exc
    return value


class CreateKeyForm(KeyFieldsForm):
    error_fields = {
        **KeyFieldsForm.error_fields,
        "invalid_scopes": "scopes",
        "insufficient_scope": "scopes",
        "invalid_expiry": "expires_at",
    }
    field_order = ["name", "scopes", "expires_at", "allowed_ips", "monthly_character_limit"]

    # Every scope is a valid choice (so a scope the member lacks reaches the service, which
    # refuses it); only the scopes the member holds are offered.
    scopes = forms.MultipleChoiceField(
        required=False,
        choices=[(s, s) for s in ALL_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="A key can hold only scopes you hold yourself.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires",
        input_formats=[DATETIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_FORMAT),
        help_text="Date and time in UTC. Empty: the key does not expire.",
    )

    def __init__(self, *args, held_scopes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].widget.choices = [
            (s, f"{s} · {SCOPE_HELP.get(s, '')}") for s in ALL_SCOPES if s in held_scopes
        ]


class RotateKeyForm(ConsoleForm):
    error_fields = {"invalid_grace": "grace", "key_not_active": None}

    grace = forms.TypedChoiceField(
        choices=GRACE_CHOICES,
        coerce=int,
        initial="86400",
        label="The old key keeps working for",
        widget=forms.RadioSelect,
        help_text="Time to deploy the new key before the old one stops.",
    )


def _key_or_404(console, key_id) -> ApiKey:
    queryset = ApiKey.objects.for_tenant(console.tenant).select_related("rotated_to")
    return get_object_or_404(queryset, pk=key_id)


def _issued_page(request, console, issued: keys.IssuedKey, *, rotated_from=None):
    response = render_page(
        request,
        console,
        "frontend/keys_created.html",
        section="keys",
        issued=issued,
        key=issued.key,
        rotated_from=rotated_from,
        status=201,
    )
    # The page holds the secret: never cached, never kept for the back button.
    response["Cache-Control"] = "no-store"
    return response


@console_view(Scope.KEYS_READ)
def keys_page(request, console):
    filters = KeyFilterForm(request.GET or None)
    queryset = (
        ApiKey.objects.for_tenant(console.tenant)
        .select_related("rotated_to", "created_by")
        .order_by("-created_at")
    )
    if filters.is_valid():
        queryset = keys.filter_by_status(queryset, filters.cleaned_data["status"])
        if filters.cleaned_data["q"]:
            queryset = queryset.filter(name__icontains=filters.cleaned_data["q"])
    page = paginate(request, queryset)
    for key in page.items:
        key.manageable = keys.can_manage(console.access, key)
    return render_page(
        request,
        console,
        "frontend/keys.html",
        section="keys",
        partial="frontend/keys_table.html",
        filters=filters if request.GET else KeyFilterForm(),
        keys=page,
        filtered=bool(request.GET.get("status") or request.GET.get("q")),
        can_write=console.has(Scope.KEYS_WRITE),
    )


@console_view(Scope.KEYS_WRITE)
def create_key(request, console):
    held = console.access.scopes
    if request.method != "POST":
        form = CreateKeyForm(held_scopes=held)
        return render_page(request, console, "frontend/key_form.html", section="keys", form=form)
    form = CreateKeyForm(request.POST, held_scopes=held)
    if form.is_valid():
        data = form.cleaned_data
        try:
            issued = keys.create_key(
                console.access,
                name=data["name"],
                scopes=data["scopes"],
                expires_at=data["expires_at"],
                allowed_ips=data["allowed_ips"],
                monthly_character_limit=data["monthly_character_limit"],
                created_by=request.user,
                context=console.audit_context,
            )
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            return _issued_page(request, console, issued)
    return render_page(
        request, console, "frontend/key_form.html", section="keys", form=form, status=400
    )


@console_view(Scope.KEYS_WRITE)
def edit_key(request, console, key_id):
    key = _key_or_404(console, key_id)
    # Refuse before showing the form what the service would refuse on saving.
    keys.check_can_manage(console.access, key, "modify")
    if request.method != "POST":
        form = KeyFieldsForm(
            initial={
                "name": key.name,
                "allowed_ips": "\n".join(key.allowed_ips),
                "monthly_character_limit": key.monthly_character_limit,
            }
        )
        return render_page(
            request, console, "frontend/key_edit.html", section="keys", form=form, key=key
        )
    form = KeyFieldsForm(request.POST)
    if form.is_valid():
        try:
            keys.update_key(console.access, key, context=console.audit_context, **form.cleaned_data)
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Saved “{key.name}”.")
            return redirect("frontend:keys", slug=console.tenant.slug)
    return render_page(
        request, console, "frontend/key_edit.html", section="keys", form=form, key=key, status=400
    )


@console_view(Scope.KEYS_WRITE)
def rotate_key(request, console, key_id):
    key = _key_or_404(console, key_id)
    keys.check_can_manage(console.access, key, "rotate")
    form = RotateKeyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            issued = keys.rotate_key(
                console.access,
                key,
                grace=timedelta(seconds=form.cleaned_data["grace"]),
                created_by=request.user,
                context=console.audit_context,
            )
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            return _issued_page(request, console, issued, rotated_from=key)
    return render_page(
        request,
        console,
        "frontend/key_rotate.html",
        section="keys",
        form=form,
        key=key,
        status=400 if request.method == "POST" else 200,
    )


@console_view(Scope.KEYS_WRITE)
@require_POST
def revoke_key(request, console, key_id):
    key = _key_or_404(console, key_id)
    keys.revoke_key(console.access, key, context=console.audit_context)
    messages.success(request, f"Revoked “{key.name}” ({key.masked}). It no longer works.")
    return redirect("frontend:keys", slug=console.tenant.slug)


urlpatterns = [
    path("<slug:slug>/keys/", keys_page, name="keys"),
    path("<slug:slug>/keys/new/", create_key, name="keys-create"),
    path("<slug:slug>/keys/<uuid:key_id>/edit/", edit_key, name="keys-edit"),
    path("<slug:slug>/keys/<uuid:key_id>/rotate/", rotate_key, name="keys-rotate"),
    path("<slug:slug>/keys/<uuid:key_id>/revoke/", revoke_key, name="keys-revoke"),
]

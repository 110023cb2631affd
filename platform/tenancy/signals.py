"""Console sign-ins and failed sign-ins are audited in each tenant the user belongs to (and in
the global chain when the user is unknown), so every tenant's auditors see attempts on their
members' accounts."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit import services as audit
from tenancy.models import Membership


def _record_for_user(action: str, user, request, username: str) -> None:
    context = audit.RequestContext(
        request_id=getattr(request, "request_id", "") if request else "",
        ip=audit.client_ip(request) if request else None,
        actor=audit.Actor(audit.AuditEvent.ActorType.USER, str(user.pk), username)
        if user
        else audit.Actor(audit.AuditEvent.ActorType.ANONYMOUS, "", username[:200]),
    )
    memberships = (
        Membership.dangerously_unscoped.select_related("tenant").filter(user=user) if user else []
    )
    tenants = [m.tenant for m in memberships] or [None]
    for tenant in tenants:
        audit.record(
            action,
            tenant=tenant,
            context=context,
            target_type="auth.user",
            target_id=str(user.pk) if user else "",
            target_repr=username[:200],
        )


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    _record_for_user("auth.login", user, request, user.get_username())


@receiver(user_logged_out)
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        _record_for_user("auth.logout", user, request, user.get_username())


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))
    user = get_user_model().objects.filter(username=username).first()
    _record_for_user("auth.login_failed", user, request, username)

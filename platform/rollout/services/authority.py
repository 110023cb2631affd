"""Who may act on model versions and rollouts: one check for the API, the console and the CLI.

- Platform versions and rollouts (no owner: the stock family) are run by platform operators:
  `manage.py register_model` / `manage.py rollout`, or a signed-in staff user on
  `/api/v1/platform/`.
- A tenant's own voices' versions and rollouts are run by its members or keys holding
  `models:write` (owners and admins); `models:read` sees them.
- Another tenant's version or rollout is a 404, the same answer as an unknown id.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.models import AuditEvent
from audit.services import Actor, RequestContext
from core.errors import Forbidden, NotFound
from tenancy.roles import Scope
from tenancy.services.access import Access


class PlatformOnly(Forbidden):
    default_code = "platform_operator_required"
    default_detail = "Platform versions and rollouts are managed by platform operators."


@dataclass(frozen=True)
class Authority:
    """The caller: a tenant's `Access`, or a platform operator (``access is None``)."""

    context: RequestContext
    access: Access | None = None

    @classmethod
    def operator(cls, label: str = "operator", *, user=None, request_id: str = "") -> Authority:
        if user is not None:
            actor = Actor(AuditEvent.ActorType.USER, str(user.pk), user.get_username())
        else:
            actor = Actor(AuditEvent.ActorType.SYSTEM, "", label)
        return cls(RequestContext(request_id=request_id, actor=actor))

    @classmethod
    def system(cls, label: str = "rollout-evaluator") -> Authority:
        return cls(RequestContext(actor=Actor.system(label)))

    @classmethod
    def for_access(cls, access: Access, context: RequestContext) -> Authority:
        return cls(context, access)

    @property
    def is_operator(self) -> bool:
        return self.access is None

    @property
    def label(self) -> str:
        return self.context.actor.label

    @property
    def tenant(self):
        return None if self.access is None else self.access.tenant

    def require_visible(self, owner_id) -> None:
        """Owned by another tenant: not found."""
        if (
            self.access is not None
            and owner_id is not None
            and str(owner_id) != str(self.access.tenant.pk)
        ):
            raise NotFound()

    def require_read(self, owner_id) -> None:
        self.require_visible(owner_id)
        if self.access is not None:
            self.access.require(Scope.MODELS_READ)

    def require_manage(self, owner_id) -> None:
        """Platform objects: operators only. A tenant's own: `models:write`."""
        self.require_visible(owner_id)
        if self.access is None:
            return
        if owner_id is None:
            raise PlatformOnly()
        self.access.require(Scope.MODELS_WRITE)

"""Who may use the platform (operator) routes: a signed-in Django staff user."""

from rest_framework.permissions import BasePermission

from core.errors import Unauthorized
from rollout.services.authority import PlatformOnly
from tenancy.models import ApiKey


class IsStaffOperator(BasePermission):
    """A signed-in Django staff user; API keys are a tenant's and never operators."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            raise PlatformOnly("This endpoint is for platform operators (staff users).")
        user = request.user
        if user is None or not user.is_authenticated:
            raise Unauthorized()
        if not user.is_staff:
            raise PlatformOnly("This endpoint is for platform operators (staff users).")
        return True

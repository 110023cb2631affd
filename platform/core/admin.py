from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Operators browse here; every change goes through the services (and the audit log) via
    the API, the console or the management commands, never through admin forms."""

    def get_queryset(self, request):
        # Operators see every tenant: the one place outside commands that crosses tenants.
        manager = getattr(self.model, "dangerously_unscoped", self.model._default_manager)
        return manager.get_queryset()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

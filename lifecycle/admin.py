from django.contrib import admin

from .audit import AuditEvent
from .models import Operation


class ReadOnlyTenantAdmin(admin.ModelAdmin):
    """Superusers look across tenants here; changes go through services (and the audit log)."""

    def get_queryset(self, request):
        # The admin is the one cross-tenant reader, for superusers only.
        return self.model.objects.dangerously_unscoped()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "org", "actor_email", "action", "target_type", "target_repr"]
    list_filter = ["action"]
    search_fields = ["actor_email", "action", "target_repr"]


@admin.register(Operation)
class OperationAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "org", "kind", "status", "progress", "attempts"]
    list_filter = ["status", "kind"]

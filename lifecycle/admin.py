from django.contrib import admin

from .audit import AuditEvent, audit_record
from .models import Operation


class AuditedAdmin(admin.ModelAdmin):
    """Admin writes go to the audit log of every org they concern, not only to LogEntry
    (which no org's admins can see). Django calls these hooks for every add, change
    (the password form included) and delete, inside the write's own transaction."""

    def audit_orgs(self, obj) -> list:
        """The orgs an object concerns: its own, or for an account every org it belongs to."""
        from accounts.models import Membership, Organization, User

        if isinstance(obj, Organization):
            return [obj]
        if getattr(obj, "org_id", None) is not None:
            return [obj.org]
        user = obj if isinstance(obj, User) else getattr(obj, "user", None)
        if user is None:
            return []
        return [m.org for m in Membership.objects.for_user(user).select_related("org")]

    def _audit(self, request, obj, action: str, message) -> None:
        for org in self.audit_orgs(obj):
            audit_record(
                org=org,
                actor=request.user,
                action=action,
                target=obj,
                # Django's change message names the fields changed, never their values.
                changes={"via": "django-admin", "message": message or ""},
            )

    def log_addition(self, request, obj, message):
        self._audit(request, obj, "admin.add", message)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit(request, obj, "admin.change", message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, obj, "admin.delete", "")
        return super().log_deletions(request, queryset)


class ReadOnlyTenantAdmin(AuditedAdmin):
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

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from lifecycle.admin import AuditedAdmin, ReadOnlyTenantAdmin

from .models import ApiToken, Membership, Organization, Stage, StageRole, User


@admin.register(User)
class UserAdmin(AuditedAdmin, BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "name", "is_active", "is_staff", "date_joined"]
    search_fields = ["email", "name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    filter_horizontal = ()
    list_filter = ["is_active", "is_staff"]

    def has_delete_permission(self, request, obj=None):
        return False  # users are deactivated, never deleted: the audit log points at them


@admin.register(Organization)
class OrganizationAdmin(AuditedAdmin):
    list_display = ["slug", "name", "created_at", "archived_at"]
    search_fields = ["slug", "name"]
    readonly_fields = ["slug", "created_at"]

    def has_delete_permission(self, request, obj=None):
        return False  # archive instead


@admin.register(Membership)
class MembershipAdmin(ReadOnlyTenantAdmin):
    list_display = ["org", "user", "role", "created_at"]
    list_filter = ["role"]


@admin.register(Stage)
class StageAdmin(ReadOnlyTenantAdmin):
    list_display = ["org", "position", "slug", "name"]


@admin.register(StageRole)
class StageRoleAdmin(ReadOnlyTenantAdmin):
    list_display = ["org", "membership", "stage", "role"]


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    list_display = ["user", "name", "prefix", "created_at", "expires_at", "revoked_at"]
    readonly_fields = ["user", "name", "prefix", "key_hash", "created_at", "expires_at", "last_used_at"]
    exclude = ["key_hash"]

    def has_add_permission(self, request):
        return False

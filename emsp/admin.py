from django.contrib import admin, messages

from emsp import services
from emsp.models import LogoUpload, PortalClient


@admin.action(description="Revoke the selected client keys")
def revoke_clients(modeladmin, request, queryset):
    for client in queryset.filter(revoked_at__isnull=True):
        services.portal_client_revoke(client=client)
    modeladmin.message_user(request, "Revoked.", messages.SUCCESS)


@admin.register(PortalClient)
class PortalClientAdmin(admin.ModelAdmin):
    list_display = ["name", "date_created", "revoked_at"]
    readonly_fields = ["date_created", "revoked_at"]
    actions = [revoke_clients]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        client, key = services.portal_client_create(name=obj.name)
        obj.pk, obj.key_digest = client.pk, client.key_digest
        self.message_user(request, f"Key for {client.name} (shown once): {key}", messages.WARNING)


@admin.register(LogoUpload)
class LogoUploadAdmin(admin.ModelAdmin):
    """Who uploaded which logo under which name: read-only, as the record of what a name resolves to."""

    list_display = ["file_name", "storage_name", "client", "cpo", "uploaded_at"]
    list_filter = ["client"]
    search_fields = ["file_name", "storage_name", "cpo__party_id"]
    list_select_related = ["client", "cpo"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# The drivers' room registers its own models.
import emsp.drivers.admin  # noqa: E402, F401

from django.contrib import admin, messages

from emsp import services
from emsp.models import PortalClient


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

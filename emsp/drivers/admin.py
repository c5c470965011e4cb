from django.contrib import admin
from django.utils import timezone

from emsp.drivers.models import Driver, DriverSession
from vehicles.models import AccountStatus


@admin.action(description="End the selected sessions (their tokens stop working)")
def end_sessions(modeladmin, request, queryset):
    queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


@admin.register(Driver)
class DriverAdmin(admin.ModelAdmin):
    # A driver's cars and accounts (freshness, quota, re-login) are in the Vehicles section; here how many
    # of the driver's accounts wait for a re-login, so that nobody's data goes stale unnoticed.
    list_display = ["user", "email", "country", "created_at", "accounts", "accounts_needing_relogin"]
    search_fields = ["user__username", "user__email"]
    raw_id_fields = ["user"]
    list_select_related = ["user"]

    @admin.display(description="e-mail")
    def email(self, obj):
        return obj.user.email

    @admin.display(description="maker accounts")
    def accounts(self, obj):
        return obj.user.maker_accounts.count()

    @admin.display(description="needing a re-login")
    def accounts_needing_relogin(self, obj):
        return obj.user.maker_accounts.filter(status=AccountStatus.NEEDS_RELOGIN).count()


@admin.register(DriverSession)
class DriverSessionAdmin(admin.ModelAdmin):
    list_display = ["user", "sid", "created_at", "refreshed_at", "revoked_at", "client_address"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__username", "sid"]
    readonly_fields = ["sid", "user", "refresh_jti", "created_at", "refreshed_at", "revoked_at", "client_address"]
    actions = [end_sessions]

    def has_add_permission(self, request):
        return False

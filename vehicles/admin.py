from django.contrib import admin

from vehicles import models as m


@admin.register(m.MakerAccount)
class MakerAccountAdmin(admin.ModelAdmin):
    # Quota state and errors in the list: hidden quotas and silent staleness are what drivers complain of.
    list_display = ("id", "driver", "provider", "label", "status", "quota_tokens", "quota_refill_at",
                    "cooldown_until", "access_expires_at", "last_error_at")
    list_filter = ("provider", "status")
    search_fields = ("external_id", "label", "driver__username")
    raw_id_fields = ("driver",)
    # The encrypted tokens are never shown, not even encrypted.
    exclude = ("secrets",)
    readonly_fields = ("access_expires_at", "refresh_expires_at", "quota_tokens", "quota_refill_at",
                       "last_error", "last_error_at", "created_at", "updated_at")


class StateInline(admin.StackedInline):
    model = m.VehicleState
    can_delete = False
    readonly_fields = ("soc", "range_km", "charging_state", "plugged", "charging_power_kw", "latitude",
                       "longitude", "odometer_km", "maker_timestamp", "fetched_at", "estimated")
    exclude = ("readings",)


@admin.register(m.Vehicle)
class VehicleAdmin(admin.ModelAdmin):
    list_display = ("vin", "brand", "model", "account", "poll_status", "next_poll_at", "last_success_at",
                    "poll_failures")
    list_filter = ("account__provider", "poll_status")
    search_fields = ("vin", "maker_id", "account__driver__username")
    raw_id_fields = ("account",)
    readonly_fields = ("last_polled_at", "last_success_at", "last_error", "created_at", "updated_at")
    inlines = [StateInline]


@admin.register(m.VehicleSample)
class VehicleSampleAdmin(admin.ModelAdmin):
    list_display = ("vehicle", "maker_timestamp", "soc", "range_km", "charging_state", "plugged", "source")
    list_filter = ("source", "charging_state")
    raw_id_fields = ("vehicle",)
    date_hierarchy = "maker_timestamp"


@admin.register(m.RemoteAction)
class RemoteActionAdmin(admin.ModelAdmin):
    list_display = ("id", "vehicle", "action", "status", "requested_at", "finished_at", "attempts")
    list_filter = ("status", "action")
    raw_id_fields = ("vehicle",)
    readonly_fields = ("requested_at",)


class WindowInline(admin.TabularInline):
    model = m.ChargingWindow
    extra = 0


@admin.register(m.ChargingSchedule)
class ChargingScheduleAdmin(admin.ModelAdmin):
    list_display = ("vehicle", "enabled", "optimized_charge", "updated_at", "deployed_at")
    raw_id_fields = ("vehicle",)
    inlines = [WindowInline]


@admin.register(m.PreconditionSchedule)
class PreconditionScheduleAdmin(admin.ModelAdmin):
    list_display = ("vehicle", "start", "weekdays", "enabled", "cancelled_at", "created_at")
    raw_id_fields = ("vehicle",)


@admin.register(m.NotificationSettings)
class NotificationSettingsAdmin(admin.ModelAdmin):
    list_display = ("vehicle", "battery_status", "charge_start", "charge_end", "charge_problem", "low_battery",
                    "low_battery_reminder", "do_not_disturb_start", "do_not_disturb_end")
    raw_id_fields = ("vehicle",)

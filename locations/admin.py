from django.contrib import admin, messages

from locations import services
from locations.enums import Moderation
from locations.models import (
    Capability,
    Connector,
    ConnectorType,
    Cpo,
    CsvImport,
    Evse,
    Facility,
    Location,
    ParkingRestriction,
    ParkingTypeCode,
    PaymentType,
    Photo,
    Tariff,
)


@admin.register(ConnectorType, Facility, Capability, PaymentType, ParkingTypeCode, ParkingRestriction)
class LookupAdmin(admin.ModelAdmin):
    list_display = ["code", "description"]
    search_fields = ["code", "description"]


@admin.register(Cpo)
class CpoAdmin(admin.ModelAdmin):
    list_display = ["party_id", "country_code", "owner_name", "contact_email", "ocpp_ready", "auto_publish"]
    list_filter = ["country_code", "ocpp_ready", "auto_publish"]
    search_fields = ["party_id", "owner_name", "contact_email"]
    raw_id_fields = ["owner"]


def _moderate(modeladmin, request, queryset, moderation: str, moderate) -> None:
    count = 0
    for obj in queryset:
        moderate(obj, moderation)
        count += 1
    verb = "published" if moderation == Moderation.PUBLISHED else "unpublished"
    modeladmin.message_user(request, f"{count} {verb}.", messages.SUCCESS)


def _moderate_location(location, moderation):
    services.location_moderate(location=location, moderation=moderation)


def _moderate_evse(evse, moderation):
    services.evse_moderate(evse=evse, moderation=moderation)


@admin.action(description="Publish the selected locations and their EVSEs")
def publish_locations(modeladmin, request, queryset):
    _moderate(modeladmin, request, queryset, Moderation.PUBLISHED, _moderate_location)


@admin.action(description="Unpublish the selected locations and their EVSEs")
def unpublish_locations(modeladmin, request, queryset):
    _moderate(modeladmin, request, queryset, Moderation.UNPUBLISHED, _moderate_location)


@admin.action(description="Publish the selected EVSEs")
def publish_evses(modeladmin, request, queryset):
    _moderate(modeladmin, request, queryset, Moderation.PUBLISHED, _moderate_evse)


@admin.action(description="Unpublish the selected EVSEs")
def unpublish_evses(modeladmin, request, queryset):
    _moderate(modeladmin, request, queryset, Moderation.UNPUBLISHED, _moderate_evse)


class EvseInline(admin.TabularInline):
    model = Evse
    fields = ["uid", "evse_id", "status", "moderation", "last_updated"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ["name", "city", "country", "cpo", "moderation", "publish", "last_updated"]
    list_filter = ["moderation", "publish", "country", "cpo"]
    search_fields = ["name", "address", "city", "ocpi_id"]
    list_select_related = ["cpo"]
    raw_id_fields = ["cpo"]
    filter_horizontal = ["facilities", "parking_types", "parking_restrictions"]
    actions = [publish_locations, unpublish_locations]
    inlines = [EvseInline]
    show_full_result_count = False


class ConnectorInline(admin.TabularInline):
    model = Connector
    fields = ["connector_id", "standard", "format", "power_type", "max_voltage", "max_amperage",
              "max_electric_power", "last_updated"]
    extra = 0


@admin.register(Evse)
class EvseAdmin(admin.ModelAdmin):
    list_display = ["uid", "evse_id", "location", "status", "moderation", "last_updated"]
    list_filter = ["moderation", "status"]
    search_fields = ["uid", "evse_id", "location__name"]
    list_select_related = ["location"]
    raw_id_fields = ["location"]
    filter_horizontal = ["capabilities", "payment_types", "parking_restrictions"]
    actions = [publish_evses, unpublish_evses]
    inlines = [ConnectorInline]
    show_full_result_count = False


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    list_display = ["connector_id", "evse", "standard", "power_type", "max_electric_power"]
    list_filter = ["standard", "power_type"]
    raw_id_fields = ["evse", "connector_type"]
    list_select_related = ["evse"]
    show_full_result_count = False


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    list_display = ["ocpi_id", "cpo", "currency", "type", "last_updated"]
    raw_id_fields = ["cpo"]


@admin.register(Photo)
class PhotoAdmin(admin.ModelAdmin):
    list_display = ["image", "location", "content_type", "date_created"]
    raw_id_fields = ["location"]


@admin.register(CsvImport)
class CsvImportAdmin(admin.ModelAdmin):
    """Read-only: an import is the CPO's upload and what came of it; nothing here may change either."""

    list_display = ["id", "cpo", "file_name", "status", "rows", "created", "updated", "unchanged", "error_count",
                    "date_created", "finished_at"]
    list_filter = ["status", "background", "format"]
    search_fields = ["file_name", "cpo__party_id", "cpo__owner_name"]
    list_select_related = ["cpo"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in CsvImport._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

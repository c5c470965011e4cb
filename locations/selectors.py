"""Reads of the catalogue that are more than a `.get()`, shaped for what they serve."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Upper

from locations.enums import Moderation
from locations.models import (
    Capability,
    ConnectorType,
    Cpo,
    Evse,
    Facility,
    Location,
    ParkingRestriction,
    ParkingTypeCode,
    PaymentType,
    Photo,
)

FILTER_LOOKUPS = {
    "connector_types": ConnectorType,
    "facilities": Facility,
    "capabilities": Capability,
    "payment_types": PaymentType,
    "parking_types": ParkingTypeCode,
    "parking_restrictions": ParkingRestriction,
}


def visible_locations() -> QuerySet[Location]:
    """What drivers' apps and eMSPs may see: published by the hub and by the CPO."""
    return Location.objects.filter(moderation=Moderation.PUBLISHED, publish=True)


def filters_all() -> dict[str, list[dict]]:
    return {name: list(model.objects.order_by("id").values("id", "code", "description"))
            for name, model in FILTER_LOOKUPS.items()}


def cities_in_province(*, province: str, limit: int, offset: int) -> list[str]:
    """Cities with published locations in the province (case-insensitive), alphabetically."""
    cities = (visible_locations().annotate(province_key=Upper("province"))
              .filter(province_key=province.strip().upper()).exclude(city="")
              .values_list("city", flat=True).distinct().order_by("city"))
    return list(cities[offset:offset + limit])


def pending_counts(*, cpo: Cpo) -> dict[str, int]:
    locations = Location.objects.filter(cpo=cpo).aggregate(
        pending=Count("id", filter=Q(moderation=Moderation.PENDING)))
    evses = Evse.objects.filter(location__cpo=cpo).aggregate(
        pending=Count("id", filter=Q(moderation=Moderation.PENDING)))
    return {"pending_locations": locations["pending"], "pending_evses": evses["pending"]}


def location_of_cpo(*, cpo: Cpo, location_id) -> Location | None:
    try:
        return Location.objects.filter(cpo=cpo, pk=int(location_id)).first()
    except (TypeError, ValueError):
        return None


def photo_of_cpo(*, cpo: Cpo, photo_id) -> Photo | None:
    try:
        return Photo.objects.filter(location__cpo=cpo, pk=int(photo_id)).select_related("location").first()
    except (TypeError, ValueError):
        return None

"""Every write to the catalogue. Portal, webhooks, CSV and OCPI all come through these functions.

Each one validates with `locations.validation` (OCPI 2.2.1 rules, harmless quirks normalised), ignores
an update older than what is stored, keeps `last_updated` propagating connector -> EVSE -> location,
keeps new locations and EVSEs pending unless their CPO auto-publishes, and writes only what changed,
so the same payload twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from locations import signals
from locations.enums import Moderation, Status
from locations.models import (
    Capability,
    Connector,
    ConnectorType,
    Cpo,
    Evse,
    Facility,
    Location,
    ParkingRestriction,
    ParkingTypeCode,
    PaymentType,
)
from locations.tokens import token_digest, token_new
from locations.validation import V221, InvalidPayload, clean_connector, clean_evse, clean_location, timestamp

__all__ = [
    "InvalidPayload",
    "UpsertResult",
    "connector_patch",
    "connector_upsert",
    "cpo_create",
    "cpo_token_c_rotate",
    "evse_moderate",
    "evse_patch",
    "evse_status_patch",
    "evse_upsert",
    "location_moderate",
    "location_patch",
    "location_upsert",
]

LOCATION_M2M = {"facilities": Facility, "parking_types": ParkingTypeCode, "parking_restrictions": ParkingRestriction}
EVSE_M2M = {"capabilities": Capability, "payment_types": PaymentType, "parking_restrictions": ParkingRestriction}
EVSE_PREFETCH = ["connectors__connector_type", *EVSE_M2M]
LOCATION_PREFETCH = [*LOCATION_M2M, *(f"evses__{name}" for name in EVSE_PREFETCH), "evses"]


@dataclass(frozen=True)
class UpsertResult:
    instance: Any
    created: bool = False
    changed: bool = False
    stale: bool = False


# --- Locations -------------------------------------------------------------------------------------

def location_upsert(*, cpo: Cpo, data: dict, version: str = V221) -> UpsertResult:
    """Create or replace a whole Location (with its EVSEs and connectors) of `cpo`."""
    clean = clean_location(data, version=version)
    _check_party(cpo, clean)
    try:
        with transaction.atomic():
            return _location_write(cpo, clean, partial=False)
    except IntegrityError:
        # A concurrent writer created the same location first: replay as an update of its row.
        with transaction.atomic():
            return _location_write(cpo, clean, partial=False)


def location_patch(*, location: Location, data: dict, version: str = V221) -> UpsertResult:
    """OCPI PATCH of a Location: only the fields given change; `last_updated` is required."""
    clean = clean_location(data, version=version, partial=True)
    _require_last_updated(clean)
    _check_party(location.cpo, clean)
    if "ocpi_id" in clean and clean["ocpi_id"] != location.ocpi_id:
        raise InvalidPayload({"id": "the id of a location can never be changed"})
    with transaction.atomic():
        return _location_write(location.cpo, {**clean, "ocpi_id": location.ocpi_id}, partial=True)


def _location_write(cpo: Cpo, clean: dict, *, partial: bool) -> UpsertResult:
    evses = clean.pop("evses", None)
    m2m = {name: clean.pop(name) for name in LOCATION_M2M if name in clean}
    for key in ("country_code", "party_id"):
        clean.pop(key, None)
    incoming = _newest(clean.get("last_updated"), evses)
    location = (
        Location.objects.select_for_update().filter(cpo=cpo, ocpi_id=clean["ocpi_id"])
        .prefetch_related(*LOCATION_PREFETCH).first()
    )
    if location is None:
        if partial:
            raise Location.DoesNotExist(f"location {clean['ocpi_id']!r} does not exist")
        location = Location(cpo=cpo, moderation=_initial_moderation(cpo))
    elif location.last_updated > incoming:
        return UpsertResult(location, stale=True)
    created = location.pk is None
    clean["last_updated"] = incoming
    changed = _assign_and_save(location, clean)
    changed |= _set_codes(location, m2m, LOCATION_M2M)
    if evses is not None:
        changed |= _replace_evses(location, evses, removed_at=incoming)
    if changed:
        signals.send_location_changed(location, created=created)
    return UpsertResult(location, created=created, changed=changed)


def _replace_evses(location: Location, evses: list[dict], *, removed_at: datetime) -> bool:
    """A full Location replaces its EVSE list; EVSEs it no longer names are REMOVED, never deleted."""
    stored = {evse.uid: evse for evse in location.evses.all()}
    changed = False
    for clean in evses:
        changed |= _evse_write(location, stored.pop(clean["uid"], None), clean, partial=False).changed
    for evse in stored.values():
        if evse.status != Status.REMOVED:
            evse.status, evse.last_updated = Status.REMOVED, removed_at
            evse.save(update_fields=["status", "last_updated", "date_modified"])
            changed = True
    return changed


# --- EVSEs -----------------------------------------------------------------------------------------

def evse_upsert(*, location: Location, data: dict, version: str = V221) -> UpsertResult:
    """Create or replace one EVSE (with its connectors) of `location`."""
    clean = clean_evse(data, version=version)
    with transaction.atomic():
        stored = _evse_for_update(location, clean["uid"])
        result = _evse_write(location, stored, clean, partial=False)
        _touch_location(location, result)
    return result


def evse_patch(*, evse: Evse, data: dict, version: str = V221) -> UpsertResult:
    """OCPI PATCH of an EVSE: only the fields given change; `last_updated` is required."""
    clean = clean_evse(data, version=version, partial=True)
    _require_last_updated(clean)
    if "uid" in clean and clean["uid"] != evse.uid:
        raise InvalidPayload({"uid": "the uid of an EVSE can never be changed"})
    with transaction.atomic():
        stored = _evse_for_update(evse.location, evse.uid)
        result = _evse_write(evse.location, stored, {**clean, "uid": evse.uid}, partial=True)
        _touch_location(evse.location, result)
    return result


def evse_status_patch(*, evse: Evse, status: str, last_updated: datetime | str | None = None) -> UpsertResult:
    """The most frequent write of all: an EVSE's status changed."""
    data = {"status": status, "last_updated": last_updated or timezone.now().isoformat()}
    if isinstance(data["last_updated"], datetime):
        data["last_updated"] = data["last_updated"].isoformat()
    return evse_patch(evse=evse, data=data)


def _evse_for_update(location: Location, uid: str) -> Evse | None:
    return Evse.objects.select_for_update().filter(location=location, uid=uid).prefetch_related(*EVSE_PREFETCH).first()


def _evse_write(location: Location, evse: Evse | None, clean: dict, *, partial: bool) -> UpsertResult:
    connectors = clean.pop("connectors", None)
    m2m = {name: clean.pop(name) for name in EVSE_M2M if name in clean}
    incoming = _newest(clean.get("last_updated"), connectors)
    if evse is None:
        if partial:
            raise Evse.DoesNotExist(f"EVSE {clean['uid']!r} does not exist")
        evse = Evse(location=location, moderation=_initial_moderation(location.cpo))
    elif evse.last_updated > incoming:
        return UpsertResult(evse, stale=True)
    created = evse.pk is None
    clean["last_updated"] = incoming
    changed = _assign_and_save(evse, clean)
    changed |= _set_codes(evse, m2m, EVSE_M2M)
    if connectors is not None:
        changed |= _replace_connectors(evse, connectors)
    return UpsertResult(evse, created=created, changed=changed)


def _replace_connectors(evse: Evse, connectors: list[dict]) -> bool:
    stored = {connector.connector_id: connector for connector in evse.connectors.all()}
    changed = False
    for clean in connectors:
        changed |= _connector_write(evse, stored.pop(clean["connector_id"], None), clean, partial=False).changed
    if stored:
        Connector.objects.filter(pk__in=[c.pk for c in stored.values()]).delete()
        changed = True
    return changed


# --- Connectors ------------------------------------------------------------------------------------

def connector_upsert(*, evse: Evse, data: dict, version: str = V221) -> UpsertResult:
    clean = clean_connector(data, version=version)
    with transaction.atomic():
        stored = Connector.objects.select_for_update().filter(evse=evse, connector_id=clean["connector_id"]).first()
        result = _connector_write(evse, stored, clean, partial=False)
        _touch_evse(evse, result)
    return result


def connector_patch(*, connector: Connector, data: dict, version: str = V221) -> UpsertResult:
    clean = clean_connector(data, version=version, partial=True)
    _require_last_updated(clean)
    if "connector_id" in clean and clean["connector_id"] != connector.connector_id:
        raise InvalidPayload({"id": "the id of a connector can never be changed"})
    with transaction.atomic():
        stored = Connector.objects.select_for_update().get(pk=connector.pk)
        result = _connector_write(connector.evse, stored, clean, partial=True)
        _touch_evse(connector.evse, result)
    return result


def _connector_write(evse: Evse, connector: Connector | None, clean: dict, *, partial: bool) -> UpsertResult:
    code = clean.pop("connector_type_code", None)
    if connector is None:
        connector = Connector(evse=evse)
    elif connector.last_updated > clean["last_updated"]:
        return UpsertResult(connector, stale=True)
    if code is not None and (connector.connector_type is None or connector.connector_type.code != code):
        clean["connector_type"] = ConnectorType.objects.filter(code=code).first()
    created = connector.pk is None
    changed = _assign_and_save(connector, clean)
    return UpsertResult(connector, created=created, changed=changed)


# --- Moderation (the hub's review before drivers and eMSPs see an object) ---------------------------

def location_moderate(*, location: Location, moderation: str, with_evses: bool = True) -> Location:
    """Publish or unpublish a location (and by default its EVSEs) for drivers' apps and eMSPs."""
    moderation = Moderation(moderation)
    with transaction.atomic():
        Location.objects.filter(pk=location.pk).update(moderation=moderation, date_modified=timezone.now())
        if with_evses:
            location.evses.exclude(moderation=moderation).update(moderation=moderation, date_modified=timezone.now())
        location.moderation = moderation
        signals.send_location_changed(location, created=False)
    return location


def evse_moderate(*, evse: Evse, moderation: str) -> Evse:
    moderation = Moderation(moderation)
    with transaction.atomic():
        Evse.objects.filter(pk=evse.pk).update(moderation=moderation, date_modified=timezone.now())
        evse.moderation = moderation
        signals.send_location_changed(evse.location, created=False)
    return evse


# --- Shared pieces ---------------------------------------------------------------------------------

def _check_party(cpo: Cpo, clean: dict) -> None:
    errors = {}
    for key, expected in (("country_code", cpo.country_code), ("party_id", cpo.party_id)):
        given = clean.get(key)
        if given is not None and given.upper() != expected.upper():
            errors[key] = f"{given!r} does not match the CPO sending it ({expected})"
    if errors:
        raise InvalidPayload(errors)


def _require_last_updated(clean: dict) -> None:
    if clean.get("last_updated") is None:
        raise InvalidPayload({"last_updated": "is required in a PATCH"})


def _initial_moderation(cpo: Cpo) -> str:
    return Moderation.PUBLISHED if cpo.auto_publish else Moderation.PENDING


def _newest(own: datetime | None, children: Iterable[dict] | None) -> datetime:
    """An object is as new as its newest part: OCPI's `last_updated` covers the children too."""
    stamps = [own] if own else []
    stamps += [_newest(child.get("last_updated"), child.get("connectors")) for child in children or ()]
    return max(stamps) if stamps else timezone.now()


def _assign_and_save(instance: models.Model, values: dict) -> bool:
    """Set the given fields and save only those that differ; returns whether anything changed."""
    changed = [name for name, value in values.items() if _field_value(instance, name) != value]
    if instance.pk is None:
        for name, value in values.items():
            setattr(instance, name, value)
        instance.full_clean(validate_unique=False, validate_constraints=False, exclude=_unchecked(instance))
        instance.save()
        return True
    if not changed:
        return False
    for name in changed:
        setattr(instance, name, values[name])
    instance.save(update_fields=[*changed, "date_modified"])
    return True


def _unchecked(instance: models.Model) -> list[str]:
    # Validation already happened in `locations.validation`; only the model's own invariants remain.
    return [f.name for f in instance._meta.fields if f.name not in ("address_lat", "address_lng", "country")]


def _field_value(instance: models.Model, name: str) -> Any:
    field = instance._meta.get_field(name)
    if field.is_relation:
        return getattr(instance, name, None)
    return getattr(instance, field.attname)


def _set_codes(instance: models.Model, wanted: dict[str, list[str] | None], models_by_name: dict) -> bool:
    """Set the lookup-code relations given (facilities, capabilities, ...) where they differ."""
    changed = False
    for name, codes in wanted.items():
        codes = codes or []
        current = [] if instance.pk is None else sorted(obj.code for obj in getattr(instance, name).all())
        if current == sorted(codes):
            continue
        rows = list(models_by_name[name].objects.filter(code__in=codes))
        unknown = set(codes) - {row.code for row in rows}
        if unknown:
            raise InvalidPayload({name: f"unknown codes: {', '.join(sorted(unknown))}"})
        getattr(instance, name).set(rows)
        changed = True
    return changed


def _touch_location(location: Location, result: UpsertResult) -> None:
    """A changed EVSE makes its location newer too (OCPI last_updated covers the children)."""
    if not result.changed:
        return
    Location.objects.filter(pk=location.pk, last_updated__lt=result.instance.last_updated).update(
        last_updated=result.instance.last_updated, date_modified=timezone.now()
    )
    location.refresh_from_db(fields=["last_updated"])
    signals.send_location_changed(location, created=False)


def _touch_evse(evse: Evse, result: UpsertResult) -> None:
    if not result.changed:
        return
    Evse.objects.filter(pk=evse.pk, last_updated__lt=result.instance.last_updated).update(
        last_updated=result.instance.last_updated, date_modified=timezone.now()
    )
    evse.refresh_from_db(fields=["last_updated"])
    _touch_location(evse.location, UpsertResult(evse, changed=True))


def parse_timestamp(value: str) -> datetime:
    """OCPI DateTime parsing for the adapters (query parameters, webhooks)."""
    return timestamp(value)


# --- Tenants -----------------------------------------------------------------------------------------

def cpo_create(*, country_code: str, party_id: str, owner_name: str, contact_name: str = "",
               contact_number: str = "", contact_email: str = "", ocpp_ready: bool = False,
               auto_publish: bool = False, owner=None) -> tuple[Cpo, str]:
    """Create a CPO with its OCPI token C; the token is returned once and stored as a digest."""
    token_c = token_new()
    cpo = Cpo(
        country_code=country_code.upper(), party_id=party_id.upper(), owner_name=owner_name,
        contact_name=contact_name, contact_number=contact_number, contact_email=contact_email,
        ocpp_ready=ocpp_ready, auto_publish=auto_publish, owner=owner, token_c_digest=token_digest(token_c),
    )
    cpo.full_clean()
    cpo.save()
    return cpo, token_c


def cpo_token_c_rotate(*, cpo: Cpo) -> str:
    token_c = token_new()
    cpo.token_c_digest = token_digest(token_c)
    cpo.save(update_fields=["token_c_digest", "date_modified"])
    return token_c

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

from django.db import IntegrityError, transaction
from django.utils import timezone

from locations import signals, writer
from locations.enums import Moderation
from locations.memory import gc_paused
from locations.models import Connector, Cpo, Evse, Location
from locations.tokens import token_digest, token_new
from locations.validation import V221, InvalidPayload, clean_connector, clean_evse, clean_location

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
    "location_upsert_many",
]

@dataclass(frozen=True)
class UpsertResult:
    outcome: writer.Outcome
    created: bool = False
    changed: bool = False
    stale: bool = False

    @property
    def instance(self) -> Any:
        # Asked of the outcome when wanted: a location the writer inserted as a row (writer.new_rows) gets its
        # instance made then; a pull, which only counts outcomes, never asks.
        return self.outcome.instance

    @classmethod
    def of(cls, outcome: writer.Outcome) -> "UpsertResult":
        return cls(outcome, outcome.created, outcome.changed, outcome.stale)


# --- Locations -------------------------------------------------------------------------------------

def location_upsert(*, cpo: Cpo, data: dict, version: str = V221, stamped: bool = True) -> UpsertResult:
    """Create or replace a whole Location (with its EVSEs and connectors) of `cpo`."""
    result = location_upsert_many(cpo=cpo, items=[data], version=version, stamped=stamped)[0]
    if isinstance(result, InvalidPayload):
        raise result
    return result


def location_upsert_many(*, cpo: Cpo, items: Iterable[dict], version: str = V221, replace_evses: bool = True,
                         stamped: bool = True, only_given_fields: bool = False) -> list[UpsertResult | InvalidPayload]:
    """Create or replace many Locations of `cpo` in one batch; one result or error per item, in order.

    With `replace_evses=False` the EVSEs given are merged into what is stored (CSV imports), instead of
    replacing the list. An id given twice is merged in order (later EVSEs and fields win). With
    `stamped=False` (sources without timestamps) what changed is stamped with the time of the write.
    With `only_given_fields=True` (a CSV has columns for some fields only) a field the item does not
    carry keeps its stored value instead of being cleared, on every level.
    """
    with gc_paused():
        return _upsert_many(cpo, items, version, replace_evses, stamped, only_given_fields)


def _upsert_many(cpo, items, version, replace_evses, stamped, only_given_fields):
    results: list[UpsertResult | InvalidPayload | None] = []
    changes: dict[str, writer.LocationChange] = {}
    positions: list[str | None] = []
    for data in items:
        try:
            clean = clean_location(data, version=version, stamped=stamped)
            _check_party(cpo, clean)
            if only_given_fields:
                clean = _given_only(clean, data, LOCATION_SOURCES)
        except InvalidPayload as exc:
            results.append(exc.with_traceback(None))  # its traceback would hold this frame, and so `results`
            positions.append(None)
            continue
        change = writer.location_change(clean, replace_evses=replace_evses)
        if change.ocpi_id in changes:
            _merge(changes[change.ocpi_id], change)
        else:
            changes[change.ocpi_id] = change
        results.append(None)
        positions.append(change.ocpi_id)
    if changes:
        _apply_with_retry(cpo, list(changes.values()))
    return [result if ocpi_id is None else UpsertResult.of(changes[ocpi_id].outcome)
            for result, ocpi_id in zip(results, positions)]


# Cleaned field -> the input keys it can come from, where the names differ.
LOCATION_SOURCES = {"ocpi_id": ("id",), "address_lat": ("coordinates",), "address_lng": ("coordinates",),
                    "province": ("state", "province"), "parking_types": ("parking_type", "type", "parking_types")}
EVSE_SOURCES = {"evse_lat": ("coordinates",), "evse_lng": ("coordinates",)}
CONNECTOR_SOURCES = {"connector_id": ("id",), "max_voltage": ("max_voltage", "voltage"),
                     "max_amperage": ("max_amperage", "amperage"), "tariff_ids": ("tariff_ids", "tariff_id"),
                     "connector_type_code": ("standard",)}
ALWAYS_KEPT = frozenset({"last_updated", "country_code", "party_id"})


def _given_only(clean: dict, data: dict, sources: dict[str, tuple[str, ...]]) -> dict:
    keep = _kept_keys(tuple(data), id(sources), sources)  # sources: one of the module's constants
    kept = {key: value for key, value in clean.items() if key in keep}
    if "evses" in kept:
        kept["evses"] = [_given_only(evse, raw, EVSE_SOURCES) for evse, raw in zip(kept["evses"], data["evses"])]
    if "connectors" in kept:
        kept["connectors"] = [_given_only(connector, raw, CONNECTOR_SOURCES)
                              for connector, raw in zip(kept["connectors"], data["connectors"])]
    return kept


_KEPT_KEYS: dict[tuple, frozenset[str]] = {}


def _kept_keys(given: tuple[str, ...], sources_id: int, sources: dict[str, tuple[str, ...]]) -> frozenset[str]:
    """The cleaned keys an item with these input keys keeps: computed once per key layout (a CSV
    file has a handful: one per set of non-empty cells), not once per object."""
    cache_key = (sources_id, given)
    keep = _KEPT_KEYS.get(cache_key)
    if keep is None:
        present = set(given)
        # A cleaned key named in `sources` is kept when one of its input keys is given; any other
        # cleaned key when it is given under its own name.
        keep = frozenset(ALWAYS_KEPT | {key for key, names in sources.items() if not present.isdisjoint(names)}
                         | (present - sources.keys()))
        if len(_KEPT_KEYS) > 4096:  # arbitrary JSON sources could vary without bound
            _KEPT_KEYS.clear()
        _KEPT_KEYS[cache_key] = keep
    return keep


def _merge(first: writer.LocationChange, later: writer.LocationChange) -> None:
    first.values.update(later.values)
    first.m2m.update(later.m2m)
    by_uid = {evse.uid: evse for evse in first.evses or []}
    for evse in later.evses or []:
        by_uid[evse.uid] = evse
    first.evses = list(by_uid.values())


def _apply_with_retry(cpo: Cpo, changes: list[writer.LocationChange]) -> None:
    try:
        with transaction.atomic():
            writer.changes_apply(cpo=cpo, changes=changes)
    except IntegrityError:
        # A concurrent writer created one of these locations first: replay as updates of its rows. Or a
        # lookup code was deleted elsewhere while this process had its id cached: replay with the tables
        # read again.
        writer.lookups_forget()
        for change in changes:
            change.outcome = writer.Outcome()
        with transaction.atomic():
            writer.changes_apply(cpo=cpo, changes=changes)


def location_patch(*, location: Location, data: dict, version: str = V221) -> UpsertResult:
    """OCPI PATCH of a Location: only the fields given change; `last_updated` is required."""
    clean = clean_location(data, version=version, partial=True)
    _require_last_updated(clean)
    _check_party(location.cpo, clean)
    if "ocpi_id" in clean and clean["ocpi_id"] != location.ocpi_id:
        raise InvalidPayload({"id": "the id of a location can never be changed"})
    change = writer.location_change(clean, partial=True, ocpi_id=location.ocpi_id)
    return _apply_one(location.cpo, change, change)


# --- EVSEs -----------------------------------------------------------------------------------------

def evse_upsert(*, location: Location, data: dict, version: str = V221, stamped: bool = True) -> UpsertResult:
    """Create or replace one EVSE (with its connectors) of `location`."""
    change = writer.evse_change(clean_evse(data, version=version, stamped=stamped))
    return _apply_one(location.cpo, _into_location(location, change), change)


def evse_patch(*, evse: Evse, data: dict, version: str = V221) -> UpsertResult:
    """OCPI PATCH of an EVSE: only the fields given change; `last_updated` is required."""
    clean = clean_evse(data, version=version, partial=True)
    _require_last_updated(clean)
    if "uid" in clean and clean["uid"] != evse.uid:
        raise InvalidPayload({"uid": "the uid of an EVSE can never be changed"})
    change = writer.evse_change(clean, partial=True, uid=evse.uid)
    return _apply_one(evse.location.cpo, _into_location(evse.location, change), change)


def evse_status_patch(*, evse: Evse, status: str, last_updated: datetime | str | None = None) -> UpsertResult:
    """The most frequent write of all: an EVSE's status changed."""
    stamp = last_updated or timezone.now()
    return evse_patch(evse=evse, data={
        "status": status, "last_updated": stamp.isoformat() if isinstance(stamp, datetime) else stamp,
    })


def _into_location(location: Location, evse: writer.EvseChange) -> writer.LocationChange:
    return writer.LocationChange(location.ocpi_id, {}, evses=[evse], replace_evses=False, partial=True)


# --- Connectors ------------------------------------------------------------------------------------

def connector_upsert(*, evse: Evse, data: dict, version: str = V221) -> UpsertResult:
    change = writer.connector_change(clean_connector(data, version=version))
    return _apply_one(evse.location.cpo, _into_evse(evse, change), change)


def connector_patch(*, connector: Connector, data: dict, version: str = V221) -> UpsertResult:
    clean = clean_connector(data, version=version, partial=True)
    _require_last_updated(clean)
    if "connector_id" in clean and clean["connector_id"] != connector.connector_id:
        raise InvalidPayload({"id": "the id of a connector can never be changed"})
    change = writer.connector_change(clean, partial=True, connector_id=connector.connector_id)
    return _apply_one(connector.evse.location.cpo, _into_evse(connector.evse, change), change)


def _into_evse(evse: Evse, connector: writer.ConnectorChange) -> writer.LocationChange:
    evse_change = writer.EvseChange(evse.uid, {}, connectors=[connector], replace_connectors=False, partial=True)
    return _into_location(evse.location, evse_change)


def _apply_one(cpo: Cpo, change: writer.LocationChange, target) -> UpsertResult:
    with transaction.atomic():
        writer.changes_apply(cpo=cpo, changes=[change])
    return UpsertResult.of(target.outcome)


# --- Moderation (the hub's review before drivers and eMSPs see an object) ---------------------------

def location_moderate(*, location: Location, moderation: str, with_evses: bool = True) -> Location:
    """Publish or unpublish a location (and by default its EVSEs) for drivers' apps and eMSPs.

    A published location taken out is announced as withdrawn (`locations_withdrawn`) rather than
    changed. `last_updated` stays the CPO's: it is what later updates of the CPO are compared with."""
    moderation = Moderation(moderation)
    now = timezone.now()
    with transaction.atomic():
        was = Location.objects.select_for_update().values_list("moderation", flat=True).get(pk=location.pk)
        unpublished = was == Moderation.PUBLISHED and moderation != Moderation.PUBLISHED
        Location.objects.filter(pk=location.pk).update(moderation=moderation, date_modified=now)
        if with_evses:
            location.evses.exclude(moderation=moderation).update(moderation=moderation, date_modified=now)
        location.moderation = moderation
        if unpublished:
            signals.send_locations_withdrawn([location.pk])
        else:
            signals.send_locations_changed([location.pk])
    return location


def evse_moderate(*, evse: Evse, moderation: str) -> Evse:
    moderation = Moderation(moderation)
    with transaction.atomic():
        Evse.objects.filter(pk=evse.pk).update(moderation=moderation, date_modified=timezone.now())
        evse.moderation = moderation
        signals.send_locations_changed([evse.location_id])
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

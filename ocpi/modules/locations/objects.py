"""A catalogue Location, EVSE or Connector as the OCPI JSON of version 2.2.1 or 2.1.1.

What the catalogue stores is wider than OCPI in places, so what goes out is made to fit the version:
- strings are cut to OCPI's maximum lengths (real feeds' full street addresses are stored whole, OCPI's
  `address` is 45 characters; `physical_reference` 16);
- the portal's extra codes (facilities such as RESTROOM, capabilities such as QR_READER, parking types
  INDOOR/OUTDOOR, payment types) are not OCPI values and are left out;
- coordinates are strings matching the version's regex (2.2.1: 5 to 7 decimals; 2.1.1: exactly 6);
- timestamps are UTC with a `Z` (fractional seconds kept when stored, so that a peer's date_from
  built from them misses nothing);
- optional fields appear only when they have a value; required ones always.

2.1.1 differs: Location `type` (LocationType) instead of `parking_type`, no country_code/party_id/
publish/state; Connector `voltage`/`amperage`/`tariff_id`; smaller enums (a connector whose standard
2.1.1 does not know is left out, and so is an EVSE left without connectors); Hours is a choice of
`twentyfourseven` or `regular_hours`; EnvironmentalImpact names its category `source`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from locations import enums
from locations.enums import Moderation
from locations.models import Connector, Evse, Location
from locations.timezones import country_time_zone

V221, V211 = "2.2.1", "2.1.1"

FACILITIES_221 = frozenset(code for code, _ in enums.OCPI_FACILITIES)
FACILITIES_211 = frozenset({
    "HOTEL", "RESTAURANT", "CAFE", "MALL", "SUPERMARKET", "SPORT", "RECREATION_AREA", "NATURE", "MUSEUM",
    "BUS_STOP", "TAXI_STAND", "TRAIN_STATION", "AIRPORT", "CARPOOL_PARKING", "FUEL_STATION", "WIFI"})
CAPABILITIES_221 = frozenset(code for code, _ in enums.OCPI_CAPABILITIES)
CAPABILITIES_211 = frozenset({"CHARGING_PROFILE_CAPABLE", "CREDIT_CARD_PAYABLE", "REMOTE_START_STOP_CAPABLE",
                              "RESERVABLE", "RFID_READER", "UNLOCK_CAPABLE"})
PARKING_TYPES = frozenset(enums.ParkingType.values)
PARKING_RESTRICTIONS = frozenset(code for code, _ in enums.OCPI_PARKING_RESTRICTIONS)
STANDARDS_211 = frozenset({
    "CHADEMO", *(f"DOMESTIC_{letter}" for letter in "ABCDEFGHIJKL"), "IEC_60309_2_single_16",
    "IEC_60309_2_three_16", "IEC_60309_2_three_32", "IEC_60309_2_three_64", "IEC_62196_T1", "IEC_62196_T1_COMBO",
    "IEC_62196_T2", "IEC_62196_T2_COMBO", "IEC_62196_T3A", "IEC_62196_T3C", "TESLA_R", "TESLA_S"})
# 2.1.1 knows one- and three-phase AC only; two phases (or split phase) of a single-phase supply are AC_1_PHASE.
POWER_TYPES_211 = {"AC_2_PHASE": "AC_1_PHASE", "AC_2_PHASE_SPLIT": "AC_1_PHASE"}
# 2.1.1 LocationType from the stored (2.2.1) parking types; UNKNOWN when none is stored.
LOCATION_TYPES_211 = {"ON_STREET": "ON_STREET", "PARKING_GARAGE": "PARKING_GARAGE",
                      "UNDERGROUND_GARAGE": "UNDERGROUND_GARAGE", "PARKING_LOT": "PARKING_LOT",
                      "ALONG_MOTORWAY": "OTHER", "ON_DRIVEWAY": "OTHER"}


def location_ocpi(location: Location, *, version: str = V221, published_only: bool = True) -> dict:
    """The OCPI Location. With `published_only` (what eMSPs see) EVSEs the hub has not published are
    left out; REMOVED EVSEs stay, with that status. Reads `location.evses` and the lookups through
    `.all()`, so a location from `locations.selectors.locations_ocpi` costs no query."""
    row = location_row(location)
    if published_only:
        row["evses"] = [evse for evse in row["evses"] if evse["moderation"] == Moderation.PUBLISHED]
    return location_json(row, version=version)


def location_withdrawn_ocpi(location: Location, *, version: str = V221) -> dict:
    """The Location as eMSPs must see it once the hub no longer publishes it: every EVSE REMOVED
    (unpublished ones too: an eMSP may have had them), since OCPI has no DELETE of a location.

    The timestamps stay the CPO's: a newer one here would make the copy sent when the location is
    published again look older than this one, and receivers that keep the newest would keep this."""
    data = location_json(location_row(location), version=version)
    for evse in data.get("evses") or ():
        evse["status"] = "REMOVED"
        evse.pop("status_schedule", None)
    return data


def evse_ocpi(evse: Evse, *, version: str = V221) -> dict | None:
    """The OCPI EVSE; None in 2.1.1 when none of its connectors has a standard 2.1.1 knows."""
    return evse_json(evse_row(evse), version=version)


def connector_ocpi(connector: Connector, *, version: str = V221) -> dict | None:
    """The OCPI Connector; None in 2.1.1 when its standard is one 2.1.1 does not know (GB/T, NEMA, ...)."""
    return connector_json(connector_row(connector), version=version)


# --- Instances as rows: the shape of locations.selectors.location_rows_ocpi ---------------------------------
# (`last_updated` already as OCPI text: the list reads it so from the database)

def location_row(location: Location) -> dict:
    row = {name: getattr(location, name) for name in LOCATION_FIELDS}
    row.update(country_code=location.cpo.country_code, party_id=location.cpo.party_id,
               facilities=[item.code for item in location.facilities.all()],
               parking_types=[item.code for item in location.parking_types.all()],
               evses=[evse_row(evse) for evse in location.evses.all()],
               last_updated=timestamp_ocpi(location.last_updated))
    return row


def evse_row(evse: Evse) -> dict:
    row = {name: getattr(evse, name) for name in EVSE_FIELDS}
    row.update(capabilities=[item.code for item in evse.capabilities.all()],
               parking_restrictions=[item.code for item in evse.parking_restrictions.all()],
               connectors=[connector_row(connector) for connector in evse.connectors.all()],
               last_updated=timestamp_ocpi(evse.last_updated))
    return row


def connector_row(connector: Connector) -> dict:
    row = {name: getattr(connector, name) for name in CONNECTOR_FIELDS}
    row["last_updated"] = timestamp_ocpi(connector.last_updated)
    return row


LOCATION_FIELDS = ("ocpi_id", "publish", "publish_allowed_to", "name", "address", "city", "postal_code", "province",
                   "country", "address_lat", "address_lng", "related_locations", "directions", "operator",
                   "suboperator", "owner", "time_zone", "opening_times", "charging_when_closed", "images",
                   "energy_mix")
EVSE_FIELDS = ("uid", "evse_id", "status", "status_schedule", "moderation", "floor_level", "evse_lat", "evse_lng",
               "physical_reference", "directions", "images")
CONNECTOR_FIELDS = ("connector_id", "standard", "format", "power_type", "max_voltage", "max_amperage",
                    "max_electric_power", "tariff_ids", "terms_and_conditions")


# --- Rows as OCPI JSON ----------------------------------------------------------------------------------------
# A page of the list is up to a thousand of these, so optional fields are tested inline: an optional field
# is left out when it has no value, which for a JSON column (it may hold anything) means one of
# `_NOTHING` (0 and false are values), for a string column the empty string, for others None.

_NOTHING = (None, "", [], {})


def location_json(row: dict, *, version: str = V221) -> dict:
    """A location row (its `evses` already the ones to send) as OCPI JSON."""
    v211 = version == V211
    parking_types = row["parking_types"]
    if v211:
        data: dict = {"id": row["ocpi_id"], "type": next(
            (LOCATION_TYPES_211[code] for code in parking_types if code in LOCATION_TYPES_211), "UNKNOWN")}
    else:
        data = {"country_code": row["country_code"], "party_id": row["party_id"], "id": row["ocpi_id"],
                "publish": row["publish"]}
        if not row["publish"] and row["publish_allowed_to"]:
            data["publish_allowed_to"] = row["publish_allowed_to"]
    value = _cut(row["name"], 255)
    if value:
        data["name"] = value
    data["address"] = _cut(row["address"], 45)
    data["city"] = _cut(row["city"], 45)
    if v211:
        data["postal_code"] = _cut(row["postal_code"], 10)  # required in 2.1.1, even when unknown
    else:
        value = _cut(row["postal_code"], 10)
        if value:
            data["postal_code"] = value
        value = _cut(row["province"], 20)
        if value:
            data["state"] = value
    data["country"] = row["country"]
    data["coordinates"] = coordinates_ocpi(row["address_lat"], row["address_lng"], version=version)
    if row["related_locations"]:
        data["related_locations"] = [_related(item, version) for item in row["related_locations"]]
    if not v211:
        for code in parking_types:
            if code in PARKING_TYPES:
                data["parking_type"] = code
                break
    evses = [evse_json(evse, version=version) for evse in row["evses"]]
    data["evses"] = [evse for evse in evses if evse is not None] if v211 else evses
    for name in ("directions", "operator", "suboperator", "owner"):
        value = row[name]
        if value not in _NOTHING:
            data[name] = value
    allowed = FACILITIES_211 if v211 else FACILITIES_221
    value = [code for code in row["facilities"] if code in allowed]
    if value:
        data["facilities"] = value
    value = row["time_zone"] or (None if v211 else country_time_zone(row["country"]))
    if value:
        data["time_zone"] = value
    if row["opening_times"]:
        data["opening_times"] = _hours_211(row["opening_times"]) if v211 else row["opening_times"]
    if row["charging_when_closed"] is not None:
        data["charging_when_closed"] = row["charging_when_closed"]
    value = row["images"]
    if value not in _NOTHING:
        data["images"] = value
    if row["energy_mix"]:
        data["energy_mix"] = _energy_mix_211(row["energy_mix"]) if v211 else row["energy_mix"]
    data["last_updated"] = row["last_updated"]
    return data


def evse_json(row: dict, *, version: str = V221) -> dict | None:
    v211 = version == V211
    if v211:
        connectors = [connector_json(connector, version=V211) for connector in row["connectors"]]
        connectors = [connector for connector in connectors if connector is not None]
        if not connectors:
            return None
    else:
        connectors = [connector_json(connector) for connector in row["connectors"]]
    data: dict = {"uid": row["uid"]}
    if row["evse_id"]:
        data["evse_id"] = row["evse_id"]
    data["status"] = row["status"]
    value = row["status_schedule"]
    if value not in _NOTHING:
        data["status_schedule"] = value
    allowed = CAPABILITIES_211 if v211 else CAPABILITIES_221
    value = [code for code in row["capabilities"] if code in allowed]
    if value:
        data["capabilities"] = value
    data["connectors"] = connectors
    value = _cut(row["floor_level"], 4)
    if value:
        data["floor_level"] = value
    if row["evse_lat"] is not None and row["evse_lng"] is not None:
        data["coordinates"] = coordinates_ocpi(row["evse_lat"], row["evse_lng"], version=version)
    value = _cut(row["physical_reference"], 16)
    if value:
        data["physical_reference"] = value
    value = row["directions"]
    if value not in _NOTHING:
        data["directions"] = value
    value = [code for code in row["parking_restrictions"] if code in PARKING_RESTRICTIONS]
    if value:
        data["parking_restrictions"] = value
    value = row["images"]
    if value not in _NOTHING:
        data["images"] = value
    data["last_updated"] = row["last_updated"]
    return data


def connector_json(row: dict, *, version: str = V221) -> dict | None:
    if version == V211:
        if row["standard"] not in STANDARDS_211:
            return None
        data = {"id": row["connector_id"], "standard": row["standard"], "format": row["format"],
                "power_type": POWER_TYPES_211.get(row["power_type"], row["power_type"]),
                "voltage": row["max_voltage"], "amperage": row["max_amperage"]}
        if row["tariff_ids"]:
            data["tariff_id"] = row["tariff_ids"][0]
    else:
        data = {"id": row["connector_id"], "standard": row["standard"], "format": row["format"],
                "power_type": row["power_type"], "max_voltage": row["max_voltage"],
                "max_amperage": row["max_amperage"]}
        if row["max_electric_power"] is not None:
            data["max_electric_power"] = row["max_electric_power"]
        value = row["tariff_ids"]
        if value not in _NOTHING:
            data["tariff_ids"] = value
    if row["terms_and_conditions"]:
        data["terms_and_conditions"] = row["terms_and_conditions"]
    data["last_updated"] = row["last_updated"]
    return data


# --- Values -------------------------------------------------------------------------------------------

def coordinates_ocpi(lat: float, lng: float, *, version: str = V221) -> dict:
    return {"latitude": coordinate_ocpi(lat, version), "longitude": coordinate_ocpi(lng, version)}


def coordinate_ocpi(value: float | str, version: str = V221) -> str:
    """2.2.1: `-?[0-9]{1,3}\\.[0-9]{5,7}` (7 decimals, trailing zeros dropped down to 5); 2.1.1: exactly 6."""
    value = float(value)
    if version == V211:
        return f"{value:.6f}"
    text = f"{value:.7f}"
    if text[-8:-7] == ".":  # a number: at most two zeros to drop
        return text[:-2] if text[-2:] == "00" else text[:-1] if text[-1] == "0" else text
    text = text.rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(5, '0')}"


def timestamp_ocpi(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _cut(value: str | None, length: int) -> str:
    if not value:
        return ""
    return value if len(value) <= length else value[:length].rstrip(" ,;-")


def _related(item: dict, version: str) -> dict:
    if version != V211:
        return item
    return {**item, **coordinates_ocpi(item["latitude"], item["longitude"], version=V211)}


def _hours_211(hours: dict) -> dict:
    result = {key: value for key, value in hours.items() if key not in ("twentyfourseven", "regular_hours")}
    if hours.get("twentyfourseven"):
        result["twentyfourseven"] = True
    else:
        result["regular_hours"] = hours.get("regular_hours") or []
    return result


def _energy_mix_211(mix: dict) -> dict:
    if not mix.get("environ_impact"):
        return mix
    impacts = [{"source": item["category"], "amount": item["amount"]} for item in mix["environ_impact"]]
    return {**mix, "environ_impact": impacts}

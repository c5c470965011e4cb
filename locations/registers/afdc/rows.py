"""One station of the AFDC list as an OCPI 2.2.1 Location."""

from __future__ import annotations

import re

from locations.registers.afdc.layout import Layout
from locations.registers.afdc.places import (
    FALLBACK_TIME_ZONE,
    SPLIT_STATE_ZONES,
    STATE_ZONES,
    US_BOXES,
    ZIP3_STATES,
)
from locations.registers.common import Issues, RegisterRow, shorten, six_decimals

ID_PREFIX = "US-AFDC-"
COUNTRY = "USA"

# The file says nothing of connectors: one Level 2 J1772 connector per station (see docstring).
ASSUMED_CONNECTOR = {
    "id": "1",
    "standard": "IEC_62196_T1",
    "format": "CABLE",
    "power_type": "AC_1_PHASE",
    "max_voltage": 208,
    "max_amperage": 32,
    "max_electric_power": 208 * 32,
}

_ZIP = re.compile(r"(\d{3,5})(?:-?\d{4})?")
_CANADIAN_POSTCODE = re.compile(r"[A-Z]\d[A-Z]\s*(?:\d(?:[A-Z]\d?)?)?", re.IGNORECASE)
_STATE_CODE = re.compile(r"[A-Z]{2}")


def parse_row(cells: list[str], layout: Layout, row: int) -> RegisterRow:
    """Turn the cells of one station into a `RegisterRow` (exposed for tests and reuse)."""
    issues = Issues()
    location = _build_location(cells, layout, issues)
    return issues.result(row, location)


def _build_location(cells: list[str], layout: Layout, issues: Issues) -> dict | None:
    station_id = layout.value(cells, "id")
    if not (station_id.isascii() and station_id.isdigit()):
        issues.error(layout.title("id"), station_id, "not a station id")
    name = layout.value(cells, "name")
    street = layout.value(cells, "street") or name
    if not street:
        issues.error(layout.title("name"), "", "station name missing")
    postal_code = _zip(cells, layout, issues)
    city = layout.value(cells, "city") or (f"ZIP {postal_code}" if postal_code else "")
    if not city and not issues.errors:
        issues.error(layout.title("zip"), layout.value(cells, "zip"), "no city, nor a ZIP to stand in for it")
    coordinates = _coordinates(cells, layout, issues)
    if issues.errors:
        return None
    location_id = ID_PREFIX + station_id
    state = _state(cells, layout, postal_code)
    return {
        "id": location_id,
        "name": shorten(name or street, 255),
        "address": shorten(street, 45),
        "city": shorten(city, 45),
        "postal_code": postal_code,
        "state": state,
        "country": COUNTRY,
        "coordinates": coordinates,
        "time_zone": _time_zone(state, cells, layout, issues),
        "publish": True,
        "parking_type": None,
        "evses": [{"uid": f"{location_id}-1", "status": "UNKNOWN", "connectors": [dict(ASSUMED_CONNECTOR)]}],
        "last_updated": None,
    }


def _zip(cells: list[str], layout: Layout, issues: Issues) -> str | None:
    value = layout.value(cells, "zip")  # clean drops the no-break space some rows carry
    column = layout.title("zip")
    if _CANADIAN_POSTCODE.fullmatch(value):
        issues.error(column, value, "a Canadian postcode: not a US station")
        return None
    match = _ZIP.fullmatch(value)
    if not match:
        if value:
            issues.warn(column, value, "not a ZIP code, dropped")
        return None
    digits = match[1]
    if len(digits) < 5:
        issues.warn(column, value, "leading zeros restored")
    return digits.zfill(5)


def _state(cells: list[str], layout: Layout, postal_code: str | None) -> str | None:
    stated = layout.value(cells, "state").upper()
    if _STATE_CODE.fullmatch(stated):
        return stated
    if stated:
        return shorten(layout.value(cells, "state"), 20)
    if postal_code is None:
        return None
    prefix = int(postal_code[:3])
    for low, high, state in ZIP3_STATES:
        if low <= prefix <= high:
            return state if state not in ("AA", "AE", "AP") else None
    return None


def _time_zone(state: str | None, cells: list[str], layout: Layout, issues: Issues) -> str:
    code = (state or "").upper()
    if code in STATE_ZONES:
        return STATE_ZONES[code]
    stated = layout.value(cells, "state")
    column, value = (layout.title("state"), stated) if stated else (layout.title("zip"), layout.value(cells, "zip"))
    if code in SPLIT_STATE_ZONES:
        zone = SPLIT_STATE_ZONES[code]
        issues.warn(column, value, f"{code} spans time zones, assumed {zone}")
        return zone
    issues.warn(column, value, f"no US state known, assumed {FALLBACK_TIME_ZONE}")
    return FALLBACK_TIME_ZONE


def _coordinates(cells: list[str], layout: Layout, issues: Issues) -> dict | None:
    lat_text, lng_text = layout.value(cells, "latitude"), layout.value(cells, "longitude")
    lat_column, lng_column = layout.title("latitude"), layout.title("longitude")
    pair = issues.decimal_pair(lat_text, lng_text, lat_column, lng_column)
    if pair is None:
        return None
    lat, lng = pair
    if lat == 0 or lng == 0:
        column, text = (lat_column, lat_text) if lat == 0 else (lng_column, lng_text)
        issues.error(column, text, "0: a missing value, not a position")
        return None
    if not any(b[0] <= lat <= b[1] and b[2] <= lng <= b[3] for b in US_BOXES):
        issues.error(f"{lat_column}/{lng_column}", f"{lat_text}/{lng_text}", "outside the US")
        return None
    if min(-lat.as_tuple().exponent, -lng.as_tuple().exponent) < 2:
        issues.warn(f"{lat_column}/{lng_column}", f"{lat_text}/{lng_text}", "imprecise: under 2 decimals")
    return {"latitude": six_decimals(lat), "longitude": six_decimals(lng)}

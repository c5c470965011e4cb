"""One data row of a BNetzA export as an OCPI 2.2.1 Location."""

from __future__ import annotations

import hashlib
import re
from datetime import date

from locations.registers.bnetza import address, details
from locations.registers.bnetza.evses import check_charge_point_count, evses
from locations.registers.bnetza.layout import Layout
from locations.registers.common import Issues, RegisterRow, clean, shorten

ID_PREFIX = "DE-BNA-"
COUNTRY = "DEU"
TIME_ZONE = "Europe/Berlin"
# Room left in OCPI's 36 characters for an EVSE's "-<n>" and the importer's "-<k>" for a repeated id.
MAX_FACILITY_ID = 20

# DD.MM.YYYY in the CSV; YYYY-MM-DD when a workbook's date cell was turned into text.
_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?: 00:00:00)?")
_FACILITY_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]*")


def parse_row(cells: list[str], layout: Layout, row: int) -> RegisterRow:
    """Turn the cells of one data row into a `RegisterRow` (exposed for tests and reuse)."""
    issues = Issues()
    location = _build_location(cells, layout, issues)
    return issues.result(row, location)


def _build_location(cells: list[str], layout: Layout, issues: Issues) -> dict | None:
    operator = clean(layout.cell(cells, "operator"))
    if not operator:
        issues.error(layout.title("operator"), "", "operator missing")
    street, postal_code, city = address.address(cells, layout, issues)
    coordinates = address.coordinates(cells, layout, issues)
    if issues.errors:
        return None
    location_id = _location_id(cells, layout, operator, coordinates)
    status, publish = details.status(cells, layout, issues)
    found = evses(cells, layout, location_id, issues, _evse_extras(cells, layout, issues, status))
    if issues.errors:
        return None
    check_charge_point_count(cells, layout, len(found), issues)
    location = {
        "id": location_id,
        "name": _name(cells, layout, operator, street),
        "address": shorten(street, 45),
        "city": shorten(city, 45),
        "postal_code": postal_code,
        "state": address.state(layout.cell(cells, "state")),
        "country": COUNTRY,
        "coordinates": coordinates,
        "time_zone": TIME_ZONE,
        "publish": publish,
        "parking_type": details.parking(cells, layout)[0] if layout.has("parking") else None,
        "operator": {"name": shorten(operator, 100)},
        "evses": found,
        "last_updated": _commissioned(cells, layout, issues),
    }
    # Keys only for columns the export has: an older layout's import must not clear what another
    # source said about opening hours or directions.
    if layout.has("opening"):
        location["opening_times"] = details.opening_times(cells, layout, issues)
    if layout.has("address_extra"):
        extra = clean(layout.cell(cells, "address_extra"))
        location["directions"] = [{"language": "de", "text": shorten(extra, 512)}] if extra else []
    return location


def _evse_extras(cells: list[str], layout: Layout, issues: Issues, status: str) -> dict:
    extras: dict = {"status": status}
    if layout.has("payment"):
        extras["capabilities"] = details.capabilities(cells, layout, issues)
    if layout.has("parking"):
        extras["parking_restrictions"] = details.parking(cells, layout)[1]
    return extras


def _location_id(cells: list[str], layout: Layout, operator: str, coordinates: dict) -> str:
    # The register's own id where it has one ("Ladeeinrichtungs-ID", since 2023): stable between
    # exports whatever else of the row changes.
    facility = clean(layout.cell(cells, "facility_id"))
    if _FACILITY_ID.fullmatch(facility) and len(facility) <= MAX_FACILITY_ID:
        return ID_PREFIX + facility
    # Hash the untruncated source values so the id survives changes to how fields are shortened.
    key = "|".join((operator, address.raw_address(cells, layout), coordinates["latitude"], coordinates["longitude"]))
    return ID_PREFIX + hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


def _name(cells: list[str], layout: Layout, operator: str, street: str) -> str:
    site = clean(layout.cell(cells, "site_name"))
    if site:
        return shorten(site, 255)
    brand = clean(layout.cell(cells, "display_name")) or operator
    return shorten(f"{brand}, {street}", 255)


def _commissioned(cells: list[str], layout: Layout, issues: Issues) -> str | None:
    if not layout.has("commissioned"):
        return None
    value = clean(layout.cell(cells, "commissioned"))
    day = _date(value)
    if day is None:
        if value:
            issues.warn(layout.title("commissioned"), value, "not a date DD.MM.YYYY")
        return None
    return f"{day.isoformat()}T00:00:00Z"


def _date(value: str) -> date | None:
    if match := _DATE.fullmatch(value):
        day, month, year = match.groups()
    elif match := _ISO_DATE.fullmatch(value):
        year, month, day = match.groups()
    else:
        return None
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None

"""Streaming parser for the US DOE/NREL Alternative Fuels Data Center (AFDC) electric station list.

The file at hand is a five-column extract of the AFDC station export: `Station Name, ZIP, Latitude,
Longitude, ID`, comma-separated, one station per line. Columns are found by their header name, so
the full AFDC export (which also has Street Address, City and State) is read too: those three are
used when present. Every data row yields exactly one `RegisterRow` (see
`locations.registers.bnetza`): an OCPI 2.2.1 Location dict or the reasons it could not be built.

What the extract lacks, and what stands in for it:

* address (OCPI: required): Street Address when the file has it; otherwise the station name,
  shortened to OCPI's 45 characters at a word boundary. It is a name, not a street: the best the
  file offers and what a driver will find on the spot.
* city (OCPI: required): City when present; otherwise the placeholder "ZIP <zip>", which says
  plainly that no city is known while still placing the station. A ZIP-to-city table would give
  the real town; none is bundled, to keep this module pure stdlib. A row with neither a city nor a
  usable ZIP is an error.
* postal_code: the ZIP with the leading zeros the export lost restored (it stored ZIPs as numbers:
  "5403" is 05403 in Vermont, "987" 00987 in Puerto Rico), with a warning; a no-break space before
  some ZIPs is dropped. A Canadian postcode ("L2G3X") marks a station outside the US: an error.
* state: State when present; otherwise the USPS state of the ZIP's first three digits
  (`_ZIP3_STATES`, the fixed USPS prefix allocation), as its two-letter code.
* time_zone: from the state, never from the longitude. States inside one zone map to it. For the
  sixteen states and territories split between zones the zone of most of their people is taken
  (Texas America/Chicago, Florida America/New_York, ...) with a warning naming it, so an importer
  can count or refine them; a ZIP that names no state (military APO/FPO, unallocated) falls back
  to America/New_York, also with a warning.
* EVSEs: the extract has no connector data. Each station gets one EVSE with one connector, the
  typical US public Level 2 charger: IEC_62196_T1 (SAE J1772), CABLE, AC_1_PHASE, 208 V, 32 A,
  6,656 W. That is an assumption, not data (DC fast chargers and Tesla sites are among them).
* last_updated: the file has no dates; left None for the importer to fill.
* id: "US-AFDC-<ID>", the AFDC's own station id, stable between exports. Rows repeating the
  coordinates of another (~1,500, e.g. several stations in one garage) are distinct stations with
  distinct ids, and stay so.

Coordinates must lie in the US or its territories (coarse boxes, `US_BOXES`); a 0.0 latitude or
longitude is a missing value and an error (the export has one: "Rosegate Apartments").

Pure stdlib, like the BNetzA parser.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import BinaryIO, Iterable, Iterator

from locations.registers.common import (
    Issues,
    Record,
    RegisterRow,
    clean,
    csv_records,
    data_records,
    decoded_lines,
    shorten,
    six_decimals,
)
from locations.registers.workbook import sheet_records

__all__ = [
    "ASSUMED_CONNECTOR",
    "DELIMITER",
    "FORMAT",
    "detect_afdc",
    "is_header",
    "iter_afdc_locations",
    "iter_afdc_records",
    "iter_afdc_workbook",
]

FORMAT = "us-afdc"
DELIMITER = ","
ID_PREFIX = "US-AFDC-"
COUNTRY = "USA"
FALLBACK_TIME_ZONE = "America/New_York"

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

# (lat min, lat max, lng min, lng max): the 48 states, Alaska (both sides of 180°), Hawaii,
# Puerto Rico with the Virgin Islands, Guam with the Northern Marianas, American Samoa.
US_BOXES = (
    (Decimal("24.3"), Decimal("49.5"), Decimal("-125.0"), Decimal("-66.8")),
    (Decimal("51.0"), Decimal("71.6"), Decimal("-180"), Decimal("-129.9")),
    (Decimal("51.0"), Decimal("53.1"), Decimal("172.4"), Decimal("180")),
    (Decimal("18.8"), Decimal("22.4"), Decimal("-160.3"), Decimal("-154.7")),
    (Decimal("17.6"), Decimal("18.6"), Decimal("-68.0"), Decimal("-64.5")),
    (Decimal("13.2"), Decimal("20.6"), Decimal("144.6"), Decimal("146.1")),
    (Decimal("-14.6"), Decimal("-14.1"), Decimal("-171.1"), Decimal("-168.1")),
)

# USPS three-digit ZIP prefixes (inclusive ranges) -> state or territory. AA/AE/AP: military mail.
_ZIP3_STATES = (
    (5, 5, "NY"), (6, 7, "PR"), (8, 8, "VI"), (9, 9, "PR"), (10, 27, "MA"), (28, 29, "RI"),
    (30, 38, "NH"), (39, 49, "ME"), (50, 54, "VT"), (55, 55, "MA"), (56, 59, "VT"), (60, 69, "CT"),
    (70, 89, "NJ"), (90, 99, "AE"), (100, 149, "NY"), (150, 196, "PA"), (197, 199, "DE"),
    (200, 200, "DC"), (201, 201, "VA"), (202, 205, "DC"), (206, 219, "MD"), (220, 246, "VA"),
    (247, 268, "WV"), (270, 289, "NC"), (290, 299, "SC"), (300, 319, "GA"), (320, 339, "FL"),
    (340, 340, "AA"), (341, 349, "FL"), (350, 369, "AL"), (370, 385, "TN"), (386, 397, "MS"),
    (398, 399, "GA"), (400, 427, "KY"), (430, 459, "OH"), (460, 479, "IN"), (480, 499, "MI"),
    (500, 528, "IA"), (530, 549, "WI"), (550, 567, "MN"), (569, 569, "DC"), (570, 577, "SD"),
    (580, 588, "ND"), (590, 599, "MT"), (600, 629, "IL"), (630, 658, "MO"), (660, 679, "KS"),
    (680, 693, "NE"), (700, 714, "LA"), (716, 729, "AR"), (730, 732, "OK"), (733, 733, "TX"),
    (734, 749, "OK"), (750, 799, "TX"), (800, 816, "CO"), (820, 831, "WY"), (832, 838, "ID"),
    (840, 847, "UT"), (850, 865, "AZ"), (870, 884, "NM"), (885, 885, "TX"), (889, 898, "NV"),
    (900, 961, "CA"), (962, 966, "AP"), (967, 968, "HI"), (969, 969, "GU"), (970, 979, "OR"),
    (980, 994, "WA"), (995, 999, "AK"),
)

_EASTERN, _CENTRAL, _MOUNTAIN, _PACIFIC = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"
)
# States and territories that keep one time zone throughout.
_STATE_ZONES = {
    **dict.fromkeys(("CT", "DE", "DC", "GA", "ME", "MD", "MA", "NH", "NJ", "NY", "NC", "OH", "PA",
                     "RI", "SC", "VT", "VA", "WV"), _EASTERN),
    **dict.fromkeys(("AL", "AR", "IL", "IA", "LA", "MN", "MS", "MO", "OK", "WI"), _CENTRAL),
    **dict.fromkeys(("CO", "MT", "NM", "UT", "WY"), _MOUNTAIN),
    **dict.fromkeys(("CA", "WA"), _PACIFIC),
    "HI": "Pacific/Honolulu",
    "PR": "America/Puerto_Rico",
    "VI": "America/St_Thomas",
    "AS": "Pacific/Pago_Pago",
}
# Split between zones: the zone of most of the people, with a warning on every row.
_SPLIT_STATE_ZONES = {
    "AK": "America/Anchorage",  # the Aleutians west of 169.5° W: America/Adak
    "AZ": "America/Phoenix",  # the Navajo Nation keeps daylight saving time
    "FL": _EASTERN,  # the panhandle west of the Apalachicola: Central
    "ID": "America/Boise",  # the north: Pacific
    "IN": "America/Indiana/Indianapolis",  # the north-west and south-west corners: Central
    "KS": _CENTRAL,  # four western counties: Mountain
    "KY": _EASTERN,  # the west: Central
    "MI": "America/Detroit",  # four Upper Peninsula counties: Central
    "NE": _CENTRAL,  # the west: Mountain
    "NV": _PACIFIC,  # West Wendover: Mountain
    "ND": _CENTRAL,  # the south-west: Mountain
    "OR": _PACIFIC,  # most of Malheur County: Mountain
    "SD": _CENTRAL,  # the west: Mountain
    "TN": _CENTRAL,  # the east: Eastern
    "TX": _CENTRAL,  # El Paso and Hudspeth: Mountain
    "GU": "Pacific/Guam",  # prefix 969 also serves Palau, Micronesia and the Marshall Islands
}

_ZIP = re.compile(r"(\d{3,5})(?:-?\d{4})?")
_CANADIAN_POSTCODE = re.compile(r"[A-Z]\d[A-Z]\s*(?:\d(?:[A-Z]\d?)?)?", re.IGNORECASE)
_STATE_CODE = re.compile(r"[A-Z]{2}")


# --------------------------------------------------------------------------- layout


_ROLES = {  # role -> column name as the AFDC spells it (matched ignoring case and spacing)
    "name": "Station Name",
    "zip": "ZIP",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "id": "ID",
    "street": "Street Address",
    "city": "City",
    "state": "State",
}
_REQUIRED_ROLES = ("name", "zip", "latitude", "longitude", "id")


class Layout:
    def __init__(self, header_cells: list[str]):
        keys = [_header_key(cell) for cell in header_cells]
        self.header = tuple(clean(cell.replace("\ufeff", "")) for cell in header_cells)
        role_keys = {role: _header_key(name) for role, name in _ROLES.items()}
        self.columns = {role: keys.index(key) for role, key in role_keys.items() if key in keys}

    def value(self, cells: list[str], role: str) -> str:
        index = self.columns.get(role)
        return clean(cells[index]) if index is not None and index < len(cells) else ""

    def title(self, role: str) -> str:
        return self.header[self.columns[role]]


def _header_key(cell: str) -> str:
    return " ".join(cell.replace("\ufeff", "").split()).casefold()


def detect_afdc(header_cells: Iterable[str]) -> str:
    """Return FORMAT when the header row is an AFDC station export's; else raise ValueError."""
    keys = {_header_key(cell) for cell in header_cells}
    missing = [_ROLES[role] for role in _REQUIRED_ROLES if _header_key(_ROLES[role]) not in keys]
    if missing:
        raise ValueError(f"not an AFDC station export: no column(s) {missing}")
    return FORMAT


def is_header(cells: Iterable[str]) -> bool:
    try:
        detect_afdc(cells)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- reading


def iter_afdc_locations(lines: Iterable[str | bytes]) -> Iterator[RegisterRow]:
    """Yield one `RegisterRow` per station of an AFDC export, streaming.

    `lines` is an open file (text opened with newline="", or binary) or any iterable of lines.
    Raises ValueError when the first line is not an AFDC header.
    """
    return iter_afdc_records(csv_records(decoded_lines(lines), delimiter=DELIMITER))


def iter_afdc_workbook(file: BinaryIO, *, max_text_bytes: int | None = None) -> Iterator[RegisterRow]:
    """The same for the list saved as an Excel workbook (.xlsx): its first sheet, streamed."""
    return iter_afdc_records(sheet_records(file, max_text_bytes=max_text_bytes))


def iter_afdc_records(records: Iterable[Record]) -> Iterator[RegisterRow]:
    """Rows from (row number, cells) records, the first of them not blank being the header."""
    records = data_records(records)
    try:
        _, header = next(records)
    except StopIteration:
        raise ValueError("not an AFDC station export: the file is empty") from None
    except ValueError as exc:
        raise ValueError(f"not an AFDC station export: {exc}") from exc
    detect_afdc(header)
    layout = Layout(header)
    for start, cells in records:
        yield parse_row(cells, layout, start)


# --------------------------------------------------------------------------- rows


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
    for low, high, state in _ZIP3_STATES:
        if low <= prefix <= high:
            return state if state not in ("AA", "AE", "AP") else None
    return None


def _time_zone(state: str | None, cells: list[str], layout: Layout, issues: Issues) -> str:
    code = (state or "").upper()
    if code in _STATE_ZONES:
        return _STATE_ZONES[code]
    stated = layout.value(cells, "state")
    column, value = (layout.title("state"), stated) if stated else (layout.title("zip"), layout.value(cells, "zip"))
    if code in _SPLIT_STATE_ZONES:
        zone = _SPLIT_STATE_ZONES[code]
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

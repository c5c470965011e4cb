"""Streaming parser for the UK National Chargepoint Registry (NCR) export.

The NCR publishes one CSV row per charge device: `,` as delimiter, a one-line header of 158
camelCase column names (chargeDeviceID; reference; name; latitude; longitude; the address in
PAF-like parts; owner and controller; statuses and dates; opening hours; then eleven columns per
connector, connector1ID ... connector8Validated). Columns are found by their header name, never by
position. Every device yields exactly one `RegisterRow` (see `locations.registers.bnetza`), which
carries an OCPI 2.2.1 Location dict or the reasons it could not be built.

Quirks of the 2012-2017 export handled here:

* Quoted cells hold line breaks (CRLF); a quoted cell is read whole, and `RegisterRow.row` is the
  physical line, counted in LF line ends, on which the device starts.
* Twice a bare CR sits inside an *unquoted* cell ("... opening hours.<CR> ,,Public estate,..."). A
  CSV reader ends the record there, so the device falls into a 52-cell piece and a 107-cell piece
  that looks shifted by 51 columns (its "name" is "Public estate", its longitude "0"). A record
  shorter than the header is rejoined with the records after it when the pieces add up to exactly
  the header's width (52 + 107 - 1 = 158); the row gets a warning naming the broken cell. A record
  whose width still differs from the header's is an error row, never guessed at: a value that fits
  its neighbour's column cannot say where the shift starts. So the file's 3,968 CSV records are
  3,966 devices.
* `0000-00-00 00:00:00` is the export's null date. Dates are UK local time (Europe/London) and
  converted to UTC; `last_updated` is the latest real date of dateUpdated, lastUpdated and
  dateCreated, else None (the importer fills it in).
* The header names "connector3Validated" twice (the first should be connector2Validated). Only the
  columns read here must be unique; a duplicate among them is a ValueError.
* countryCode is lower-case "gb"; the country is GBR whatever its case.
* "NULL", "N/A" and "n/a" are placeholders for an empty cell.
* One device has its name and reference swapped (name "70621", reference "Toutley Depot"): a
  name of digits only next to a reference with letters is swapped back, with a warning.

Locations:

* id: "GB-NCR-" + chargeDeviceID. The NCR's ids are 32-hex digests, too long for OCPI's 36
  characters with the prefix, so a hex id is cut to its first 24 digits (96 bits; still greppable
  in the export); an id that is not hex and too long is replaced by 24 digits of its SHA-1.
* address (<= 45: trailing comma-separated parts dropped, then cut at a word boundary): house
  number + thoroughfare, then street when it differs; a buildingNumber that is not a house number
  ("Westgate Underground Carpark", "Level -2") leads as its own part. Without any of these:
  buildingName; then the long description when it reads "street, ..., town, POSTCODE" (187
  Source London devices have only that); then the device's name, with a warning.
* city: town, else dependantLocality, else the town of such a description; none is an error.
* postal_code: normalised to "AA9A 9AA"; a letter O as the first character of the inward code is
  read as zero ("ZE1 ONT"); an outward code alone ("TS24") is kept with a warning; anything else
  is dropped with a warning.
* state: county, " and " written "&" when over 20 characters, a few known long names abbreviated.
* operator: the device controller (the network that runs it), else the owner; owner: the owner.
* coordinates: must lie in the UK (lat 49.8-60.9, lng -8.7-1.8), else an error row (the export has
  one test device in Madrid and one at Uluru).

EVSEs: one per NCR connector, since each connector has its own id and status in the register
(the NCR does not say which connectors of a device exclude each other). The EVSE uid is "GB-NCR-"
+ the connector's NCR id, else the location id + "-" + the connector's number. Status: "In
service" is UNKNOWN (a static register knows nothing of the moment), "Out of service" OUTOFORDER,
"Planned" PLANNED; a device out of service or planned passes that on to its connectors, a device
with a dateDeleted makes them REMOVED.

Connectors: standard from the type (`CONNECTOR_TYPES`); format from connectorNTetheredCable
(1 CABLE, 0 SOCKET) except where the plug fixes it (DC plugs are cables, BS 1363 a socket);
power type from connectorNChargeMethod unless the plug contradicts it; max_electric_power from
connectorNRatedOutputKW, max_amperage from connectorNOutputCurrent, max_voltage from
connectorNRatedVoltage. OCPI 2.2.1 defines max_voltage line to neutral for AC_3_PHASE, so a
three-phase line-to-line rating (400 V) is divided by sqrt 3 and rounded to 10 V (230 V). Values
the row lacks are derived as in `bnetza._electrics`.

Pure stdlib, like the BNetzA parser.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, Iterator
from zoneinfo import ZoneInfo

from locations.registers.bnetza import (
    _HOUSE_NUMBER,
    ConnectorSpec,
    RegisterRow,
    _clean,
    _decimal,
    _decoded,
    _electrics,
    _is_blank,
    _Issues,
    _shorten,
    _six_decimals,
    _watts,
)

__all__ = ["CONNECTOR_TYPES", "FORMAT", "detect_uk_ncr", "iter_uk_ncr_locations"]

FORMAT = "uk-ncr"
ID_PREFIX = "GB-NCR-"
COUNTRY = "GBR"
TIME_ZONE = "Europe/London"
_LONDON = ZoneInfo(TIME_ZONE)

# Great Britain and Northern Ireland with the Isles of Scilly and Shetland; not the Channel Islands.
LAT_RANGE = (Decimal("49.8"), Decimal("60.9"))
LNG_RANGE = (Decimal("-8.7"), Decimal("1.8"))

OCPI_ID_LENGTH = 36
_HASHED_ID_DIGITS = 24  # leaves room for "-<n>" in an EVSE uid built on the location id

# Keys are normalised with `_type_key` (letters and digits only, case-folded), so spacing such as
# "(IEC 62196)" / "(IEC62196)" does not matter. Every value of the 2012-2017 export is here.
# max_kw only stands in for a missing power value.
CONNECTOR_TYPES: dict[str, ConnectorSpec] = {
    "type2mennekesiec62196": ConnectorSpec("IEC_62196_T2", "SOCKET", "AC", None, Decimal("43")),
    "3pintypegbs1363": ConnectorSpec("DOMESTIC_G", "SOCKET", "AC", 1, Decimal("3")),
    "jevsg105chademodc": ConnectorSpec("CHADEMO", "CABLE", "DC", None, Decimal("50")),
    "type2comboiec62196dc": ConnectorSpec("IEC_62196_T2_COMBO", "CABLE", "DC", None, Decimal("50")),
    # Tesla's European Supercharger: a Type 2 plug carrying DC that only Teslas could use, so
    # TESLA_S (as the BNetzA parser maps "Tesla") rather than a Type 2 an ordinary car would try.
    "type2teslaiec62196dc": ConnectorSpec("TESLA_S", "CABLE", "DC", None, Decimal("120")),
    "type1saej1772iec62196": ConnectorSpec("IEC_62196_T1", "CABLE", "AC", 1, Decimal("7.4")),
    "type3scameiec62196": ConnectorSpec("IEC_62196_T3C", "SOCKET", "AC", None, Decimal("22")),
}

# Plugs whose format the standard fixes, whatever connectorNTetheredCable says.
_FIXED_FORMAT = frozenset({"CHADEMO", "IEC_62196_T2_COMBO", "TESLA_S", "DOMESTIC_G"})

_CHARGE_METHODS = {"single phase ac": ("AC", 1), "three phase ac": ("AC", 3), "dc": ("DC", None)}

_EVSE_STATUSES = {"in service": "UNKNOWN", "out of service": "OUTOFORDER", "planned": "PLANNED"}

_PLACEHOLDERS = frozenset({"null", "n/a", "na", "none"})

# Counties and unitary authorities longer than OCPI's 20 characters after "and" -> "&".
_COUNTY_ABBREVIATIONS = {
    "bath & north east somerset": "Bath & NE Somerset",
    "east riding of yorkshire": "East Riding of Yorks",
    "north east lincolnshire": "NE Lincolnshire",
    "south gloucestershire": "South Glos",
    "blackburn with darwen": "Blackburn w Darwen",
    "cheshire west & chester": "Cheshire W & Chester",
}

_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})")
_OUTWARD_CODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?")
_NULL_DATE = "0000-00-00"
_HEX = re.compile(r"[0-9a-fA-F]+")
_URL = re.compile(r"https?://[^\s/@]+\.[^\s@]+", re.IGNORECASE)
_BARE_CR = re.compile(r"(?<=\r)(?!\n)")
_CONNECTOR_COLUMN = re.compile(
    r"connector(\d+)(id|type|ratedoutputkw|outputcurrent|ratedvoltage|chargemethod|tetheredcable|status)"
)


# --------------------------------------------------------------------------- layout


_ROLES = {  # role -> column name as the export spells it (matched ignoring case and spaces)
    "device_id": "chargeDeviceID",
    "reference": "reference",
    "name": "name",
    "latitude": "latitude",
    "longitude": "longitude",
    "building_name": "buildingName",
    "building_number": "buildingNumber",
    "thoroughfare": "thoroughfare",
    "street": "street",
    "locality": "dependantLocality",
    "town": "town",
    "county": "county",
    "postcode": "postcode",
    "country": "countryCode",
    "description": "locationLongDescription",
    "owner": "deviceOwnerName",
    "owner_website": "deviceOwnerWebsite",
    "controller": "deviceControllerName",
    "controller_website": "deviceControllerWebsite",
    "device_status": "chargeDeviceStatus",
    "publish_status": "publishStatus",
    "created": "dateCreated",
    "updated": "dateUpdated",
    "last_updated": "lastUpdated",
    "deleted": "dateDeleted",
}
_REQUIRED_ROLES = ("device_id", "name", "latitude", "longitude", "thoroughfare", "town", "postcode")


@dataclass(frozen=True)
class ConnectorColumns:
    number: int
    columns: dict[str, int]  # field ("type", "ratedoutputkw", ...) -> index


@dataclass(frozen=True)
class Layout:
    header: tuple[str, ...]
    columns: dict[str, int]
    connectors: tuple[ConnectorColumns, ...]

    @property
    def width(self) -> int:
        return len(self.header)

    def value(self, cells: list[str], role: str) -> str:
        index = self.columns.get(role)
        return _value(cells[index]) if index is not None and index < len(cells) else ""

    def title(self, role: str) -> str:
        return self.header[self.columns[role]]


def _header_key(cell: str) -> str:
    return "".join(cell.replace("\ufeff", "").split()).casefold()


def detect_uk_ncr(header_cells: Iterable[str]) -> str:
    """Return FORMAT when the header row is the NCR's; else raise ValueError naming what is missing."""
    keys = {_header_key(cell) for cell in header_cells}
    missing = [_ROLES[role] for role in _REQUIRED_ROLES if _header_key(_ROLES[role]) not in keys]
    if not any(_CONNECTOR_COLUMN.fullmatch(key) and key.endswith("type") for key in keys):
        missing.append("connector1Type")
    if missing:
        raise ValueError(f"not a UK National Chargepoint Registry export: no column(s) {missing}")
    return FORMAT


def _build_layout(header_cells: list[str]) -> Layout:
    detect_uk_ncr(header_cells)
    keys = [_header_key(cell) for cell in header_cells]
    role_keys = {role: _header_key(name) for role, name in _ROLES.items()}
    used = set(role_keys.values()) | {key for key in keys if _CONNECTOR_COLUMN.fullmatch(key)}
    duplicated = sorted({header_cells[keys.index(key)] for key in keys if key in used and keys.count(key) > 1})
    if duplicated:
        raise ValueError(f"UK NCR header names column(s) {duplicated} more than once")
    columns = {role: keys.index(key) for role, key in role_keys.items() if key in keys}
    groups: dict[int, dict[str, int]] = {}
    for index, key in enumerate(keys):
        if match := _CONNECTOR_COLUMN.fullmatch(key):
            groups.setdefault(int(match[1]), {})[match[2]] = index
    connectors = tuple(
        ConnectorColumns(number, fields) for number, fields in sorted(groups.items()) if "type" in fields
    )
    header = tuple(" ".join(cell.replace("\ufeff", "").split()) for cell in header_cells)
    return Layout(header, columns, connectors)


# --------------------------------------------------------------------------- reading


class _LineCounter:
    """Counts the LF line ends handed to the CSV reader: physical lines as an editor shows them."""

    def __init__(self) -> None:
        self.lines = 0

    def feed(self, lines: Iterable[str | bytes]) -> Iterator[str]:
        for line in _decoded(lines):
            # A binary file splits only at LF; split after a bare CR as newline="" text does, so
            # the CSV reader sees the same records either way.
            for piece in _BARE_CR.split(line):
                if not piece:
                    continue
                if piece.endswith("\n"):
                    self.lines += 1
                yield piece


def iter_uk_ncr_locations(lines: Iterable[str | bytes]) -> Iterator[RegisterRow]:
    """Yield one `RegisterRow` per charge device of an NCR export, streaming.

    `lines` is an open file (text opened with newline="", or binary) or any iterable of lines.
    Raises ValueError when the first line is not the NCR header.
    """
    counter = _LineCounter()
    reader = csv.reader(counter.feed(lines))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError("not a UK National Chargepoint Registry export: the file is empty") from None
    except csv.Error as exc:
        raise ValueError(f"not a UK National Chargepoint Registry export: unreadable CSV ({exc})") from exc
    layout = _build_layout(header)
    for start, cells, broken in _records(reader, counter, layout.width):
        yield parse_row(cells, layout, start, broken_column=broken)


def _records(reader, counter: _LineCounter, width: int) -> Iterator[tuple[int, list[str], int | None]]:
    """(first line, cells, index of a cell rejoined across a bare line break or None) per record."""
    pending: tuple[int, list[str], int] | None = None
    while True:
        start = counter.lines + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ValueError(f"line {start}: unreadable CSV ({exc})") from exc
        if pending is not None:
            first_line, head, broken = pending
            joined = head[:-1] + [head[-1] + "\n" + (cells[0] if cells else "")] + cells[1:]
            if len(joined) < width:
                pending = (first_line, joined, broken)
                continue
            pending = None
            if len(joined) == width:
                yield first_line, joined, broken
                continue
            yield first_line, head, None  # cannot be completed: reported by its width
        if _is_blank(cells):
            continue
        if len(cells) < width:
            pending = (start, cells, len(cells) - 1)
            continue
        yield start, cells, None
    if pending is not None:
        yield pending[0], pending[1], None


# --------------------------------------------------------------------------- rows


def _value(text: str) -> str:
    value = _clean(text)
    return "" if value.casefold() in _PLACEHOLDERS else value


def parse_row(cells: list[str], layout: Layout, row: int, *, broken_column: int | None = None) -> RegisterRow:
    """Turn the cells of one device into a `RegisterRow` (exposed for tests and reuse)."""
    issues = _Issues()
    if len(cells) != layout.width:
        issues.error("(record)", f"{len(cells)} cells", f"not the header's {layout.width}: a shifted or broken record")
        return RegisterRow(row, error=issues.errors)
    if broken_column is not None:
        issues.warn(layout.header[broken_column], _clean(cells[broken_column]),
                    "line break inside an unquoted cell, record rejoined")
    location = _build_location(cells, layout, issues)
    return issues.result(row, location)


def _build_location(cells: list[str], layout: Layout, issues: _Issues) -> dict | None:
    device_id = layout.value(cells, "device_id")
    if not device_id:
        issues.error(layout.title("device_id"), "", "device id missing")
    coordinates = _coordinates(cells, layout, issues)
    description = _described_address(layout.value(cells, "description"))
    city = _city(cells, layout, description, issues)
    if issues.errors:
        return None
    location_id = _location_id(device_id)
    evses = _evses(cells, layout, location_id, issues)
    if issues.errors:
        return None
    name = _name(cells, layout, issues)
    street = _street(cells, layout, description, name, issues)
    return {
        "id": location_id,
        "name": _shorten(name or street, 255),
        "address": _shorten_parts(street, 45),
        "city": _shorten(city, 45),
        "postal_code": _postcode(cells, layout, description, issues),
        "state": _county(layout.value(cells, "county")),
        "country": COUNTRY,
        "coordinates": coordinates,
        "time_zone": TIME_ZONE,
        "publish": layout.value(cells, "publish_status").casefold() in ("", "published"),
        "parking_type": None,
        "operator": _business(cells, layout, "controller") or _business(cells, layout, "owner"),
        "owner": _business(cells, layout, "owner"),
        "evses": evses,
        "last_updated": _last_updated(cells, layout, issues),
    }


def _location_id(device_id: str) -> str:
    if len(ID_PREFIX + device_id) <= OCPI_ID_LENGTH and device_id.isascii() and " " not in device_id:
        return ID_PREFIX + device_id
    if _HEX.fullmatch(device_id) and len(device_id) >= _HASHED_ID_DIGITS:
        return ID_PREFIX + device_id[:_HASHED_ID_DIGITS].lower()
    return ID_PREFIX + hashlib.sha1(device_id.encode("utf-8")).hexdigest()[:_HASHED_ID_DIGITS]


def _name(cells: list[str], layout: Layout, issues: _Issues) -> str:
    name, reference = layout.value(cells, "name"), layout.value(cells, "reference")
    if name.isdigit() and reference and not reference.isdigit() and any(c.isalpha() for c in reference):
        issues.warn(f"{layout.title('name')}/{layout.title('reference')}", f"{name}/{reference}",
                    "name and reference swapped")
        return reference
    return name or reference


# --------------------------------------------------------------------------- address


@dataclass(frozen=True)
class _Described:
    street: str
    town: str
    postcode: str


def _described_address(text: str) -> _Described | None:
    """Read "Leinster Gardens, Westminster, London, W2 3AN": street parts, town, postcode."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) < 3:
        return None
    compact = re.sub(r"[^A-Z0-9]", "", parts[-1].upper())
    if not (_POSTCODE.fullmatch(compact) or _OUTWARD_CODE.fullmatch(compact)):
        return None
    return _Described(", ".join(parts[:-2]), parts[-2], parts[-1])


def _city(cells: list[str], layout: Layout, described: _Described | None, issues: _Issues) -> str:
    town = layout.value(cells, "town")
    if town:
        return town
    locality = layout.value(cells, "locality")
    if locality:
        issues.warn(layout.title("town"), "", "no town, used dependantLocality")
        return locality
    if described:
        issues.warn(layout.title("town"), "", "no town, used the location description")
        return described.town
    issues.error(layout.title("town"), _clean(cells[layout.columns["town"]]), "town missing")
    return ""


def _shorten_parts(text: str, limit: int) -> str:
    """Drop trailing comma-separated parts before cutting inside one: "Cadogan Place, Knightsbridge"
    rather than "Cadogan Place, Knightsbridge, Kensington and"."""
    parts = [part for part in (_clean(p) for p in text.split(",")) if part]
    while len(parts) > 1 and len(", ".join(parts)) > limit:
        parts.pop()
    return _shorten(", ".join(parts), limit)


def _is_postcode(text: str) -> bool:
    return bool(_POSTCODE.fullmatch(re.sub(r"[^A-Z0-9]", "", text.upper())))


def _street(cells: list[str], layout: Layout, described: _Described | None, name: str,
            issues: _Issues) -> str:
    number = layout.value(cells, "building_number")
    roads: list[str] = []
    for role in ("thoroughfare", "street"):
        road = layout.value(cells, role).strip(" ,")
        if road and not _is_postcode(road) and road.casefold() not in (r.casefold() for r in roads):
            roads.append(road)
    parts = list(roads)
    if number and not _is_postcode(number):
        if roads and _HOUSE_NUMBER.fullmatch(number):
            parts[0] = f"{number} {roads[0]}"
        elif number.casefold() not in (r.casefold() for r in roads):
            parts.insert(0, number.strip(" ,"))
    if parts:
        return ", ".join(parts)
    building = layout.value(cells, "building_name")
    if building:
        return building
    if described and described.street:
        return described.street
    issues.warn(layout.title("thoroughfare"), "", "no address, the name stands in")
    return name


def _postcode(cells: list[str], layout: Layout, described: _Described | None, issues: _Issues) -> str | None:
    text = layout.value(cells, "postcode") or (described.postcode if described else "")
    compact = re.sub(r"[^A-Z0-9]", "", text.upper())
    if not compact:
        return None
    column = layout.title("postcode")
    match = _POSTCODE.fullmatch(compact)
    if not match and len(compact) >= 5 and compact[-3] == "O":
        match = _POSTCODE.fullmatch(compact[:-3] + "0" + compact[-2:])
        if match:
            issues.warn(column, text, "letter O read as a zero")
    if match:
        return f"{match[1]} {match[2]}"
    if _OUTWARD_CODE.fullmatch(compact):
        issues.warn(column, text, "outward code only")
        return compact
    issues.warn(column, text, "not a UK postcode, dropped")
    return None


def _county(text: str) -> str | None:
    if not text:
        return None
    if len(text) <= 20:
        return text
    text = re.sub(r"\s+and\s+", " & ", text)
    return _COUNTY_ABBREVIATIONS.get(text.casefold(), _shorten(text, 20))


def _business(cells: list[str], layout: Layout, role: str) -> dict | None:
    name = layout.value(cells, role)
    if not name:
        return None
    details = {"name": _shorten(name, 100)}
    website = layout.value(cells, f"{role}_website")
    if website.casefold().startswith("www."):
        website = "http://" + website
    if _URL.fullmatch(website) and len(website) <= 255:
        details["website"] = website
    return details


# --------------------------------------------------------------------------- coordinates and dates


def _coordinates(cells: list[str], layout: Layout, issues: _Issues) -> dict | None:
    lat_text, lng_text = layout.value(cells, "latitude"), layout.value(cells, "longitude")
    lat_column, lng_column = layout.title("latitude"), layout.title("longitude")
    pair = issues.decimal_pair(lat_text, lng_text, lat_column, lng_column)
    if pair is None:
        return None
    lat, lng = pair
    if not (LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LNG_RANGE[0] <= lng <= LNG_RANGE[1]):
        issues.error(f"{lat_column}/{lng_column}", f"{lat_text}/{lng_text}", "outside the UK")
        return None
    if min(-lat.as_tuple().exponent, -lng.as_tuple().exponent) < 2:
        issues.warn(f"{lat_column}/{lng_column}", f"{lat_text}/{lng_text}", "imprecise: under 2 decimals")
    return {"latitude": _six_decimals(lat), "longitude": _six_decimals(lng)}


def _ncr_datetime(cells: list[str], layout: Layout, role: str, issues: _Issues) -> datetime | None:
    value = layout.value(cells, role)
    if not value or value.startswith(_NULL_DATE):
        return None
    try:
        local = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        issues.warn(layout.title(role), value, "not a date YYYY-MM-DD hh:mm:ss")
        return None
    return local.replace(tzinfo=_LONDON).astimezone(timezone.utc)


def _last_updated(cells: list[str], layout: Layout, issues: _Issues) -> str | None:
    stamps = [
        stamp for role in ("updated", "last_updated", "created") if role in layout.columns
        if (stamp := _ncr_datetime(cells, layout, role, issues)) is not None
    ]
    return max(stamps).strftime("%Y-%m-%dT%H:%M:%SZ") if stamps else None


def _deleted(cells: list[str], layout: Layout) -> bool:
    value = layout.value(cells, "deleted")
    return bool(re.match(r"\d{4}-\d{2}-\d{2}", value)) and not value.startswith(_NULL_DATE)


# --------------------------------------------------------------------------- EVSEs


def _type_key(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def _evses(cells: list[str], layout: Layout, location_id: str, issues: _Issues) -> list[dict]:
    device_status = _EVSE_STATUSES.get(layout.value(cells, "device_status").casefold(), "UNKNOWN")
    deleted = _deleted(cells, layout)
    evses, unknown = [], []
    for group in layout.connectors:
        def field(name: str, group=group) -> str:
            index = group.columns.get(name)
            return _value(cells[index]) if index is not None else ""

        def title(name: str, group=group) -> str:
            index = group.columns.get(name)
            return layout.header[index] if index is not None else f"connector{group.number}{name}"

        type_text = field("type")
        if not type_text:
            filled = [name for name in ("ratedoutputkw", "outputcurrent", "ratedvoltage") if field(name)]
            if filled:
                issues.warn(title(filled[0]), field(filled[0]), "values without a connector type, skipped")
            continue
        spec = CONNECTOR_TYPES.get(_type_key(type_text))
        if spec is None:
            unknown.append((title("type"), type_text))
            continue
        connector = _connector(spec, field, title, issues)
        connector_id = field("id")
        uid = ID_PREFIX + connector_id if connector_id.isdigit() else f"{location_id}-{group.number}"
        status = _EVSE_STATUSES.get(field("status").casefold(), "UNKNOWN")
        if device_status != "UNKNOWN":
            status = device_status
        if deleted:
            status = "REMOVED"
        evses.append({"uid": uid, "status": status, "connectors": [connector]})
    if evses:
        for column, value in unknown:
            issues.warn(column, value, "unknown connector type, skipped")
    elif unknown:
        issues.error(", ".join(c for c, _ in unknown), ", ".join(v for _, v in unknown), "no known connector type")
    else:
        columns = ", ".join(layout.header[group.columns["type"]] for group in layout.connectors)
        issues.error(columns, "", "no connector")
    return evses


def _connector(spec: ConnectorSpec, field, title, issues: _Issues) -> dict:
    current, phases = spec.current, spec.phases
    method_text = field("chargemethod")
    method = _CHARGE_METHODS.get(method_text.casefold())
    if method_text and method is None:
        issues.warn(title("chargemethod"), method_text, "unknown charge method, ignored")
    elif method and method[0] != spec.current:
        issues.warn(title("chargemethod"), method_text, "contradicts the connector type, which wins")
    elif method and phases is None:
        phases = method[1]

    kw = _positive(field, title, "ratedoutputkw", issues)
    volts = _positive(field, title, "ratedvoltage", issues)
    amps = _positive(field, title, "outputcurrent", issues)
    if kw is not None:
        watts = _watts(kw)
    elif volts is not None and amps is not None:
        watts = _watts_from(current, phases, volts, amps)
    else:
        watts = _watts(spec.max_kw)
        issues.warn(title("ratedoutputkw"), field("ratedoutputkw"), "no usable power, assumed the connector's rating")
    power_type, derived_volts, derived_amps = _electrics(
        ConnectorSpec(spec.standard, spec.format, current, phases, None), watts
    )
    if volts is not None:
        if power_type == "AC_3_PHASE" and volts >= 380:
            volts = Decimal(round(float(volts) / math.sqrt(3) / 10) * 10)  # line to neutral
        derived_volts = _whole(volts)
    return {
        "id": "1",
        "standard": spec.standard,
        "format": _format(spec, field, title, issues),
        "power_type": power_type,
        "max_voltage": derived_volts,
        "max_amperage": _whole(amps) if amps is not None else derived_amps,
        "max_electric_power": watts,
    }


def _positive(field, title, name: str, issues: _Issues) -> Decimal | None:
    text = field(name)
    if not text:
        return None
    number = _decimal(text)
    if number is None or number <= 0:
        issues.warn(title(name), text, "not a positive number, ignored")
        return None
    return number


def _whole(number: Decimal) -> int:
    return int(number.to_integral_value(rounding=ROUND_HALF_UP))


def _watts_from(current: str, phases: int | None, volts: Decimal, amps: Decimal) -> int:
    if current == "AC" and phases == 3:
        factor = Decimal(str(math.sqrt(3))) if volts >= 380 else Decimal(3)  # line to line or neutral
        return _watts(volts * amps * factor / 1000)
    return _watts(volts * amps / 1000)


def _format(spec: ConnectorSpec, field, title, issues: _Issues) -> str:
    tethered = field("tetheredcable")
    stated = {"1": "CABLE", "0": "SOCKET"}.get(tethered)
    if spec.standard in _FIXED_FORMAT:
        if stated and stated != spec.format:
            issues.warn(title("tetheredcable"), tethered, f"a {spec.standard} connector is always a {spec.format}")
        return spec.format
    return stated or spec.format

"""One charge device of a UK NCR export as an OCPI 2.2.1 Location."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from locations.registers.common import HOUSE_NUMBER, Issues, RegisterRow, clean, shorten, six_decimals
from locations.registers.uk_ncr.evses import evses
from locations.registers.uk_ncr.layout import ID_PREFIX, NULL_DATE, Layout

COUNTRY = "GBR"
TIME_ZONE = "Europe/London"
_LONDON = ZoneInfo(TIME_ZONE)

# Great Britain and Northern Ireland with the Isles of Scilly and Shetland; not the Channel Islands.
LAT_RANGE = (Decimal("49.8"), Decimal("60.9"))
LNG_RANGE = (Decimal("-8.7"), Decimal("1.8"))

OCPI_ID_LENGTH = 36
_HASHED_ID_DIGITS = 24  # leaves room for "-<n>" in an EVSE uid built on the location id

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
_HEX = re.compile(r"[0-9a-fA-F]+")
_URL = re.compile(r"https?://[^\s/@]+\.[^\s@]+", re.IGNORECASE)


def parse_row(cells: list[str], layout: Layout, row: int, *, broken_column: int | None = None) -> RegisterRow:
    """Turn the cells of one device into a `RegisterRow` (exposed for tests and reuse)."""
    issues = Issues()
    if len(cells) != layout.width:
        issues.error("(record)", f"{len(cells)} cells", f"not the header's {layout.width}: a shifted or broken record")
        return RegisterRow(row, error=issues.errors)
    if broken_column is not None:
        issues.warn(layout.header[broken_column], clean(cells[broken_column]),
                    "line break inside an unquoted cell, record rejoined")
    location = _build_location(cells, layout, issues)
    return issues.result(row, location)


def _build_location(cells: list[str], layout: Layout, issues: Issues) -> dict | None:
    device_id = layout.value(cells, "device_id")
    if not device_id:
        issues.error(layout.title("device_id"), "", "device id missing")
    coordinates = _coordinates(cells, layout, issues)
    description = _described_address(layout.value(cells, "description"))
    city = _city(cells, layout, description, issues)
    if issues.errors:
        return None
    location_id = _location_id(device_id)
    found = evses(cells, layout, location_id, issues)
    if issues.errors:
        return None
    name = _name(cells, layout, issues)
    street = _street(cells, layout, description, name, issues)
    return {
        "id": location_id,
        "name": shorten(name or street, 255),
        "address": _shorten_parts(street, 45),
        "city": shorten(city, 45),
        "postal_code": _postcode(cells, layout, description, issues),
        "state": _county(layout.value(cells, "county")),
        "country": COUNTRY,
        "coordinates": coordinates,
        "time_zone": TIME_ZONE,
        "publish": layout.value(cells, "publish_status").casefold() in ("", "published"),
        "parking_type": None,
        "operator": _business(cells, layout, "controller") or _business(cells, layout, "owner"),
        "owner": _business(cells, layout, "owner"),
        "evses": found,
        "last_updated": _last_updated(cells, layout, issues),
    }


def _location_id(device_id: str) -> str:
    if len(ID_PREFIX + device_id) <= OCPI_ID_LENGTH and device_id.isascii() and " " not in device_id:
        return ID_PREFIX + device_id
    if _HEX.fullmatch(device_id) and len(device_id) >= _HASHED_ID_DIGITS:
        return ID_PREFIX + device_id[:_HASHED_ID_DIGITS].lower()
    return ID_PREFIX + hashlib.sha1(device_id.encode("utf-8")).hexdigest()[:_HASHED_ID_DIGITS]


def _name(cells: list[str], layout: Layout, issues: Issues) -> str:
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


def _city(cells: list[str], layout: Layout, described: _Described | None, issues: Issues) -> str:
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
    issues.error(layout.title("town"), clean(cells[layout.columns["town"]]), "town missing")
    return ""


def _shorten_parts(text: str, limit: int) -> str:
    """Drop trailing comma-separated parts before cutting inside one: "Cadogan Place, Knightsbridge"
    rather than "Cadogan Place, Knightsbridge, Kensington and"."""
    parts = [part for part in (clean(p) for p in text.split(",")) if part]
    while len(parts) > 1 and len(", ".join(parts)) > limit:
        parts.pop()
    return shorten(", ".join(parts), limit)


def _is_postcode(text: str) -> bool:
    return bool(_POSTCODE.fullmatch(re.sub(r"[^A-Z0-9]", "", text.upper())))


def _street(cells: list[str], layout: Layout, described: _Described | None, name: str,
            issues: Issues) -> str:
    number = layout.value(cells, "building_number")
    roads: list[str] = []
    for role in ("thoroughfare", "street"):
        road = layout.value(cells, role).strip(" ,")
        if road and not _is_postcode(road) and road.casefold() not in (r.casefold() for r in roads):
            roads.append(road)
    parts = list(roads)
    if number and not _is_postcode(number):
        if roads and HOUSE_NUMBER.fullmatch(number):
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


def _postcode(cells: list[str], layout: Layout, described: _Described | None, issues: Issues) -> str | None:
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
    return _COUNTY_ABBREVIATIONS.get(text.casefold(), shorten(text, 20))


def _business(cells: list[str], layout: Layout, role: str) -> dict | None:
    name = layout.value(cells, role)
    if not name:
        return None
    details = {"name": shorten(name, 100)}
    website = layout.value(cells, f"{role}_website")
    if website.casefold().startswith("www."):
        website = "http://" + website
    if _URL.fullmatch(website) and len(website) <= 255:
        details["website"] = website
    return details


# --------------------------------------------------------------------------- coordinates and dates


def _coordinates(cells: list[str], layout: Layout, issues: Issues) -> dict | None:
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
    return {"latitude": six_decimals(lat), "longitude": six_decimals(lng)}


def _ncr_datetime(cells: list[str], layout: Layout, role: str, issues: Issues) -> datetime | None:
    value = layout.value(cells, role)
    if not value or value.startswith(NULL_DATE):
        return None
    try:
        local = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        issues.warn(layout.title(role), value, "not a date YYYY-MM-DD hh:mm:ss")
        return None
    return local.replace(tzinfo=_LONDON).astimezone(timezone.utc)


def _last_updated(cells: list[str], layout: Layout, issues: Issues) -> str | None:
    stamps = [
        stamp for role in ("updated", "last_updated", "created") if role in layout.columns
        if (stamp := _ncr_datetime(cells, layout, role, issues)) is not None
    ]
    return max(stamps).strftime("%Y-%m-%dT%H:%M:%SZ") if stamps else None

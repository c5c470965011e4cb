"""Where a BNetzA station is: its address in any of the three forms, its state and coordinates."""

from __future__ import annotations

import re
from decimal import Decimal

from locations.registers.bnetza.layout import LAYOUT_2017, LAYOUT_2021, Layout
from locations.registers.common import HOUSE_NUMBER, Issues, clean, shorten, six_decimals

# Germany's extremes plus a margin; a register entry outside is a typo, not a foreign site.
LAT_RANGE = (Decimal("47.2"), Decimal("55.1"))
LNG_RANGE = (Decimal("5.8"), Decimal("15.1"))

# Bundesländer longer than OCPI's 20 characters, in their usual postal abbreviation.
_STATE_ABBREVIATIONS = {"mecklenburg-vorpommern": "Meckl.-Vorpommern"}

# Postcode regions beginning with 0 and the states they reach into: a spreadsheet that stored a
# postcode as a number printed 01069 as 1069, and only these states can have lost that zero.
_ZERO_REGIONS = {
    "01": {"sachsen", "brandenburg"},
    "02": {"sachsen"},
    "03": {"brandenburg", "sachsen"},
    "04": {"sachsen", "sachsen-anhalt", "thüringen", "brandenburg"},
    "06": {"sachsen-anhalt", "thüringen", "sachsen"},
    "07": {"thüringen", "sachsen"},
    "08": {"sachsen", "thüringen"},
    "09": {"sachsen"},
}

_POSTCODE_TOWN = re.compile(r"(\d{4,6})\s*(.*)")


def state(text: str) -> str | None:
    value = clean(text)
    if not value:
        return None
    return _STATE_ABBREVIATIONS.get(value.casefold(), shorten(value, 20))


def address(cells: list[str], layout: Layout, issues: Issues) -> tuple[str, str | None, str]:
    """(street with house number, postcode, town) of the row."""
    if layout.name == LAYOUT_2017:
        street_role = town_role = "site"
        street, postal_code, city = _split_site(layout.cell(cells, "site"), layout.title("site"), issues)
    elif layout.name == LAYOUT_2021:
        street_role, town_role = "street", "town"
        street = clean(f"{layout.cell(cells, 'street')} {layout.cell(cells, 'house_number')}")
        postal_code = _postcode_column(cells, layout, issues)
        city = clean(layout.cell(cells, "town"))
    else:
        street_role, town_role = "street_line", "postcode_town"
        street = clean(layout.cell(cells, "street_line"))
        postal_code, city = _split_postcode_town(
            layout.cell(cells, "postcode_town"), layout.title("postcode_town"), issues
        )
    if not street:
        issues.error(layout.title(street_role), clean(layout.cell(cells, street_role)), "street missing")
    if not city:
        issues.error(layout.title(town_role), clean(layout.cell(cells, town_role)), "town missing")
    return street, postal_code, city


def raw_address(cells: list[str], layout: Layout) -> str:
    """The address as the register wrote it, for ids that must not change with how it is shortened."""
    if layout.name == LAYOUT_2017:
        return clean(layout.cell(cells, "site"))
    if layout.name == LAYOUT_2021:
        street = clean(f"{layout.cell(cells, 'street')} {layout.cell(cells, 'house_number')}")
        return f"{street}, {clean(layout.cell(cells, 'postcode'))} {clean(layout.cell(cells, 'town'))}"
    return f"{clean(layout.cell(cells, 'street_line'))}, {clean(layout.cell(cells, 'postcode_town'))}"


def _postcode_column(cells: list[str], layout: Layout, issues: Issues) -> str | None:
    value = clean(layout.cell(cells, "postcode"))
    column = layout.title("postcode")
    if not value:
        issues.warn(column, value, "no postcode")
        return None
    if len(value) == 4 and value.isdigit():
        if clean(layout.cell(cells, "state")).casefold() in _ZERO_REGIONS.get("0" + value[:1], ()):
            issues.warn(column, value, "leading zero restored")
            return "0" + value
    if not value.isdigit():
        issues.warn(column, value, "not a postcode")
        return None
    return _postcode(value, column, value, issues)


def _split_postcode_town(text: str, column: str, issues: Issues) -> tuple[str | None, str]:
    value = clean(text)
    match = _POSTCODE_TOWN.fullmatch(value)
    if not match:
        issues.warn(column, value, "no postcode")
        return None, value
    return _postcode(match[1], column, value, issues), clean(match[2].strip(", "))


def _postcode(digits: str, column: str, value: str, issues: Issues) -> str | None:
    if len(digits) == 5:
        return digits
    # Four or six digits are typos (a digit lost or doubled, not a dropped leading zero: the
    # 2019 export has "4474 Vilshofen" for 94474), so guessing would move the site.
    issues.warn(column, value, "postcode is not 5 digits")
    return None


def _split_site(text: str, column: str, issues: Issues) -> tuple[str, str | None, str]:
    """Split a 2017 "Standort" such as "Heilwigstraße, 2, 20249, Hamburg" into its parts."""
    value = clean(text)
    parts = [part.strip() for part in value.split(",") if part.strip()]
    at = _postcode_part(parts)
    if at is None:
        issues.warn(column, value, "no postcode")
        if len(parts) < 2:
            return _join_street(parts), None, ""
        return _join_street(parts[:-1]), None, parts[-1]
    match = _POSTCODE_TOWN.fullmatch(parts[at])
    town = ", ".join(([match[2]] if match[2] else []) + parts[at + 1 :])
    return _join_street(parts[:at]), _postcode(match[1], column, value, issues), clean(town)


def _postcode_part(parts: list[str]) -> int | None:
    # The last part opening with a postcode; parts before it are the street, after it the town.
    for index in range(len(parts) - 1, 0, -1):
        match = _POSTCODE_TOWN.fullmatch(parts[index])
        if match and (match[2] or index < len(parts) - 1):
            return index
    return None


def _join_street(parts: list[str]) -> str:
    # "Straße, 2" and "Straße, Pforte WEST, 3" both carry the house number in its own part.
    numbers = [part for part in parts[1:] if HOUSE_NUMBER.fullmatch(part)]
    others = [part for part in parts[1:] if not HOUSE_NUMBER.fullmatch(part)]
    head = " ".join(parts[:1] + numbers)
    return ", ".join([head] + others) if head else ", ".join(others)


# --------------------------------------------------------------------------- coordinates


def coordinates(cells: list[str], layout: Layout, issues: Issues) -> dict | None:
    lat_text, lng_text = layout.cell(cells, "latitude"), layout.cell(cells, "longitude")
    lat_column, lng_column = layout.title("latitude"), layout.title("longitude")
    pair = issues.decimal_pair(lat_text, lng_text, lat_column, lng_column)
    if pair is None:
        return None
    lat, lng = pair
    if not (abs(lat) <= 90 and abs(lng) <= 180):
        # e.g. "8291302": the decimal comma was lost, and the digits alone cannot say where
        issues.error(f"{lat_column}/{lng_column}", f"{lat_text}/{lng_text}", "not a coordinate")
        return None
    placed = _place_in_germany(lat, lng)
    if placed is None:
        issues.error(f"{lat_column}/{lng_column}", f"{lat_text}/{lng_text}", "outside Germany")
        return None
    if placed != (lat, lng):
        issues.warn(f"{lat_column}/{lng_column}", f"{lat_text}/{lng_text}", "latitude and longitude swapped")
    if min(-lat.as_tuple().exponent, -lng.as_tuple().exponent) < 2:
        issues.warn(f"{lat_column}/{lng_column}", f"{lat_text}/{lng_text}", "imprecise: under 2 decimals")
    return {"latitude": six_decimals(placed[0]), "longitude": six_decimals(placed[1])}


def _place_in_germany(lat: Decimal, lng: Decimal) -> tuple[Decimal, Decimal] | None:
    for candidate in ((lat, lng), (lng, lat)):
        if _inside(candidate[0], LAT_RANGE) and _inside(candidate[1], LNG_RANGE):
            return candidate
    return None


def _inside(value: Decimal, bounds: tuple[Decimal, Decimal]) -> bool:
    return bounds[0] <= value <= bounds[1]

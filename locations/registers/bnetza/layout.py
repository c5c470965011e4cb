"""The columns of a BNetzA export, found by their names.

Every column the reader uses has a role; a role may go by several names (the register renamed
"Breitengrad [DG]" to "Breitengrad", fixed "Art der Ladeeinrichung"). Columns of no role are ignored.
Per charge point ("Ladepunkt" n) there are numbered columns: the plugs (`Steckertypen<n>`), the power
(`P<n> [kW]`, later `Nennleistung Stecker<n>`), the EVSE id (`EVSE-ID<n>`) and a public key
(`Public Key<n>`, which OCPI has no field for).

The address comes in one of three forms, and the form is the only thing that tells exports apart:
"Standort" (street, postcode and town in one cell, 2017), "Adresse" + "Postleitzahl Ort" (2019),
or "Straße", "Hausnummer", "Postleitzahl", "Ort" in columns of their own (2021 on).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

LAYOUT_2017 = "2017"  # Standort
LAYOUT_2019 = "2019"  # Adresse; Postleitzahl Ort
LAYOUT_2021 = "2021"  # Straße; Hausnummer; Postleitzahl; Ort

# role -> the names it goes by, as `header_key` gives them.
_ROLES = {
    "facility_id": ("ladeeinrichtungs-id",),
    "operator": ("betreiber",),
    "display_name": ("anzeigename (karte)",),
    "status": ("status",),
    "charge_point_count": ("anzahl ladepunkte",),
    "commissioned": ("inbetriebnahmedatum",),
    "site": ("standort",),
    "street_line": ("adresse",),
    "postcode_town": ("postleitzahl ort",),
    "street": ("strasse",),  # "Straße", case-folded
    "house_number": ("hausnummer",),
    "address_extra": ("adresszusatz",),
    "postcode": ("postleitzahl",),
    "town": ("ort",),
    "state": ("bundesland",),
    "latitude": ("breitengrad [dg]", "breitengrad"),
    "longitude": ("längengrad [dg]", "längengrad"),
    "site_name": ("standortbezeichnung",),
    "parking": ("informationen zum parkraum",),
    "payment": ("bezahlsysteme",),
    "opening": ("öffnungszeiten",),
    "opening_days": ("öffnungszeiten: wochentage",),
    "opening_hours": ("öffnungszeiten: tageszeiten",),
}
_KEY_ROLES = {key: role for role, keys in _ROLES.items() for key in keys}

_REQUIRED_ROLES = {
    LAYOUT_2017: ("operator", "site", "longitude", "latitude"),
    LAYOUT_2019: ("operator", "street_line", "postcode_town", "longitude", "latitude"),
    LAYOUT_2021: ("operator", "street", "postcode", "town", "longitude", "latitude"),
}

_CHARGE_POINT_COLUMNS = (
    (re.compile(r"steckertypen\s*(\d+)"), "plugs"),
    (re.compile(r"p\s*(\d+)\s*\[kw\]"), "power"),
    (re.compile(r"nennleistung stecker\s*(\d+)"), "power"),
    (re.compile(r"evse-id\s*(\d+)"), "evse_id"),
)


def header_key(cell: str) -> str:
    # "Steckertypen 4#" is a typo in the 2017 export; spacing varies between exports.
    text = unicodedata.normalize("NFC", cell.replace("\ufeff", "").replace("#", " "))
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class ChargePointColumns:
    number: int
    plugs: int
    power: int | None
    evse_id: int | None


@dataclass(frozen=True)
class Layout:
    name: str
    header: tuple[str, ...]
    columns: dict[str, int]  # role -> index
    charge_points: tuple[ChargePointColumns, ...]

    def cell(self, cells: list[str], role: str) -> str:
        index = self.columns.get(role)
        return cells[index] if index is not None and index < len(cells) else ""

    def title(self, role: str) -> str:
        return self.header[self.columns[role]]

    def has(self, role: str) -> bool:
        return role in self.columns


def is_header(cells: Iterable[str]) -> bool:
    """Whether a record is the column-title row of a BNetzA export (any of its layouts)."""
    roles = {_KEY_ROLES.get(header_key(cell)) for cell in cells}
    return {"operator", "latitude", "longitude"} <= roles


def detect_layout(header_cells: Iterable[str]) -> str:
    """Name the address form of an export ("2017", "2019" or "2021") from its column-title row."""
    roles = {_KEY_ROLES.get(header_key(cell)) for cell in header_cells}
    if {"street_line", "postcode_town"} <= roles:
        return LAYOUT_2019
    if "site" in roles:
        return LAYOUT_2017
    if {"street", "postcode", "town"} <= roles:
        return LAYOUT_2021
    known = sorted(role for role in roles if role)
    raise ValueError("not a BNetzA register header: no address columns (Standort; Adresse and Postleitzahl Ort; "
                     f"or Straße, Postleitzahl and Ort) among the known ones {known}")


def build_layout(header_cells: list[str]) -> Layout:
    name = detect_layout(header_cells)
    keys = [header_key(cell) for cell in header_cells]
    columns: dict[str, int] = {}
    for index, key in enumerate(keys):
        role = _KEY_ROLES.get(key)
        if role is not None:
            columns.setdefault(role, index)  # the first of a name given twice, as the register's own tools
    missing = [_ROLES[role][0] for role in _REQUIRED_ROLES[name] if role not in columns]
    if missing:
        raise ValueError(f"BNetzA {name} layout without column(s) {missing}")
    header = tuple(" ".join(cell.replace("\ufeff", "").split()) for cell in header_cells)
    return Layout(name, header, columns, _charge_point_columns(keys))


def _charge_point_columns(keys: list[str]) -> tuple[ChargePointColumns, ...]:
    found: dict[str, dict[int, int]] = {"plugs": {}, "power": {}, "evse_id": {}}
    for index, key in enumerate(keys):
        for pattern, kind in _CHARGE_POINT_COLUMNS:
            if match := pattern.fullmatch(key):
                found[kind].setdefault(int(match[1]), index)
                break
    return tuple(
        ChargePointColumns(number, plugs, found["power"].get(number), found["evse_id"].get(number))
        for number, plugs in sorted(found["plugs"].items())
    )

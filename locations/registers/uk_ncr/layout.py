"""The columns of a UK NCR export, found by their names (matched ignoring case and spaces)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from locations.registers.common import clean

FORMAT = "uk-ncr"
ID_PREFIX = "GB-NCR-"
NULL_DATE = "0000-00-00"

_PLACEHOLDERS = frozenset({"null", "n/a", "na", "none"})
CONNECTOR_COLUMN = re.compile(
    r"connector(\d+)(id|type|ratedoutputkw|outputcurrent|ratedvoltage|chargemethod|tetheredcable|status)"
)


def cell_value(text: str) -> str:
    """A cell's text, "" for the export's placeholders of an empty cell."""
    text = clean(text)
    return "" if text.casefold() in _PLACEHOLDERS else text


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
        return cell_value(cells[index]) if index is not None and index < len(cells) else ""

    def title(self, role: str) -> str:
        return self.header[self.columns[role]]


def _header_key(cell: str) -> str:
    return "".join(cell.replace("\ufeff", "").split()).casefold()


def detect_uk_ncr(header_cells: Iterable[str]) -> str:
    """Return FORMAT when the header row is the NCR's; else raise ValueError naming what is missing."""
    keys = {_header_key(cell) for cell in header_cells}
    missing = [_ROLES[role] for role in _REQUIRED_ROLES if _header_key(_ROLES[role]) not in keys]
    if not any(CONNECTOR_COLUMN.fullmatch(key) and key.endswith("type") for key in keys):
        missing.append("connector1Type")
    if missing:
        raise ValueError(f"not a UK National Chargepoint Registry export: no column(s) {missing}")
    return FORMAT


def build_layout(header_cells: list[str]) -> Layout:
    detect_uk_ncr(header_cells)
    keys = [_header_key(cell) for cell in header_cells]
    role_keys = {role: _header_key(name) for role, name in _ROLES.items()}
    used = set(role_keys.values()) | {key for key in keys if CONNECTOR_COLUMN.fullmatch(key)}
    duplicated = sorted({header_cells[keys.index(key)] for key in keys if key in used and keys.count(key) > 1})
    if duplicated:
        raise ValueError(f"UK NCR header names column(s) {duplicated} more than once")
    columns = {role: keys.index(key) for role, key in role_keys.items() if key in keys}
    groups: dict[int, dict[str, int]] = {}
    for index, key in enumerate(keys):
        if match := CONNECTOR_COLUMN.fullmatch(key):
            groups.setdefault(int(match[1]), {})[match[2]] = index
    connectors = tuple(
        ConnectorColumns(number, fields) for number, fields in sorted(groups.items()) if "type" in fields
    )
    header = tuple(" ".join(cell.replace("\ufeff", "").split()) for cell in header_cells)
    return Layout(header, columns, connectors)


def deleted(cells: list[str], layout: Layout) -> bool:
    text = layout.value(cells, "deleted")
    return bool(re.match(r"\d{4}-\d{2}-\d{2}", text)) and not text.startswith(NULL_DATE)

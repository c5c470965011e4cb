"""The columns of an AFDC station list, found by their names (ignoring case and spacing)."""

from __future__ import annotations

from typing import Iterable

from locations.registers.common import clean

FORMAT = "us-afdc"

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

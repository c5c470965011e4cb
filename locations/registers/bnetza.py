"""Streaming parser for the Bundesnetzagentur charge-point register ("Ladesäulenregister").

The register is published as a spreadsheet export: a few preamble lines, a two-level header
("1. Ladepunkt" spanning "Steckertypen1; P1 [kW]; ..."), `;` as delimiter, decimal commas and CRLF
line ends. Two layouts exist in the wild:

* 2017: Betreiber; Standort ("street, postcode town" in one cell); Längengrad; Breitengrad; ...
* 2019: Betreiber; Adresse; Postleitzahl Ort; Bundesland; Längengrad; Breitengrad;
  Inbetriebnahmedatum; ...; then per charge point Steckertypen<n>; P<n> [kW]; Public Key<n>

Columns are found by their header name, never by position, so reordered or added columns in later
exports do not shift the mapping.

Every non-blank data row yields exactly one `RegisterRow`, carrying either an OCPI 2.2.1 Location
dict or the reasons it could not be built. Blank padding rows (only `;`) are not data rows.

Electrical values the register does not contain are derived (see `_electrics`):

* AC single phase: 230 V, amperage = P / 230.
* AC three phase: `max_voltage` is 230 V because OCPI 2.2.1 defines it line-to-neutral for
  AC_3_PHASE; amperage per phase = P / (400 V * sqrt 3).
* AC phases: fixed by the plug where the plug fixes it (Schuko, CEE, Type 1), otherwise
  P > 7.4 kW (the 32 A single-phase ceiling) means three phases.
* DC: 400 V up to 150 kW, 920 V above (high-power CCS); amperage = P / V.
* The register states one power per charge point, shared by every plug in the cell, so a plug is
  capped at its own rating (a Schuko next to a 22 kW Type 2 socket still delivers 3.7 kW).

Pure stdlib on purpose: usable from management commands, Celery tasks and scripts alike.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Iterable, Iterator

__all__ = [
    "CONNECTOR_TYPES",
    "LAYOUT_2017",
    "LAYOUT_2019",
    "ConnectorSpec",
    "RegisterRow",
    "detect_layout",
    "iter_bnetza_locations",
]

LAYOUT_2017 = "2017"
LAYOUT_2019 = "2019"

ID_PREFIX = "DE-BNA-"
COUNTRY = "DEU"
TIME_ZONE = "Europe/Berlin"

# Real exports have 3 to 5 preamble lines; a bound keeps a wrong file from being read to the end.
MAX_PREAMBLE_RECORDS = 20

# Germany's extremes plus a margin; a register entry outside is a typo, not a foreign site.
LAT_RANGE = (Decimal("47.2"), Decimal("55.1"))
LNG_RANGE = (Decimal("5.8"), Decimal("15.1"))

Issue = tuple[str, str, str]  # (column, value, reason)


@dataclass
class RegisterRow:
    """One data row: `location` when it could be built, else `error`; never both."""

    row: int
    location: dict | None = None
    error: list[Issue] | None = None
    warnings: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.location is not None


@dataclass(frozen=True)
class ConnectorSpec:
    standard: str
    format: str
    current: str  # "AC" or "DC"
    phases: int | None  # None: decided by the power
    max_kw: Decimal | None  # the plug's own rating; None: no practical ceiling


# Keys are normalised with `_connector_key`. The "seen" block is every string found in the
# 2017-04-11 and 2019-07-19 exports; the rest are anticipated spellings, by analogy, so a later
# export's variant maps instead of costing the plug.
CONNECTOR_TYPES: dict[str, ConnectorSpec] = {
    # seen
    "ac steckdose typ 2": ConnectorSpec("IEC_62196_T2", "SOCKET", "AC", None, Decimal("43")),
    "ac kupplung typ 2": ConnectorSpec("IEC_62196_T2", "CABLE", "AC", None, Decimal("43")),
    "dc kupplung combo": ConnectorSpec("IEC_62196_T2_COMBO", "CABLE", "DC", None, None),
    "dc chademo": ConnectorSpec("CHADEMO", "CABLE", "DC", None, Decimal("62.5")),
    "ac schuko": ConnectorSpec("DOMESTIC_F", "SOCKET", "AC", 1, Decimal("3.7")),
    "ac cee 3 polig": ConnectorSpec("IEC_60309_2_single_16", "SOCKET", "AC", 1, Decimal("3.7")),
    "ac cee 5 polig": ConnectorSpec("IEC_60309_2_three_16", "SOCKET", "AC", 3, Decimal("11")),
    "steckdose typ 1": ConnectorSpec("IEC_62196_T1", "SOCKET", "AC", 1, Decimal("7.4")),
    # anticipated
    "ac steckdose typ 1": ConnectorSpec("IEC_62196_T1", "SOCKET", "AC", 1, Decimal("7.4")),
    "ac kupplung typ 1": ConnectorSpec("IEC_62196_T1", "CABLE", "AC", 1, Decimal("7.4")),
    "dc kupplung typ 2": ConnectorSpec("IEC_62196_T2_COMBO", "CABLE", "DC", None, None),
    "dc kupplung combo typ 2": ConnectorSpec("IEC_62196_T2_COMBO", "CABLE", "DC", None, None),
    "dc kupplung combo typ 1": ConnectorSpec("IEC_62196_T1_COMBO", "CABLE", "DC", None, None),
    "dc kupplung typ 1": ConnectorSpec("IEC_62196_T1_COMBO", "CABLE", "DC", None, None),
    "ac schuko steckdose": ConnectorSpec("DOMESTIC_F", "SOCKET", "AC", 1, Decimal("3.7")),
    "ac cee 16a 3 polig": ConnectorSpec("IEC_60309_2_single_16", "SOCKET", "AC", 1, Decimal("3.7")),
    "ac cee 16a 5 polig": ConnectorSpec("IEC_60309_2_three_16", "SOCKET", "AC", 3, Decimal("11")),
    "ac cee 32a 5 polig": ConnectorSpec("IEC_60309_2_three_32", "SOCKET", "AC", 3, Decimal("22")),
    "ac cee 63a 5 polig": ConnectorSpec("IEC_60309_2_three_64", "SOCKET", "AC", 3, Decimal("43")),
    "tesla": ConnectorSpec("TESLA_S", "CABLE", "DC", None, None),
    "dc tesla": ConnectorSpec("TESLA_S", "CABLE", "DC", None, None),
    "tesla supercharger": ConnectorSpec("TESLA_S", "CABLE", "DC", None, None),
}

# Bundesländer longer than OCPI's 20 characters, in their usual postal abbreviation.
_STATE_ABBREVIATIONS = {"mecklenburg-vorpommern": "Meckl.-Vorpommern"}

_HOUSE_NUMBER = re.compile(
    r"(?:ggü\.?\s*)?\d+\s*[a-zA-Z]?(?:\s*[-/]\s*\d+\s*[a-zA-Z]?)?(?:\s*\(.*\))?"
)
_POSTCODE_TOWN = re.compile(r"(\d{4,6})\s*(.*)")
_CHARGE_POINT_PLUGS = re.compile(r"steckertypen\s*(\d+)")
_CHARGE_POINT_POWER = re.compile(r"p\s*(\d+)\s*\[kw\]")
_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class ChargePointColumns:
    number: int
    plugs: int
    power: int


@dataclass(frozen=True)
class Layout:
    name: str
    header: tuple[str, ...]
    columns: dict[str, int]  # role -> index
    charge_points: tuple[ChargePointColumns, ...]

    def cell(self, cells: list[str], role: str) -> str:
        index = self.columns.get(role)
        return _cell(cells, index) if index is not None else ""

    def title(self, role: str) -> str:
        return self.header[self.columns[role]]


_ROLES = {
    "operator": "betreiber",
    "site": "standort",
    "street": "adresse",
    "postcode_town": "postleitzahl ort",
    "state": "bundesland",
    "longitude": "längengrad [dg]",
    "latitude": "breitengrad [dg]",
    "commissioned": "inbetriebnahmedatum",
    "charge_point_count": "anzahl ladepunkte",
}

_REQUIRED_ROLES = {
    LAYOUT_2017: ("operator", "site", "longitude", "latitude"),
    LAYOUT_2019: ("operator", "street", "postcode_town", "longitude", "latitude"),
}


def _header_key(cell: str) -> str:
    # "Steckertypen 4#" is a typo in the 2017 export; spacing varies between exports.
    return " ".join(cell.replace("\ufeff", "").replace("#", " ").split()).casefold()


def detect_layout(header_cells: Iterable[str]) -> str:
    """Name the export layout ("2017" or "2019") from the column-title row of the header."""
    keys = {_header_key(cell) for cell in header_cells}
    if {"adresse", "postleitzahl ort"} <= keys:
        return LAYOUT_2019
    if "standort" in keys:
        return LAYOUT_2017
    raise ValueError(f"not a known BNetzA register layout: {sorted(k for k in keys if k)}")


def _build_layout(header_cells: list[str]) -> Layout:
    name = detect_layout(header_cells)
    keys = [_header_key(cell) for cell in header_cells]
    columns = {role: keys.index(key) for role, key in _ROLES.items() if key in keys}
    missing = [_ROLES[role] for role in _REQUIRED_ROLES[name] if role not in columns]
    if missing:
        raise ValueError(f"BNetzA {name} layout without column(s) {missing}")
    header = tuple(" ".join(cell.replace("\ufeff", "").split()) for cell in header_cells)
    return Layout(name, header, columns, _charge_point_columns(keys))


def _charge_point_columns(keys: list[str]) -> tuple[ChargePointColumns, ...]:
    plugs, power = {}, {}
    for index, key in enumerate(keys):
        if match := _CHARGE_POINT_PLUGS.fullmatch(key):
            plugs[int(match[1])] = index
        elif match := _CHARGE_POINT_POWER.fullmatch(key):
            power[int(match[1])] = index
    numbers = sorted(plugs.keys() & power.keys())
    return tuple(ChargePointColumns(n, plugs[n], power[n]) for n in numbers)


# --------------------------------------------------------------------------- reading


def _decoded(lines: Iterable[str | bytes]) -> Iterator[str]:
    # Lines may come from a binary file, so a latin-1/cp1252 export is read without guessing
    # the encoding up front (which would mean reading ahead); a BOM is dropped either way.
    first = True
    for line in lines:
        if isinstance(line, bytes):
            line = _decode_bytes(line)
        if first:
            line = line.removeprefix("\ufeff")
            first = False
        yield line


def _decode_bytes(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _repair_mojibake(cells: list[str]) -> list[str]:
    # UTF-8 bytes read as latin-1/cp1252 turn "ä" into "Ã¤"; undo that when the header shows it.
    return [_reencode(cell) for cell in cells]


def _reencode(text: str) -> str:
    for wrong in ("cp1252", "latin-1"):
        try:
            return text.encode(wrong).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text


def _cell(cells: list[str], index: int) -> str:
    return cells[index] if index < len(cells) else ""


def _is_blank(cells: list[str]) -> bool:
    return not any(cell.strip() for cell in cells)


def iter_bnetza_locations(lines: Iterable[str | bytes]) -> Iterator[RegisterRow]:
    """Yield one `RegisterRow` per data row of a BNetzA register export, streaming.

    `lines` is an open file (text, ideally opened with newline="", or binary) or any iterable
    of lines. Raises ValueError when no register header is found in the first lines.
    """
    reader = csv.reader(_decoded(lines), delimiter=";")
    layout, mojibake = _read_header(reader)
    for start, cells in data_records(reader):
        if mojibake:
            cells = _repair_mojibake(cells)
        yield parse_row(cells, layout, start)


def data_records(reader) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, cells) of every non-blank record after the header."""
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValueError(f"line {start}: unreadable CSV ({exc})") from exc
        if not _is_blank(cells):
            yield start, cells


def _read_header(reader) -> tuple[Layout, bool]:
    for cells in reader:
        if reader.line_num > MAX_PREAMBLE_RECORDS:
            break
        mojibake = any("Ã" in cell for cell in cells)
        if mojibake:
            cells = _repair_mojibake(cells)
        if cells and _header_key(cells[0]) == "betreiber":
            return _build_layout(cells), mojibake
    raise ValueError("no BNetzA register header (a row starting with 'Betreiber') found")


# --------------------------------------------------------------------------- rows


class _Issues:
    def __init__(self) -> None:
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []

    def error(self, column: str, value: str, reason: str) -> None:
        self.errors.append((column, value, reason))

    def warn(self, column: str, value: str, reason: str) -> None:
        self.warnings.append((column, value, reason))

    def result(self, row: int, location: dict | None) -> RegisterRow:
        if self.errors:
            return RegisterRow(row, error=self.errors, warnings=self.warnings)
        return RegisterRow(row, location=location, warnings=self.warnings)

    def decimal_pair(self, lat_text: str, lng_text: str, lat_column: str,
                     lng_column: str) -> tuple[Decimal, Decimal] | None:
        """Both coordinates as numbers, or None with an error for each one that is not a number."""
        lat, lng = _decimal(lat_text), _decimal(lng_text)
        if lat is None:
            self.error(lat_column, lat_text, "not a number")
        if lng is None:
            self.error(lng_column, lng_text, "not a number")
        return None if lat is None or lng is None else (lat, lng)


def parse_row(cells: list[str], layout: Layout, row: int) -> RegisterRow:
    """Turn the cells of one data row into a `RegisterRow` (exposed for tests and reuse)."""
    issues = _Issues()
    location = _build_location(cells, layout, issues)
    return issues.result(row, location)


def _build_location(cells: list[str], layout: Layout, issues: _Issues) -> dict | None:
    operator = _clean(layout.cell(cells, "operator"))
    if not operator:
        issues.error(layout.title("operator"), "", "operator missing")
    street, postal_code, city = _address(cells, layout, issues)
    coordinates = _coordinates(cells, layout, issues)
    if issues.errors:
        return None
    location_id = _location_id(operator, _raw_address(cells, layout), coordinates)
    evses = _evses(cells, layout, location_id, issues)
    if issues.errors:
        return None
    _check_charge_point_count(cells, layout, len(evses), issues)
    return {
        "id": location_id,
        "name": _shorten(f"{operator}, {street}", 255),
        "address": _shorten(street, 45),
        "city": _shorten(city, 45),
        "postal_code": postal_code,
        "state": _state(layout.cell(cells, "state")),
        "country": COUNTRY,
        "coordinates": coordinates,
        "time_zone": TIME_ZONE,
        "publish": True,
        "parking_type": None,
        "operator": {"name": _shorten(operator, 100)},
        "evses": evses,
        "last_updated": _commissioned(cells, layout, issues),
    }


def _location_id(operator: str, address: str, coordinates: dict) -> str:
    # Hash the untruncated source values so the id survives changes to how fields are shortened.
    key = "|".join((operator, address, coordinates["latitude"], coordinates["longitude"]))
    return ID_PREFIX + hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


def _raw_address(cells: list[str], layout: Layout) -> str:
    if layout.name == LAYOUT_2017:
        return _clean(layout.cell(cells, "site"))
    return f"{_clean(layout.cell(cells, 'street'))}, {_clean(layout.cell(cells, 'postcode_town'))}"


# --------------------------------------------------------------------------- text fields


def _clean(text: str) -> str:
    # NFC first so truncation never separates a letter from its combining accent.
    return " ".join(unicodedata.normalize("NFC", text).split())


def _shorten(text: str, limit: int) -> str:
    """Fit `text` into `limit` characters without ending mid-word or inside brackets."""
    text = _clean(text)
    if len(text) <= limit:
        return text
    text = _clean(re.sub(r"\s*\([^)]*\)", "", text))  # a remark in brackets goes first
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space >= limit * 2 // 3 else text[:limit]
    if cut.count("(") > cut.count(")"):
        cut = cut[: cut.rfind("(")]
    return cut.rstrip(" ,;:-/(")


def _state(text: str) -> str | None:
    state = _clean(text)
    if not state:
        return None
    return _STATE_ABBREVIATIONS.get(state.casefold(), _shorten(state, 20))


def _address(cells: list[str], layout: Layout, issues: _Issues) -> tuple[str, str | None, str]:
    if layout.name == LAYOUT_2017:
        street_role = town_role = "site"
        street, postal_code, city = _split_site(layout.cell(cells, "site"), layout.title("site"), issues)
    else:
        street_role, town_role = "street", "postcode_town"
        street = _clean(layout.cell(cells, "street"))
        postal_code, city = _split_postcode_town(
            layout.cell(cells, "postcode_town"), layout.title("postcode_town"), issues
        )
    if not street:
        issues.error(layout.title(street_role), _clean(layout.cell(cells, street_role)), "street missing")
    if not city:
        issues.error(layout.title(town_role), _clean(layout.cell(cells, town_role)), "town missing")
    return street, postal_code, city


def _split_postcode_town(text: str, column: str, issues: _Issues) -> tuple[str | None, str]:
    value = _clean(text)
    match = _POSTCODE_TOWN.fullmatch(value)
    if not match:
        issues.warn(column, value, "no postcode")
        return None, value
    return _postcode(match[1], column, value, issues), _clean(match[2].strip(", "))


def _postcode(digits: str, column: str, value: str, issues: _Issues) -> str | None:
    if len(digits) == 5:
        return digits
    # Four or six digits are typos (a digit lost or doubled, not a dropped leading zero: the
    # 2019 export has "4474 Vilshofen" for 94474), so guessing would move the site.
    issues.warn(column, value, "postcode is not 5 digits")
    return None


def _split_site(text: str, column: str, issues: _Issues) -> tuple[str, str | None, str]:
    """Split a 2017 "Standort" such as "Heilwigstraße, 2, 20249, Hamburg" into its parts."""
    value = _clean(text)
    parts = [part.strip() for part in value.split(",") if part.strip()]
    at = _postcode_part(parts)
    if at is None:
        issues.warn(column, value, "no postcode")
        if len(parts) < 2:
            return _join_street(parts), None, ""
        return _join_street(parts[:-1]), None, parts[-1]
    match = _POSTCODE_TOWN.fullmatch(parts[at])
    town = ", ".join(([match[2]] if match[2] else []) + parts[at + 1 :])
    return _join_street(parts[:at]), _postcode(match[1], column, value, issues), _clean(town)


def _postcode_part(parts: list[str]) -> int | None:
    # The last part opening with a postcode; parts before it are the street, after it the town.
    for index in range(len(parts) - 1, 0, -1):
        match = _POSTCODE_TOWN.fullmatch(parts[index])
        if match and (match[2] or index < len(parts) - 1):
            return index
    return None


def _join_street(parts: list[str]) -> str:
    # "Straße, 2" and "Straße, Pforte WEST, 3" both carry the house number in its own part.
    numbers = [part for part in parts[1:] if _HOUSE_NUMBER.fullmatch(part)]
    others = [part for part in parts[1:] if not _HOUSE_NUMBER.fullmatch(part)]
    head = " ".join(parts[:1] + numbers)
    return ", ".join([head] + others) if head else ", ".join(others)


def _commissioned(cells: list[str], layout: Layout, issues: _Issues) -> str | None:
    if "commissioned" not in layout.columns:
        return None
    value = _clean(layout.cell(cells, "commissioned"))
    match = _DATE.fullmatch(value)
    try:
        day = date(int(match[3]), int(match[2]), int(match[1])) if match else None
    except ValueError:
        day = None
    if day is None:
        if value:
            issues.warn(layout.title("commissioned"), value, "not a date DD.MM.YYYY")
        return None
    return f"{day.isoformat()}T00:00:00Z"


# --------------------------------------------------------------------------- numbers


def _decimal(text: str) -> Decimal | None:
    """Read "13,75423", "13.75423" or "1.234,5"; None when it is not a finite number."""
    value = text.strip().replace(" ", "").replace("\xa0", "")
    if "," in value:
        value = value.replace(".", "").replace(",", ".")
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _coordinates(cells: list[str], layout: Layout, issues: _Issues) -> dict | None:
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
    return {"latitude": _six_decimals(placed[0]), "longitude": _six_decimals(placed[1])}


def _place_in_germany(lat: Decimal, lng: Decimal) -> tuple[Decimal, Decimal] | None:
    for candidate in ((lat, lng), (lng, lat)):
        if _inside(candidate[0], LAT_RANGE) and _inside(candidate[1], LNG_RANGE):
            return candidate
    return None


def _inside(value: Decimal, bounds: tuple[Decimal, Decimal]) -> bool:
    return bounds[0] <= value <= bounds[1]


def _six_decimals(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def _watts(kw: Decimal) -> int:
    return int((kw * 1000).to_integral_value(rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------- EVSEs


def _connector_key(text: str) -> str:
    return " ".join(text.replace("-", " ").split()).casefold()


def _evses(cells: list[str], layout: Layout, location_id: str, issues: _Issues) -> list[dict]:
    evses, unknown = [], []
    for columns in layout.charge_points:
        plugs = _clean(_cell(cells, columns.plugs))
        specs, unmapped = _connector_specs(plugs)
        unknown += [(layout.header[columns.plugs], token) for token in unmapped]
        power_column, power_text = layout.header[columns.power], _cell(cells, columns.power).strip()
        if specs:
            kw = _charge_point_power(power_text, power_column, specs, issues)
            evses.append(_evse(f"{location_id}-{columns.number}", specs, kw))
        elif not plugs and power_text:
            issues.warn(power_column, power_text, "power without connector type, skipped")
    _report_unknown_connectors(evses, unknown, layout, issues)
    return evses


def _connector_specs(cell: str) -> tuple[list[ConnectorSpec], list[str]]:
    """Map "DC Kupplung Combo, DC CHAdeMO" to specs; also return the tokens that did not map."""
    specs, unknown = [], []
    for token in (_clean(token) for token in cell.split(",")):
        if not token:
            continue  # a trailing comma, as in "DC Kupplung Combo, "
        spec = CONNECTOR_TYPES.get(_connector_key(token))
        if spec is None:
            unknown.append(token)
        else:
            specs.append(spec)
    return specs, unknown


def _report_unknown_connectors(evses: list[dict], unknown: list[tuple[str, str]], layout: Layout,
                               issues: _Issues) -> None:
    # An unknown plug next to known ones only loses that plug; without any known plug there is
    # nothing to charge at, so the row cannot become a location.
    if evses:
        for column, token in unknown:
            issues.warn(column, token, "unknown connector type, skipped")
        return
    columns = ", ".join(layout.header[cp.plugs] for cp in layout.charge_points)
    if unknown:
        issues.error(columns, ", ".join(token for _, token in unknown), "no known connector type")
    else:
        issues.error(columns, "", "no charge point")


def _evse(uid: str, specs: list[ConnectorSpec], kw: Decimal) -> dict:
    connectors = [_connector(index, spec, kw) for index, spec in enumerate(specs, start=1)]
    return {"uid": uid, "status": "UNKNOWN", "connectors": connectors}


def _charge_point_power(text: str, column: str, specs: list[ConnectorSpec], issues: _Issues) -> Decimal:
    kw = _decimal(text)
    ceiling = _ceiling(specs)
    if kw is None or kw <= 0:
        # The plug still exists; its rating is the best stand-in for a missing power value, and
        # for CCS (no rating) 50 kW, what nearly every DC charger of these exports delivers.
        issues.warn(column, text, "no usable power, assumed the connector's rating")
        return ceiling if ceiling is not None else Decimal(50)
    if ceiling is not None and kw > ceiling:
        issues.warn(column, text, f"more than the connectors' rating of {ceiling} kW, capped")
    return kw


def _ceiling(specs: list[ConnectorSpec]) -> Decimal | None:
    ratings = [spec.max_kw for spec in specs]
    return None if None in ratings else max(ratings)


def _connector(index: int, spec: ConnectorSpec, kw: Decimal) -> dict:
    if spec.max_kw is not None:
        kw = min(kw, spec.max_kw)
    watts = _watts(kw)
    power_type, volts, amps = _electrics(spec, watts)
    return {
        "id": str(index),
        "standard": spec.standard,
        "format": spec.format,
        "power_type": power_type,
        "max_voltage": volts,
        "max_amperage": amps,
        "max_electric_power": watts,
    }


def _electrics(spec: ConnectorSpec, watts: int) -> tuple[str, int, int]:
    """(power_type, max_voltage, max_amperage) derived from the power: see the module docstring."""
    if spec.current == "DC":
        volts = 920 if watts > 150_000 else 400
        return "DC", volts, max(1, round(watts / volts))
    phases = spec.phases or (3 if watts > 7_400 else 1)
    if phases == 3:
        return "AC_3_PHASE", 230, max(1, round(watts / (400 * math.sqrt(3))))
    return "AC_1_PHASE", 230, max(1, round(watts / 230))


def _check_charge_point_count(cells: list[str], layout: Layout, found: int, issues: _Issues) -> None:
    if "charge_point_count" not in layout.columns:
        return
    text = layout.cell(cells, "charge_point_count").strip()
    if text.isdigit() and int(text) != found:
        issues.warn(layout.title("charge_point_count"), text, f"but {found} charge point(s) listed")

"""The evhub CSV layout: one row per connector, its EVSE and location repeated on every row.

A header row is required; columns come in any order, their names in any case; unknown columns are
ignored. The delimiter is `,` or `;` (whichever the header uses); with `;`, numeric cells may use a
decimal comma (`52,5`). Lists are `|`-separated (`CAFE|WIFI`). An empty cell is an absent value.

Location (the same on every row of the location; a cell left empty on a later row takes the value
given above, a different value is an error):

    location_id*          CiString(36), the location's OCPI id within the CPO
    name                  up to 255 characters
    address*              street and number
    city*                 up to 45 characters
    postal_code           up to 10 characters
    province              OCPI `state`, up to 20 characters
    region                up to 64 characters
    country*              ISO 3166-1 alpha-2 or alpha-3 (DE or DEU)
    latitude*, longitude* decimal degrees, 5 to 7 decimals (52.520008, 13.404954)
    time_zone             IANA zone (Europe/Berlin); may be left empty when the country keeps one
                          clock (DE, FR, GB, NL, ...), required otherwise (ES, PT, US, ...)
    parking_type          OCPI ParkingType (PARKING_LOT, ON_STREET, ...)
    facilities            OCPI Facility codes, `|`-separated (CAFE|WIFI)
    parking_restrictions  OCPI ParkingRestriction codes, `|`-separated (EV_ONLY|CUSTOMERS)

EVSE (the same on every row of the EVSE, with the same rule):

    evse_uid*             CiString(36), unique within the location
    evse_id               eMI3 EVSE id (DE*ABC*E0001)
    evse_status*          OCPI Status (AVAILABLE, OUTOFORDER, PLANNED, ...)
    capabilities          OCPI Capability codes, `|`-separated
    payment_types         portal payment types, `|`-separated
    serial_number, meter_type   up to 64 characters
    kwh                   the meter reading, a decimal number

Connector (one per row):

    connector_id*         CiString(36), unique within the EVSE (1, 2, ...)
    standard*             OCPI ConnectorType (IEC_62196_T2, CHADEMO, ...) or a contract code (TYPE_2)
    format*               SOCKET or CABLE
    power_type*           AC_1_PHASE, AC_3_PHASE, DC, ...
    max_voltage*          volts, an integer
    max_amperage*         amperes, an integer
    max_electric_power    watts, an integer
    tariff_ids            OCPI tariff ids, `|`-separated
    last_updated          RFC 3339 (2024-05-01T10:00:00Z); optional. An EVSE and a location are as
                          new as their newest row. Without it, what changed is stamped with the
                          time of the import, and only what changed.

(* required.) Rows are grouped by location_id, then evse_uid: the rows of one location must be
consecutive (their EVSEs' rows may come in any order within it). A location named again further
down the file is an error, never a silent merge. Importing a location that exists updates it:
the fields of these columns are replaced, its EVSEs not named in the file are kept, an EVSE named
gets exactly the connectors of its rows. Text cells that a spreadsheet would run as a formula
(`=`, `+`, `@`, or `-` followed by no digit) are stored with a leading `'`.
"""

from __future__ import annotations

import csv
import itertools
import operator
import re
from datetime import datetime
from typing import Iterator

from locations.csv_import import reading
from locations.csv_import.parsed import Parsed
from locations.csv_import.reading import FileRejected
from locations.csv_import.report import RowError
from locations.timezones import country_time_zone, country_time_zones
from locations.models import Cpo
from locations.validation import InvalidPayload, clean_location, timestamp

# column -> OCPI field, per level.
LOCATION_COLUMNS = {
    "location_id": "id", "name": "name", "address": "address", "city": "city", "postal_code": "postal_code",
    "province": "province", "region": "region", "country": "country", "latitude": "latitude",
    "longitude": "longitude", "time_zone": "time_zone", "parking_type": "parking_type",
    "facilities": "facilities", "parking_restrictions": "parking_restrictions",
}
EVSE_COLUMNS = {
    "evse_uid": "uid", "evse_id": "evse_id", "evse_status": "status", "capabilities": "capabilities",
    "payment_types": "payment_types", "serial_number": "serial_number", "meter_type": "meter_type", "kwh": "kwh",
}
CONNECTOR_COLUMNS = {
    "connector_id": "id", "standard": "standard", "format": "format", "power_type": "power_type",
    "max_voltage": "max_voltage", "max_amperage": "max_amperage", "max_electric_power": "max_electric_power",
    "tariff_ids": "tariff_ids", "last_updated": "last_updated",
}
COLUMNS = [*LOCATION_COLUMNS, *EVSE_COLUMNS, *CONNECTOR_COLUMNS]
REQUIRED = ["location_id", "address", "city", "country", "latitude", "longitude", "evse_uid", "evse_status",
            "connector_id", "standard", "format", "power_type", "max_voltage", "max_amperage"]
LISTS = frozenset({"facilities", "parking_restrictions", "capabilities", "payment_types", "tariff_ids"})
NUMBERS = frozenset({"latitude", "longitude", "kwh", "max_voltage", "max_amperage", "max_electric_power"})
# Free text and ids: where a formula could hide. Codes and numbers are refused by validation anyway.
TEXTS = frozenset({"location_id", "name", "address", "city", "postal_code", "province", "region", "evse_uid",
                   "evse_id", "serial_number", "meter_type", "connector_id", "tariff_ids"})

_TEXT, _NUMBER, _OTHER = range(3)
_FORMULA_STARTS = frozenset(reading.FORMULA_STARTS)
_PATH = re.compile(r"evses\[(\d+)\](?:\.connectors\[(\d+)\])?(?:\.(.+))?")
_OCPI_TO_LOCATION = {field: column for column, field in LOCATION_COLUMNS.items()} | {
    "state": "province", "parking_types": "parking_type", "last_updated": "last_updated"}
_OCPI_TO_EVSE = {field: column for column, field in EVSE_COLUMNS.items()} | {
    "last_updated": "last_updated", "connectors": "connector_id"}
_OCPI_TO_CONNECTOR = {field: column for column, field in CONNECTOR_COLUMNS.items()}


def _level(columns: dict[str, str], skip: tuple[str, ...] = ()) -> tuple[tuple[str, str, bool], ...]:
    # Precomputed: building the OCPI dicts runs for every row of the file.
    return tuple((column, field, column in LISTS) for column, field in columns.items() if column not in skip)


_LOCATION_FIELDS = _level(LOCATION_COLUMNS, skip=("location_id", "latitude", "longitude"))
_EVSE_FIELDS = _level(EVSE_COLUMNS)
_CONNECTOR_FIELDS = _level(CONNECTOR_COLUMNS)


class EvhubSource:
    """Reads the rows, groups them into locations, and yields each location once its rows end."""

    stamped = False

    def __init__(self, lines: Iterator[str], *, cpo: Cpo):
        self.lines, self.cpo, self.rows = lines, cpo, 0
        self.max_rows, self.max_cell = reading.max_rows(), reading.max_cell_chars()
        self.first_rows: dict[str, int] = {}  # location id -> its first row, to catch one split up

    def __iter__(self) -> Iterator[Parsed | RowError]:
        reader, plan, width, decimal_comma = self._open()
        current: _Location | None = None
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise FileRejected(f"unreadable CSV: {exc}", row=start) from None
            if not "".join(cells).strip():
                continue
            self.rows += 1
            if self.rows > self.max_rows:
                raise FileRejected(f"the file has more than {self.max_rows:,} rows (EVHUB_CSV_MAX_ROWS); split it",
                                   row=start)
            values, problems = self._values(start, cells, plan, width, decimal_comma)
            location_id = values.get("location_id")
            if not location_id:
                yield RowError(start, "location_id", "", "is required: every row names its location")
                continue
            if current is None or location_id != current.id:
                if current is not None:
                    yield from current.finish(self.cpo)
                current = self._begin(location_id, start)
            current.add(start, values, problems)
        if current is not None:
            yield from current.finish(self.cpo)

    def _open(self):
        try:
            header_line = next(self.lines)
        except StopIteration:
            raise FileRejected("the file is empty: a header row is required") from None
        delimiter = reading.sniff_delimiter(header_line)
        reader = csv.reader(itertools.chain([header_line], self.lines), delimiter=delimiter)
        try:
            header = [name.strip().lower() for name in next(reader)]
        except csv.Error as exc:
            raise FileRejected(f"unreadable CSV header: {exc}", row=1) from None
        missing = [column for column in REQUIRED if column not in header]
        if missing:
            raise FileRejected(f"missing required column(s): {', '.join(missing)}", row=1,
                               column=", ".join(missing))
        twice = sorted({name for name in header if name in COLUMNS and header.count(name) > 1})
        if twice:
            raise FileRejected(f"column(s) given twice: {', '.join(twice)}", row=1, column=", ".join(twice))
        indices = [index for index, name in enumerate(header) if name in COLUMNS]
        named = tuple((header[index], _TEXT if header[index] in TEXTS else _NUMBER if header[index] in NUMBERS
                       else _OTHER) for index in indices)
        # The known columns' cells of a row in one C call (itemgetter of one index returns no tuple:
        # REQUIRED makes sure there are more).
        pick = operator.itemgetter(*indices) if len(indices) > 1 else lambda cells: (cells[indices[0]],)
        plan = (indices, pick, named, max(indices) + 1)
        return reader, plan, len(header), delimiter == ";"

    def _values(self, row: int, cells: list[str], plan, width: int,
                decimal_comma: bool) -> tuple[dict[str, str], list[RowError]]:
        # Runs for every row: locals, and the empty cell ruled out before anything else.
        values, problems = {}, []
        max_cell, count = self.max_cell, len(cells)
        indices, pick, named, needed = plan
        # A short row's missing cells are empty ones.
        picked = pick(cells) if count >= needed else [cells[index] if index < count else "" for index in indices]
        for (column, kind), cell in zip(named, picked):
            if not cell:
                continue
            cell = cell.strip()
            if not cell:
                continue
            if len(cell) > max_cell:
                problems.append(RowError(row, column, cell[:40] + "...",
                                         f"is {len(cell):,} characters long; the limit is {max_cell:,}"))
                continue
            if kind == _TEXT:
                if cell[0] in _FORMULA_STARTS:
                    cell = reading.neutralised(cell)
            elif kind == _NUMBER and decimal_comma:
                cell = reading.decimal_point(cell)
            values[column] = cell
        if count > width and any(cell.strip() for cell in cells[width:]):
            problems.append(RowError(row, "", "", f"has {count} cells; the header has {width} columns"))
        return values, problems

    def _begin(self, location_id: str, row: int) -> "_Location":
        location = _Location(location_id, row)
        first = self.first_rows.setdefault(location_id, row)
        if first != row:
            location.errors.append(RowError(
                row, "location_id", location_id,
                f"location {location_id!r} already had rows from row {first}: keep the rows of a location together"))
        return location


class _Group:
    """Values of one level (location or EVSE) gathered from its rows: the first non-empty one wins."""

    def __init__(self, row: int):
        self.row = row
        self.values: dict[str, str] = {}
        self.sources: dict[str, int] = {}
        self.stamp: datetime | None = None

    def gather(self, row: int, values: dict[str, str], columns: dict, owner: str) -> list[RowError]:
        errors = []
        gathered = self.values
        for column in columns:
            value = values.get(column)
            if value is None:
                continue
            known = gathered.get(column)
            if known == value:
                continue
            if known is None:
                gathered[column], self.sources[column] = value, row
            else:
                errors.append(RowError(row, column, value,
                                       f"differs from {known!r} given for this {owner} in row {self.sources[column]}"))
        return errors

    def restamp(self, stamp: datetime | None) -> None:
        if stamp is not None and (self.stamp is None or stamp > self.stamp):
            self.stamp = stamp

    def cell(self, column: str) -> tuple[int, str]:
        return self.sources.get(column, self.row), self.values.get(column, "")


class _Evse(_Group):
    def __init__(self, row: int):
        super().__init__(row)
        self.connectors: list[tuple[int, dict[str, str]]] = []


class _Location(_Group):
    def __init__(self, location_id: str, row: int):
        super().__init__(row)
        self.id = location_id
        self.evses: dict[str, _Evse] = {}
        self.errors: list[RowError] = []

    def add(self, row: int, values: dict[str, str], problems: list[RowError]) -> None:
        self.errors += problems
        self.errors += self.gather(row, values, LOCATION_COLUMNS, "location")
        uid = values.get("evse_uid")
        if not uid:
            self.errors.append(RowError(row, "evse_uid", "", "is required: every row names its EVSE"))
            return
        evse = self.evses.get(uid)
        if evse is None:
            evse = self.evses[uid] = _Evse(row)
        self.errors += evse.gather(row, values, EVSE_COLUMNS, "EVSE")
        stamp = self._stamp(row, values)
        evse.restamp(stamp)
        self.restamp(stamp)
        evse.connectors.append((row, values))

    def _stamp(self, row: int, values: dict[str, str]) -> datetime | None:
        raw = values.get("last_updated")
        if raw is None:
            return None
        try:
            return timestamp(raw)
        except ValueError as exc:
            self.errors.append(RowError(row, "last_updated", raw, str(exc)))
            return None

    def finish(self, cpo: Cpo) -> Iterator[Parsed | RowError]:
        data = self.ocpi(cpo)
        if not self.errors:
            yield Parsed(data, self.row, self.explain)
            return
        # The location is refused; validating it anyway reports its other problems in the same run.
        reported = {(error.row, error.column) for error in self.errors}
        try:
            clean_location(data, stamped=False)
        except InvalidPayload as exc:
            for path, reason in exc.errors.items():
                error = self.explain(path, reason)
                if (error.row, error.column) not in reported:
                    self.errors.append(error)
        yield from sorted(self.errors, key=lambda error: error.row)

    # --- Building the OCPI object -----------------------------------------------------------------

    def ocpi(self, cpo: Cpo) -> dict:
        values = self.values
        data = {"country_code": cpo.country_code, "party_id": cpo.party_id, "id": self.id, "publish": True}
        data.update(_fields(values, _LOCATION_FIELDS))
        if "latitude" in values or "longitude" in values:
            data["coordinates"] = {"latitude": values.get("latitude"), "longitude": values.get("longitude")}
        if "time_zone" not in data and "country" in values:
            zone = country_time_zone(values["country"])
            if zone:
                data["time_zone"] = zone
        data["evses"] = [evse_ocpi(evse) for evse in self.evses.values()]
        data["last_updated"] = _iso(self.stamp)
        return data

    # --- From a validation error back to the file -------------------------------------------------

    def explain(self, path: str, reason: str) -> RowError:
        match = _PATH.fullmatch(path)
        if match is None:
            return self._explain_location(path, reason)
        evse = list(self.evses.values())[int(match[1])]
        name = match[3] or ""
        if match[2] is None:
            column = _OCPI_TO_EVSE.get(name, name)
            row, value = evse.cell(column)
            return RowError(row, column, value, reason)
        row, values = evse.connectors[int(match[2])]
        column = _OCPI_TO_CONNECTOR.get(name, name)
        return RowError(row, column, values.get(column, ""), reason)

    def _explain_location(self, path: str, reason: str) -> RowError:
        if path == "coordinates":
            return self._explain_coordinates(reason)
        column = _OCPI_TO_LOCATION.get(path, path)
        row, value = self.cell(column)
        if column == "time_zone" and not value and self.values.get("country"):
            zones = country_time_zones(self.values["country"])
            if len(zones) > 1:
                reason += f": {self.values['country']} has zones with different clocks ({', '.join(zones[:4])}, ...)"
        return RowError(row, column, value, reason)

    def _explain_coordinates(self, reason: str) -> RowError:
        for column in ("latitude", "longitude"):
            if reason.startswith(f"{column} ") and not reason.startswith("latitude and"):
                row, value = self.cell(column)
                return RowError(row, column, value, reason)
        row, latitude = self.cell("latitude")
        return RowError(row, "latitude, longitude", f"{latitude}, {self.values.get('longitude', '')}", reason)


def evse_ocpi(evse: _Evse) -> dict:
    data = _fields(evse.values, _EVSE_FIELDS)
    data["connectors"] = [_fields(values, _CONNECTOR_FIELDS) for _, values in evse.connectors]
    data["last_updated"] = _iso(evse.stamp)
    return data


def _fields(values: dict[str, str], level: tuple[tuple[str, str, bool], ...]) -> dict:
    data = {}
    for column, field, is_list in level:
        value = values.get(column)
        if value is not None:
            data[field] = [item for item in map(str.strip, value.split("|")) if item] if is_list else value
    return data


def _iso(stamp: datetime | None) -> str | None:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp else None

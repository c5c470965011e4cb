"""National charge-point registers (BNetzA, UK NCR, US AFDC) through the same import.

A register is read as its publisher publishes it: CSV (any of the encodings `reading` knows) or an
Excel workbook (.xlsx, known by its content, not its name). The streaming readers of
`locations.registers` turn each data row into an OCPI Location or into the reasons it could not be
built; here each location is completed for the importing CPO and stamped, so that importing the same
file again changes nothing:

* `last_updated` is the row's own date where the register has one (BNetzA since 2019: the
  commissioning date; UK NCR: its update dates), else the export date of the file's preamble
  ("Stand: 19.07.2019", since 2023 "Letzte Aktualisierung vom: 01.09.2026"; BNetzA), else
  `UNDATED`, a fixed early date: a register is a snapshot, and whatever the CPO or an OCPI peer
  sends later about the same location is newer and wins.
* An id met again in the same file gets a suffix: `-2` on its second occurrence, `-3` on its third
  (and its EVSE uids with it). BNetzA's ids before 2023 hash operator, address and coordinates,
  and its 2019 export has ~1,400 rows sharing an id with another row: distinct stations (one row
  per charging station) that would otherwise be merged into one location. The suffix is stable as
  long as the file's row order is.

`detect_format` names the format of a file from its header (our own `evhub` layout or a register),
for callers that were not told it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator, TextIO

from locations.csv_import import reading
from locations.csv_import.evhub import COLUMNS as EVHUB_COLUMNS
from locations.csv_import.parsed import Parsed
from locations.csv_import.reading import FileRejected
from locations.csv_import.report import RowError
from locations.models import Cpo
from locations.registers import afdc, bnetza, register_location, uk_ncr
from locations.registers.common import RegisterRow, csv_records
from locations.registers.workbook import sheet_records

PreambleHook = Callable[[list[str]], None]


@dataclass(frozen=True)
class Register:
    """A register's readers, with one signature: (lines or file, preamble hook[, text limit])."""

    read_csv: Callable[[Iterable[str], PreambleHook | None], Iterator[RegisterRow]]
    read_workbook: Callable[[BinaryIO, PreambleHook | None, int], Iterator[RegisterRow]]
    is_header: Callable[[list[str]], bool]


READERS: dict[str, Register] = {
    "bnetza": Register(
        lambda lines, hook: bnetza.iter_bnetza_locations(lines, on_preamble=hook),
        lambda file, hook, limit: bnetza.iter_bnetza_workbook(file, on_preamble=hook, max_text_bytes=limit),
        bnetza.is_header,
    ),
    "uk-ncr": Register(
        lambda lines, hook: uk_ncr.iter_uk_ncr_locations(lines),
        lambda file, hook, limit: uk_ncr.iter_uk_ncr_workbook(file, max_text_bytes=limit),
        uk_ncr.is_header,
    ),
    "afdc": Register(
        lambda lines, hook: afdc.iter_afdc_locations(lines),
        lambda file, hook, limit: afdc.iter_afdc_workbook(file, max_text_bytes=limit),
        afdc.is_header,
    ),
}
UNDATED = "2000-01-01T00:00:00Z"
# How far down a file its header may be: the BNetzA's preamble has had up to 10 rows.
HEADER_WITHIN_ROWS = bnetza.MAX_PREAMBLE_RECORDS
# Our own layout is recognised by a few of its column names (a file missing a required one is still
# ours, and gets the importer's precise report of what is missing).
EVHUB_MIN_COLUMNS = 3

# "Stand: 19.07.2019", "Letzte Aktualisierung vom: 01.09.2026"; in a workbook the date may be a date cell.
_EXPORT_DATE = re.compile(
    r"(?:Stand|Aktualisierung vom)\s*:?\s*(?:(\d{1,2})\.(\d{1,2})\.(\d{4})|(\d{4})-(\d{2})-(\d{2}))"
)
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class RegisterSource:
    stamped = True

    def __init__(self, file: BinaryIO | TextIO, *, cpo: Cpo, format: str):
        self.file, self.cpo, self.format, self.rows = file, cpo, format, 0
        self.max_rows = reading.max_rows()
        self.stamp = UNDATED
        self.occurrences: Counter[str] = Counter()

    def __iter__(self) -> Iterator[Parsed | RowError]:
        rows = self._register_rows()
        while True:
            try:
                register_row = next(rows)
            except StopIteration:
                return
            except ValueError as exc:  # the reader's verdict on the header or an unreadable record
                raise FileRejected(f"not a {self.format} register export: {exc}") from None
            self.rows += 1
            if self.rows > self.max_rows:
                raise FileRejected(f"the file has more than {self.max_rows:,} rows (EVHUB_CSV_MAX_ROWS); split it",
                                   row=register_row.row)
            if not register_row.ok:
                for column, value, reason in register_row.error:
                    yield RowError(register_row.row, column, value, reason)
                continue
            data = register_location(self._unique(register_row.location), country_code=self.cpo.country_code,
                                     party_id=self.cpo.party_id, last_updated=self.stamp)
            yield Parsed(data, register_row.row, _explainer(register_row.row, data))

    def _register_rows(self) -> Iterator[RegisterRow]:
        register = READERS[self.format]
        hook = self._watch_preamble if self.format == "bnetza" else None
        if reading.is_workbook(self.file):
            reading.check_workbook_size(self.file)
            return register.read_workbook(self.file, hook, reading.max_workbook_text_bytes())
        return register.read_csv(reading.text_lines(self.file), hook)

    def _watch_preamble(self, cells: list[str]) -> None:
        """Note the export date the preamble gives before the header."""
        if match := _EXPORT_DATE.search(" ".join(cells)):
            day, month, year = match.groups()[:3] if match[1] else reversed(match.groups()[3:])
            self.stamp = f"{int(year):04d}-{int(month):02d}-{int(day):02d}T00:00:00Z"

    def _unique(self, location: dict) -> dict:
        original = location["id"]
        self.occurrences[original] += 1
        count = self.occurrences[original]
        if count == 1:
            return location
        unique = f"{original}-{count}"
        while unique in self.occurrences:  # never the id of another row of the file
            count += 1
            unique = f"{original}-{count}"
        self.occurrences[unique] += 1
        evses = [{**evse, "uid": unique + evse["uid"][len(original):]} if evse["uid"].startswith(original + "-")
                 else evse for evse in location.get("evses", [])]
        return {**location, "id": unique, "evses": evses}


def _explainer(row: int, data: dict) -> Callable[[str, str], RowError]:
    # A register's columns do not map one to one onto OCPI fields: name the field, and its value.
    def explain(path: str, reason: str) -> RowError:
        return RowError(row, path, _value_at(data, path), reason)

    return explain


def _value_at(data, path: str) -> str:
    for name, index in _PATH_PART.findall(path):
        try:
            data = data[int(index)] if index else data.get(name)
        except (IndexError, KeyError, TypeError, AttributeError):
            return ""
    if isinstance(data, dict):  # coordinates: "51, 6"
        return ", ".join(str(value) for value in data.values() if not isinstance(value, (dict, list)))
    return "" if data is None or isinstance(data, list) else str(data)


# --------------------------------------------------------------------------- format detection


def detect_format(file: BinaryIO | TextIO) -> str:
    """The format of an import file, from its header: "evhub" (ours) or a register ("bnetza",
    "uk-ncr", "afdc"). CSV or Excel workbook alike; the file is left where it was.

    Raises FileRejected when no header of the first `HEADER_WITHIN_ROWS` rows is one of them.
    """
    workbook = reading.is_workbook(file)
    if workbook:
        reading.check_workbook_size(file)
        records = _first_sheet_rows(file)
    else:
        records = _first_csv_records(reading.sample_lines(file))
    for format, register in READERS.items():
        if any(register.is_header(cells) for cells in records):
            return format
    if any(_is_evhub_header(cells) for cells in records):
        if workbook:
            raise FileRejected("our own layout is read from CSV: save the sheet as \"CSV UTF-8\"")
        return "evhub"
    raise FileRejected(f"no known header in the first {HEADER_WITHIN_ROWS} rows: neither our own layout "
                       f"({', '.join(EVHUB_COLUMNS[:4])}, ...) nor a register (BNetzA, UK NCR, AFDC)")


def _first_sheet_rows(file: BinaryIO) -> list[list[str]]:
    position = file.tell()
    rows = sheet_records(file, max_text_bytes=reading.max_workbook_text_bytes())
    try:
        return [cells for _, cells in _first(rows)]
    except ValueError as exc:
        raise FileRejected(str(exc)) from None
    finally:
        rows.close()
        file.seek(position)


def _first_csv_records(lines: list[str]) -> list[list[str]]:
    # Registers use "," or ";" and so does our layout; each record is read both ways.
    found = []
    for delimiter in (";", ","):
        try:
            found += [cells for _, cells in _first(csv_records(lines, delimiter=delimiter))]
        except ValueError:
            continue
    return found


def _first(records: Iterator) -> Iterator:
    for record in records:
        if record[0] > HEADER_WITHIN_ROWS:
            return
        yield record


def _is_evhub_header(cells: list[str]) -> bool:
    names = {cell.strip().lower() for cell in cells}
    return len(names & set(EVHUB_COLUMNS)) >= EVHUB_MIN_COLUMNS

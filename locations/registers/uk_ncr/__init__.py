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
the row lacks are derived as in `common.electrics`.

Pure stdlib but for openpyxl, which reads the workbooks (`locations.registers.workbook`).
"""

from __future__ import annotations

import csv
import re
from typing import BinaryIO, Iterable, Iterator

from locations.registers.common import Record, RegisterRow, data_records, decoded_lines, fit_width, is_blank
from locations.registers.uk_ncr.evses import CONNECTOR_TYPES, _type_key  # noqa: F401 (tests normalise with it)
from locations.registers.uk_ncr.layout import FORMAT, build_layout, detect_uk_ncr
from locations.registers.uk_ncr.rows import parse_row
from locations.registers.workbook import sheet_records

__all__ = [
    "CONNECTOR_TYPES",
    "DELIMITER",
    "FORMAT",
    "detect_uk_ncr",
    "is_header",
    "iter_uk_ncr_locations",
    "iter_uk_ncr_records",
    "iter_uk_ncr_workbook",
    "parse_row",
]

DELIMITER = ","
_BARE_CR = re.compile(r"(?<=\r)(?!\n)")


# --------------------------------------------------------------------------- reading


class _LineCounter:
    """Counts the LF line ends handed to the CSV reader: physical lines as an editor shows them."""

    def __init__(self) -> None:
        self.lines = 0

    def feed(self, lines: Iterable[str | bytes]) -> Iterator[str]:
        for line in decoded_lines(lines):
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
    layout = build_layout(header)
    for start, cells, broken in _records(reader, counter, layout.width):
        yield parse_row(cells, layout, start, broken_column=broken)


def iter_uk_ncr_workbook(file: BinaryIO, *, max_text_bytes: int | None = None) -> Iterator[RegisterRow]:
    """The same for the export saved as an Excel workbook (.xlsx): its first sheet, streamed. A
    sheet's cells cannot break across rows, so there is nothing to rejoin; a row is only fitted to
    the header's width (a spreadsheet leaves trailing empty cells out)."""
    return iter_uk_ncr_records(sheet_records(file, max_text_bytes=max_text_bytes))


def iter_uk_ncr_records(records: Iterable[Record]) -> Iterator[RegisterRow]:
    """Rows from (row number, cells) records whose cells are whole, the first not blank the header."""
    records = data_records(records)
    try:
        _, header = next(records)
    except StopIteration:
        raise ValueError("not a UK National Chargepoint Registry export: the file is empty") from None
    layout = build_layout(header)
    for start, cells in records:
        yield parse_row(fit_width(cells, layout.width), layout, start)


def is_header(cells: Iterable[str]) -> bool:
    try:
        detect_uk_ncr(cells)
    except ValueError:
        return False
    return True


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
        if is_blank(cells):
            continue
        if len(cells) < width:
            pending = (start, cells, len(cells) - 1)
            continue
        yield start, cells, None
    if pending is not None:
        yield pending[0], pending[1], None

"""Streaming parser for the US DOE/NREL Alternative Fuels Data Center (AFDC) electric station list.

The file at hand is a five-column extract of the AFDC station export: `Station Name, ZIP, Latitude,
Longitude, ID`, comma-separated, one station per line. Columns are found by their header name, so
the full AFDC export (which also has Street Address, City and State) is read too: those three are
used when present. Every data row yields exactly one `RegisterRow` (see
`locations.registers.bnetza`): an OCPI 2.2.1 Location dict or the reasons it could not be built.

What the extract lacks, and what stands in for it:

* address (OCPI: required): Street Address when the file has it; otherwise the station name,
  shortened to OCPI's 45 characters at a word boundary. It is a name, not a street: the best the
  file offers and what a driver will find on the spot.
* city (OCPI: required): City when present; otherwise the placeholder "ZIP <zip>", which says
  plainly that no city is known while still placing the station. A ZIP-to-city table would give
  the real town; none is bundled, to keep this module pure stdlib. A row with neither a city nor a
  usable ZIP is an error.
* postal_code: the ZIP with the leading zeros the export lost restored (it stored ZIPs as numbers:
  "5403" is 05403 in Vermont, "987" 00987 in Puerto Rico), with a warning; a no-break space before
  some ZIPs is dropped. A Canadian postcode ("L2G3X") marks a station outside the US: an error.
* state: State when present; otherwise the USPS state of the ZIP's first three digits
  (`_ZIP3_STATES`, the fixed USPS prefix allocation), as its two-letter code.
* time_zone: from the state, never from the longitude. States inside one zone map to it. For the
  sixteen states and territories split between zones the zone of most of their people is taken
  (Texas America/Chicago, Florida America/New_York, ...) with a warning naming it, so an importer
  can count or refine them; a ZIP that names no state (military APO/FPO, unallocated) falls back
  to America/New_York, also with a warning.
* EVSEs: the extract has no connector data. Each station gets one EVSE with one connector, the
  typical US public Level 2 charger: IEC_62196_T1 (SAE J1772), CABLE, AC_1_PHASE, 208 V, 32 A,
  6,656 W. That is an assumption, not data (DC fast chargers and Tesla sites are among them).
* last_updated: the file has no dates; left None for the importer to fill.
* id: "US-AFDC-<ID>", the AFDC's own station id, stable between exports. Rows repeating the
  coordinates of another (~1,500, e.g. several stations in one garage) are distinct stations with
  distinct ids, and stay so.

Coordinates must lie in the US or its territories (coarse boxes, `US_BOXES`); a 0.0 latitude or
longitude is a missing value and an error (the export has one: "Rosegate Apartments").

Pure stdlib but for openpyxl, which reads the workbooks (`locations.registers.workbook`).
"""

from __future__ import annotations

from typing import BinaryIO, Iterable, Iterator

from locations.registers.afdc.layout import FORMAT, Layout, detect_afdc, is_header
from locations.registers.afdc.rows import ASSUMED_CONNECTOR, parse_row
from locations.registers.common import Record, RegisterRow, csv_records, data_records, decoded_lines
from locations.registers.workbook import sheet_records

__all__ = [
    "ASSUMED_CONNECTOR",
    "DELIMITER",
    "FORMAT",
    "detect_afdc",
    "is_header",
    "iter_afdc_locations",
    "iter_afdc_records",
    "iter_afdc_workbook",
    "parse_row",
]

DELIMITER = ","


def iter_afdc_locations(lines: Iterable[str | bytes]) -> Iterator[RegisterRow]:
    """Yield one `RegisterRow` per station of an AFDC export, streaming.

    `lines` is an open file (text opened with newline="", or binary) or any iterable of lines.
    Raises ValueError when the first line is not an AFDC header.
    """
    return iter_afdc_records(csv_records(decoded_lines(lines), delimiter=DELIMITER))


def iter_afdc_workbook(file: BinaryIO, *, max_text_bytes: int | None = None) -> Iterator[RegisterRow]:
    """The same for the list saved as an Excel workbook (.xlsx): its first sheet, streamed."""
    return iter_afdc_records(sheet_records(file, max_text_bytes=max_text_bytes))


def iter_afdc_records(records: Iterable[Record]) -> Iterator[RegisterRow]:
    """Rows from (row number, cells) records, the first of them not blank being the header."""
    records = data_records(records)
    try:
        _, header = next(records)
    except StopIteration:
        raise ValueError("not an AFDC station export: the file is empty") from None
    except ValueError as exc:
        raise ValueError(f"not an AFDC station export: {exc}") from exc
    detect_afdc(header)
    layout = Layout(header)
    for start, cells in records:
        yield parse_row(cells, layout, start)

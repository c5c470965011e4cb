"""Streaming reader of the Bundesnetzagentur charge-point register ("Ladesäulenregister").

The register is published every month as CSV (`;`, decimal commas, CRLF; Windows-1252 until about
2022, UTF-8 with a BOM since) and as an Excel workbook (.xlsx). Both open with a preamble: the title,
notes, the date of the export ("Stand: 19.07.2019", since 2023 "Letzte Aktualisierung vom:
01.09.2026"), a row grouping the columns ("Allgemeine Informationen", "1. Ladepunkt", ...), then the
row of column titles. What the exports have held over the years:

* 2017: Betreiber; Standort ("street, postcode town" in one cell); Längengrad [DG]; Breitengrad [DG];
  ...; per charge point Steckertypen<n>; P<n> [kW]
* 2019: Betreiber; Adresse; Postleitzahl Ort; Bundesland; ...; Inbetriebnahmedatum; ...; and
  Public Key<n> per charge point
* 2021: Straße; Hausnummer; Adresszusatz; Postleitzahl; Ort; Kreis/kreisfreie Stadt; Breitengrad;
  Längengrad (no "[DG]" any more) ...
* since 2023: Ladeeinrichtungs-ID; Betreiber; Anzeigename (Karte); Status; ...; Standortbezeichnung;
  Informationen zum Parkraum; Bezahlsysteme; Öffnungszeiten (with Wochentage and Tageszeiten); and
  per charge point Steckertypen<n>; Nennleistung Stecker<n>; EVSE-ID<n>; Public Key<n>, up to six

No list of these layouts is kept: the header is the first row (of the first 20) that names
"Betreiber", "Breitengrad" and "Längengrad"; every column is then found by its name (`layout`), the
address in whichever of its three forms the export uses, and columns of no known name are ignored.

Every non-blank data row (one charging facility, "Ladeeinrichtung") yields exactly one `RegisterRow`
with an OCPI 2.2.1 Location or the reasons it could not be built:

* id: "DE-BNA-" + the Ladeeinrichtungs-ID where the export has it; otherwise 12 hex digits of a hash
  of operator, address and coordinates, as the register's rows had no id of their own.
* one EVSE per charge point, one connector per plug (`evses`); status, opening hours, payment and
  parking where the export says them (`details`); the commissioning date as `last_updated`.

Pure stdlib but for openpyxl, which reads the workbooks (`locations.registers.workbook`).
"""

from __future__ import annotations

from typing import BinaryIO, Callable, Iterable, Iterator

from locations.registers.bnetza.evses import CONNECTOR_TYPES, EVSE_ID
from locations.registers.bnetza.layout import (
    LAYOUT_2017,
    LAYOUT_2019,
    LAYOUT_2021,
    Layout,
    build_layout,
    detect_layout,
    is_header,
)
from locations.registers.bnetza.rows import parse_row
from locations.registers.common import ConnectorSpec, Record, RegisterRow, csv_records, decoded_lines, is_blank
from locations.registers.workbook import sheet_records

__all__ = [
    "CONNECTOR_TYPES",
    "DELIMITER",
    "EVSE_ID",
    "FORMAT",
    "LAYOUT_2017",
    "LAYOUT_2019",
    "LAYOUT_2021",
    "MAX_PREAMBLE_RECORDS",
    "ConnectorSpec",
    "RegisterRow",
    "detect_layout",
    "is_header",
    "iter_bnetza_locations",
    "iter_bnetza_records",
    "iter_bnetza_workbook",
    "parse_row",
]

FORMAT = "bnetza"
DELIMITER = ";"
# Exports have had 3 to 10 preamble rows; a bound keeps a wrong file from being read to the end.
MAX_PREAMBLE_RECORDS = 20

PreambleHook = Callable[[list[str]], None]


def iter_bnetza_locations(lines: Iterable[str | bytes], *,
                          on_preamble: PreambleHook | None = None) -> Iterator[RegisterRow]:
    """Yield one `RegisterRow` per data row of a BNetzA CSV export, streaming.

    `lines` is an open file (text, ideally opened with newline="", or binary) or any iterable of
    lines. `on_preamble` is given the cells of each row before the header. Raises ValueError when no
    register header is found in the first rows.
    """
    records = csv_records(decoded_lines(lines), delimiter=DELIMITER)
    return iter_bnetza_records(records, on_preamble=on_preamble, repair=True)


def iter_bnetza_workbook(file: BinaryIO, *, on_preamble: PreambleHook | None = None,
                         max_text_bytes: int | None = None) -> Iterator[RegisterRow]:
    """The same for the register as an Excel workbook (.xlsx): its first sheet, streamed."""
    return iter_bnetza_records(sheet_records(file, max_text_bytes=max_text_bytes), on_preamble=on_preamble)


def iter_bnetza_records(records: Iterable[Record], *, on_preamble: PreambleHook | None = None,
                        repair: bool = False) -> Iterator[RegisterRow]:
    """Rows from (row number, cells) records; `repair` undoes UTF-8 read as Windows-1252 (CSV only)."""
    records = iter(records)
    layout, mojibake = _read_header(records, on_preamble, repair)
    for start, cells in records:
        if is_blank(cells):
            continue
        if mojibake:
            cells = _repair_mojibake(cells)
        yield parse_row(cells, layout, start)


def _read_header(records: Iterator[Record], on_preamble: PreambleHook | None,
                 repair: bool) -> tuple[Layout, bool]:
    for start, cells in records:
        if start > MAX_PREAMBLE_RECORDS:
            break
        mojibake = repair and any("Ã" in cell for cell in cells)
        if mojibake:
            cells = _repair_mojibake(cells)
        if is_header(cells):
            return build_layout(cells), mojibake
        if on_preamble is not None:
            on_preamble(cells)
    raise ValueError("no BNetzA register header (a row naming Betreiber, Breitengrad and Längengrad) "
                     f"in the first {MAX_PREAMBLE_RECORDS} rows")


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

"""What the register readers share: the row result, text and number helpers, and the record sources.

A register is read as records: `(row, cells)`, where `row` is the line (CSV) or the sheet row (Excel)
on which the record starts and `cells` are texts. `csv_records` makes them from the lines of a CSV
file, `locations.registers.workbook.sheet_records` from an Excel workbook; each reader then finds its
header by column names and turns every data record into a `RegisterRow`.

Pure stdlib on purpose: usable from management commands, Celery tasks and scripts alike.
"""

from __future__ import annotations

import csv
import math
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Iterable, Iterator

__all__ = [
    "HOUSE_NUMBER",
    "ConnectorSpec",
    "Issue",
    "Issues",
    "Record",
    "RegisterRow",
    "clean",
    "csv_records",
    "data_records",
    "decoded_lines",
    "electrics",
    "fit_width",
    "is_blank",
    "parse_decimal",
    "shorten",
    "six_decimals",
    "to_watts",
]

Issue = tuple[str, str, str]  # (column, value, reason)
Record = tuple[int, list[str]]  # (row where the record starts, cells)

HOUSE_NUMBER = re.compile(
    r"(?:ggü\.?\s*)?\d+\s*[a-zA-Z]?(?:\s*[-/]\s*\d+\s*[a-zA-Z]?)?(?:\s*\(.*\))?"
)


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


class Issues:
    """The errors and warnings of one row, as (column, value, reason)."""

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
        lat, lng = parse_decimal(lat_text), parse_decimal(lng_text)
        if lat is None:
            self.error(lat_column, lat_text, "not a number")
        if lng is None:
            self.error(lng_column, lng_text, "not a number")
        return None if lat is None or lng is None else (lat, lng)


# --------------------------------------------------------------------------- records


def decoded_lines(lines: Iterable[str | bytes]) -> Iterator[str]:
    """Lines as text. Lines may come from a binary file, so a latin-1/cp1252 export is read without
    guessing the encoding up front (which would mean reading ahead); a BOM is dropped either way."""
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


def csv_records(lines: Iterable[str], *, delimiter: str) -> Iterator[Record]:
    """Every CSV record of already decoded lines, blank ones included, with the line it starts on."""
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValueError(f"line {start}: unreadable CSV ({exc})") from exc
        yield start, cells


def data_records(records: Iterable[Record]) -> Iterator[Record]:
    """The records that are not blank: exports pad with rows of nothing but delimiters."""
    return (record for record in records if not is_blank(record[1]))


def is_blank(cells: list[str]) -> bool:
    return not any(cell.strip() for cell in cells)


def fit_width(cells: list[str], width: int) -> list[str]:
    """A sheet row to the header's width: a spreadsheet leaves trailing empty cells out, and may
    carry empty ones past the last column; a CSV record of another width is broken, not short."""
    if len(cells) < width:
        return cells + [""] * (width - len(cells))
    if len(cells) > width and is_blank(cells[width:]):
        return cells[:width]
    return cells


# --------------------------------------------------------------------------- text


def clean(text: str) -> str:
    # NFC first so truncation never separates a letter from its combining accent.
    return " ".join(unicodedata.normalize("NFC", text).split())


def shorten(text: str, limit: int) -> str:
    """Fit `text` into `limit` characters without ending mid-word or inside brackets."""
    text = clean(text)
    if len(text) <= limit:
        return text
    text = clean(re.sub(r"\s*\([^)]*\)", "", text))  # a remark in brackets goes first
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space >= limit * 2 // 3 else text[:limit]
    if cut.count("(") > cut.count(")"):
        cut = cut[: cut.rfind("(")]
    return cut.rstrip(" ,;:-/(")


# --------------------------------------------------------------------------- numbers


def parse_decimal(text: str) -> Decimal | None:
    """Read "13,75423", "13.75423" or "1.234,5"; None when it is not a finite number."""
    value = text.strip().replace(" ", "").replace("\xa0", "")
    if "," in value:
        value = value.replace(".", "").replace(",", ".")
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def six_decimals(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def to_watts(kw: Decimal) -> int:
    return int((kw * 1000).to_integral_value(rounding=ROUND_HALF_UP))


def electrics(spec: ConnectorSpec, watts: int) -> tuple[str, int, int]:
    """(power_type, max_voltage, max_amperage) derived from the power.

    * AC single phase: 230 V, amperage = P / 230.
    * AC three phase: `max_voltage` is 230 V because OCPI 2.2.1 defines it line-to-neutral for
      AC_3_PHASE; amperage per phase = P / (400 V * sqrt 3).
    * AC phases: fixed by the plug where the plug fixes it, otherwise P > 7.4 kW (the 32 A
      single-phase ceiling) means three phases.
    * DC: 400 V up to 150 kW, 920 V above (high-power CCS); amperage = P / V.
    """
    if spec.current == "DC":
        volts = 920 if watts > 150_000 else 400
        return "DC", volts, max(1, round(watts / volts))
    phases = spec.phases or (3 if watts > 7_400 else 1)
    if phases == 3:
        return "AC_3_PHASE", 230, max(1, round(watts / (400 * math.sqrt(3))))
    return "AC_1_PHASE", 230, max(1, round(watts / 230))

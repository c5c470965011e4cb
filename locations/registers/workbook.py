"""Excel workbooks (.xlsx) as register records, streamed row by row.

Registers are published as Excel workbooks too (the Bundesnetzagentur's every month, beside its CSV).
openpyxl reads the first worksheet in read-only mode, one row at a time. Its shared-strings table,
which openpyxl would hold in memory whole (every distinct text of the workbook: public keys, EVSE ids
and streets make ~400,000 in a 116,000-row register), is spooled to a temporary file instead; memory
keeps 8 bytes per distinct text, for its offset in that file.

Cells become the texts a CSV export of the same sheet holds, so the readers see one kind of record:
numbers as they print (`48.442398`, `22`), dates in ISO 8601 (`2020-01-11`, with ` 10:30:00` when the
cell has a time of day), booleans `1`/`0`, an empty cell `""`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from array import array
from datetime import date, datetime, time, timedelta
from typing import BinaryIO, Iterator
from xml.etree.ElementTree import ParseError
from xml.parsers import expat

from openpyxl.reader.excel import ExcelReader
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.xml.constants import SHARED_STRINGS

from locations.registers.common import Record

__all__ = ["XLSX_SIGNATURE", "is_workbook", "sheet_records"]

# Every .xlsx is a ZIP archive; a CSV file never starts with these bytes.
XLSX_SIGNATURE = b"PK\x03\x04"
_UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, InvalidFileException, ParseError, expat.ExpatError,
               KeyError, IndexError, TypeError, ValueError, EOFError)
_COPY_CHUNK = 1024 * 1024
_MIDNIGHT = time()


def is_workbook(start: bytes) -> bool:
    """Whether a file beginning with `start` is an Excel workbook (or another ZIP archive)."""
    return start.startswith(XLSX_SIGNATURE)


def sheet_records(file: BinaryIO, *, max_text_bytes: int | None = None) -> Iterator[Record]:
    """(row number, cell texts) of every row of the workbook's first sheet, blank rows included.

    Raises ValueError when the file is not a readable workbook, or when its texts together take
    more than `max_text_bytes` (a compressed archive can hold far more than its size says).
    """
    with _seekable(file) as source:
        strings = SpooledStrings(max_text_bytes)
        try:
            reader = _SpoolingReader(source, strings)
            reader.read()
        except _TooMuchText as exc:
            strings.close()
            raise ValueError(str(exc)) from None
        except _UNREADABLE as exc:
            strings.close()
            raise ValueError(f"not a readable Excel workbook ({type(exc).__name__}: {exc})") from None
        workbook = reader.wb
        try:
            sheet = workbook.worksheets[0]
            # The <dimension> some writers leave stale (often "A1") would cut every row short.
            sheet.reset_dimensions()
            rows = sheet.iter_rows(min_row=1, min_col=1, values_only=True)
            for number, values in enumerate(_checked(rows), start=1):
                # Most cells are texts or empty: the type test inline spares a call for each.
                yield number, [value if value.__class__ is str else "" if value is None else _text(value)
                               for value in values]
        finally:
            workbook.close()
            strings.close()


def _checked(rows) -> Iterator[tuple]:
    try:
        yield from rows
    except _UNREADABLE as exc:
        raise ValueError(f"unreadable Excel sheet ({type(exc).__name__}: {exc})") from None


class _TooMuchText(Exception):
    """Not a ValueError: openpyxl would wrap that into its own message about invalid XML."""


class _seekable:
    """The file itself when it can seek (openpyxl reads the archive's directory at its end), else a
    temporary copy."""

    def __init__(self, file: BinaryIO):
        self.file, self.copy = file, None

    def __enter__(self) -> BinaryIO:
        seekable = getattr(self.file, "seekable", None)
        if seekable is not None and seekable():
            return self.file
        self.copy = tempfile.TemporaryFile()
        shutil.copyfileobj(self.file, self.copy, _COPY_CHUNK)
        self.copy.seek(0)
        return self.copy

    def __exit__(self, *exc_info) -> None:
        if self.copy is not None:
            self.copy.close()


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d" if value.time() == _MIDNIGHT else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


# --------------------------------------------------------------------------- shared strings


class _SpoolingReader(ExcelReader):
    """openpyxl's reader with the shared-strings table on disk (see the module docstring)."""

    def __init__(self, source: BinaryIO, strings: SpooledStrings):
        super().__init__(source, read_only=True, data_only=True)
        self.strings = strings

    def read_strings(self) -> None:
        part = self.package.find(SHARED_STRINGS)
        if part is not None:
            with self.archive.open(part.PartName[1:]) as xml:
                self.strings.load(xml)
        self.shared_strings = self.strings


class SpooledStrings:
    """A workbook's shared strings in a temporary file, read back by index.

    Only the text runs (`<t>`) of each `<si>` count; phonetic hints (`<rPh>`) do not, as in Excel.
    """

    _FLUSH_BYTES = 1024 * 1024

    def __init__(self, max_bytes: int | None = None):
        self.max_bytes = max_bytes
        self.file = tempfile.TemporaryFile()
        self.offsets = array("Q", [0])
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._parts: list[str] = []
        self._in_text = False
        self._in_phonetic = False

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> str:
        start, end = self.offsets[index], self.offsets[index + 1]
        return os.pread(self.file.fileno(), end - start, start).decode("utf-8")

    def close(self) -> None:
        self.file.close()

    def load(self, xml: BinaryIO) -> None:
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.buffer_text = True
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._characters
        parser.ParseFile(xml)
        self._flush()

    def _start(self, name: str, attributes: dict) -> None:
        tag = name.rpartition(" ")[2]
        if tag == "t":
            self._in_text = not self._in_phonetic
        elif tag == "rPh":
            self._in_phonetic = True
        elif tag == "si":
            self._parts.clear()

    def _end(self, name: str) -> None:
        tag = name.rpartition(" ")[2]
        if tag == "t":
            self._in_text = False
        elif tag == "rPh":
            self._in_phonetic = False
        elif tag == "si":
            # openpyxl's own reading of the escape of an underscore ("_x005F_").
            self._add("".join(self._parts).replace("x005F_", "").encode("utf-8"))

    def _characters(self, data: str) -> None:
        if self._in_text:
            self._parts.append(data)

    def _add(self, data: bytes) -> None:
        end = self.offsets[-1] + len(data)
        if self.max_bytes is not None and end > self.max_bytes:
            raise _TooMuchText(f"the workbook's texts take more than {self.max_bytes:,} bytes")
        self.offsets.append(end)
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= self._FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        self.file.write(b"".join(self._pending))
        self.file.flush()
        self._pending.clear()
        self._pending_bytes = 0

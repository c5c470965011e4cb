"""Excel workbooks (.xlsx) as register records, streamed row by row.

Registers are published as Excel workbooks too (the Bundesnetzagentur's every month, beside its CSV).
openpyxl opens the workbook read-only (`ExcelReader(read_only=True, data_only=True)`, what
`load_workbook` does) and its sheet parser reads the first worksheet's cells one row at a time. Two
things openpyxl would keep for the whole file are not kept, so that memory stays flat:

* the shared-strings table (every distinct text of the workbook: public keys, EVSE ids and streets
  make ~400,000 in a 116,000-row register) goes to a temporary file; memory keeps 8 bytes per
  distinct text, for its offset in that file;
* the rows already read: openpyxl's read-only rows leave each emptied <row> element in the parsed
  tree (~80 bytes a row), so the rows are parsed here with its cell parser, and dropped.

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
from openpyxl.utils.cell import coordinate_to_tuple
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.xml.constants import SHARED_STRINGS, SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse

from locations.registers.common import Record

__all__ = ["XLSX_SIGNATURE", "is_workbook", "sheet_records"]

# Every .xlsx is a ZIP archive; a CSV file never starts with these bytes.
XLSX_SIGNATURE = b"PK\x03\x04"
_UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, InvalidFileException, ParseError, expat.ExpatError,
               KeyError, IndexError, TypeError, ValueError, EOFError)
_COPY_CHUNK = 1024 * 1024
_SHEET_DATA = f"{{{SHEET_MAIN_NS}}}sheetData"
_ROW = f"{{{SHEET_MAIN_NS}}}row"
_INLINE, _TEXT, _RUN = (f"{{{SHEET_MAIN_NS}}}{tag}" for tag in ("is", "t", "r"))
_MIDNIGHT = time()
_LAST_COLUMN = 16_384  # XFD


def is_workbook(start: bytes) -> bool:
    """Whether a file beginning with `start` is an Excel workbook (or another ZIP archive)."""
    return start.startswith(XLSX_SIGNATURE)


def sheet_records(file: BinaryIO, *, max_text_bytes: int | None = None) -> Iterator[Record]:
    """(row number, cell texts) of every row the workbook's first sheet holds (a row it leaves out
    is empty, as is one of empty cells).

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
            yield from _rows(workbook, strings)
        finally:
            workbook.close()
            strings.close()


def _rows(workbook, strings: SpooledStrings) -> Iterator[Record]:
    if not workbook.worksheets:
        raise ValueError("not a readable Excel workbook (it has no worksheet)")
    sheet = workbook.worksheets[0]
    with workbook._archive.open(sheet._worksheet_path) as xml:
        parser = _RowParser(xml, strings, data_only=True, epoch=workbook.epoch,
                            date_formats=workbook._date_formats, timedelta_formats=workbook._timedelta_formats)
        try:
            for number, cells in parser.parse():
                # A row holds the cells up to its last one that has a value: its <dimension>, which
                # openpyxl would pad or cut rows to, is often stale ("A1") in what other tools write.
                width = max((cell["column"] for cell in cells), default=0)
                if width > _LAST_COLUMN:  # Excel ends at XFD: a reference past it is forged, not data
                    raise ValueError(f"row {number} has a cell beyond Excel's last column")
                texts = [""] * width
                for cell in cells:
                    value = cell["value"]
                    # Most cells are texts or empty: the type test inline spares a call for each.
                    texts[cell["column"] - 1] = value if value.__class__ is str else (
                        "" if value is None else _text(value))
                yield number, texts
        except _UNREADABLE as exc:
            raise ValueError(f"unreadable Excel sheet ({type(exc).__name__}: {exc})") from None


class _RowParser(WorkSheetParser):
    """openpyxl's sheet parser, keeping nothing of the rows it has handed over: its own `parse`
    leaves each emptied <row> in the tree, and notes the attributes of rows with a height or style."""

    def parse(self) -> Iterator[tuple[int, list[dict]]]:
        sheet_data = None
        for event, element in iterparse(self.source, events=("start", "end")):
            if event == "start":
                if element.tag == _SHEET_DATA:
                    sheet_data = element
            elif element.tag == _ROW:
                yield self.parse_row(element)
                if sheet_data is not None:
                    sheet_data.clear()

    def parse_row(self, row) -> tuple[int, list[dict]]:
        number = row.get("r")
        self.row_counter = int(number) if number is not None and number.isdigit() else self.row_counter + 1
        self.col_counter = 0
        return self.row_counter, [self.parse_cell(cell) for cell in row]

    def parse_cell(self, element) -> dict:
        if element.get("t") != "inlineStr":
            return super().parse_cell(element)
        # openpyxl builds rich-text objects for an inline string, at several times the cost of its text.
        coordinate = element.get("r")
        if coordinate:
            self.col_counter = coordinate_to_tuple(coordinate)[1]
        else:
            self.col_counter += 1
        inline = element.find(_INLINE)
        return {"column": self.col_counter, "value": None if inline is None else _inline_text(inline)}


def _inline_text(inline) -> str:
    parts = []
    for child in inline:  # <t>, or runs <r><t>; not the phonetic hints <rPh>
        if child.tag == _TEXT:
            parts.append(child.text or "")
        elif child.tag == _RUN:
            parts.extend(text.text or "" for text in child.iter(_TEXT))
    return "".join(parts)


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
    # Texts read back lately, kept for the next rows: a register repeats its operators, plugs and
    # statuses on every other row. Emptied when full, so it never outgrows this.
    _RECENT = 8192

    def __init__(self, max_bytes: int | None = None):
        self.max_bytes = max_bytes
        self.file = tempfile.TemporaryFile()
        self.offsets = array("Q", [0])
        self._recent: dict[int, str] = {}
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._parts: list[str] = []
        self._in_text = False
        self._in_phonetic = False

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> str:
        text = self._recent.get(index)
        if text is None:
            start, end = self.offsets[index], self.offsets[index + 1]
            text = os.pread(self.file.fileno(), end - start, start).decode("utf-8")
            if len(self._recent) >= self._RECENT:
                self._recent.clear()
            self._recent[index] = text
        return text

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

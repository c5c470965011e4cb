"""An uploaded file as lines of CSV text, read incrementally, with the limits and quirks of real files.

Spreadsheets save CSV in many ways: UTF-8 with or without a BOM, UTF-16 ("Unicode text"), the
Windows code page of a Western-European Excel, `;` instead of `,` where the comma is the decimal
sign. The first 64 KiB are looked at to decide the encoding; nothing else is read ahead, so memory
stays flat whatever the file's size.

Registers also come as Excel workbooks (.xlsx), known by their first bytes (`is_workbook`); they
are read as sheets, not as text (`locations.registers.workbook`), under the same limit on the
file's size.
"""

from __future__ import annotations

import codecs
import io
import re
from typing import BinaryIO, Iterator, TextIO

from django.conf import settings

from locations.csv_import.report import RowError
from locations.registers import workbook

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_ROWS = 200_000
# The longest value any column holds is 255 characters (name, address); a cell far beyond that is a
# paste gone wrong or an attack on whoever opens the file next, not data.
DEFAULT_MAX_CELL_CHARS = 1000

# An .xlsx is compressed: once unpacked, its texts take several times the file's size. Far beyond
# that it is more likely a ZIP bomb than a register.
WORKBOOK_TEXT_FACTOR = 10

_SAMPLE_BYTES = 64 * 1024
_BUFFER_BYTES = 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# OWASP's CSV injection triggers. A leading "-" is only a formula when no digit follows, so that
# "-0.1277" stays a number wherever it is read.
_FORMULA = re.compile(r"[=+@\t\r]|-[^\d.]")
# The first characters `neutralised` looks further at.
FORMULA_STARTS = "=+@-\t\r"
_HIGH_RUNS = re.compile(rb"[\x80-\xff]+")
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")

# Files that are not text at all, by their first bytes, with what to do instead.
_SIGNATURES = {
    b"PK\x03\x04": "an Excel workbook or a ZIP archive, not CSV: save the sheet as \"CSV UTF-8\"",
    b"\xd0\xcf\x11\xe0": "an Excel 97-2003 workbook, not CSV: save the sheet as \"CSV UTF-8\"",
    b"%PDF": "a PDF document, not CSV",
    b"\x1f\x8b": "a gzip archive, not CSV: unpack it first",
}


class FileRejected(Exception):
    """The file cannot be imported at all (not CSV, too large, missing columns, ...)."""

    def __init__(self, reason: str, *, row: int = 0, column: str = "", value: str = ""):
        super().__init__(reason)
        self.error = RowError(row, column, value, reason)


def max_bytes() -> int:
    return getattr(settings, "EVHUB_CSV_MAX_BYTES", DEFAULT_MAX_BYTES)


def max_rows() -> int:
    return getattr(settings, "EVHUB_CSV_MAX_ROWS", DEFAULT_MAX_ROWS)


def max_cell_chars() -> int:
    return getattr(settings, "EVHUB_CSV_MAX_CELL_CHARS", DEFAULT_MAX_CELL_CHARS)


def max_workbook_text_bytes() -> int:
    return max_bytes() * WORKBOOK_TEXT_FACTOR


def is_workbook(file: BinaryIO | TextIO) -> bool:
    """Whether the file, from where it stands, is an Excel workbook rather than text."""
    start = _peek(file, len(workbook.XLSX_SIGNATURE))
    return isinstance(start, bytes) and workbook.is_workbook(start)


def check_workbook_size(file: BinaryIO) -> None:
    """A workbook is read as a whole archive, not line by line: its size is checked before."""
    limit = max_bytes()
    size = getattr(file, "size", None)
    if not isinstance(size, int):
        position = file.tell()
        size = file.seek(0, io.SEEK_END) - position
        file.seek(position)
    if size > limit:
        raise _too_large(limit)


def sample_lines(file: BinaryIO | TextIO) -> list[str]:
    """The first lines of a CSV file (up to 64 KiB of it) as text, leaving the file where it was."""
    sample = _peek(file, _SAMPLE_BYTES)
    if sample is None:
        raise FileRejected("the file can only be read once, so its format cannot be told: name the format")
    text = sample.decode(_encoding(sample), errors="replace") if isinstance(sample, bytes) else sample
    text = text.removeprefix("\ufeff")
    _check_text(text)
    lines = text.splitlines(keepends=True)
    return lines[:-1] if len(sample) == _SAMPLE_BYTES and len(lines) > 1 else lines  # the last one cut short


def _peek(file: BinaryIO | TextIO, size: int) -> bytes | str | None:
    """Up to `size` bytes (characters, from a text file) from the file's position, which is kept;
    None when the file cannot go back."""
    seekable = getattr(file, "seekable", None)
    if seekable is None or not seekable():
        return None
    position = file.tell()
    try:
        return file.read(size)
    finally:
        file.seek(position)


def text_lines(file: BinaryIO | TextIO) -> Iterator[str]:
    """The file's lines, as `open(..., newline="")` gives them, never more than the byte limit."""
    limit = max_bytes()
    size = getattr(file, "size", None)  # Django's UploadedFile knows it before anything is read
    if isinstance(size, int) and size > limit:
        raise _too_large(limit)
    if isinstance(file.read(0), str):
        return _checked_text(file, limit)
    return _decoded(file, limit)


def _too_large(limit: int) -> FileRejected:
    return FileRejected(f"the file is larger than {limit:,} bytes (EVHUB_CSV_MAX_BYTES); split it")


class _Limited(io.RawIOBase):
    """Counts the bytes read and stops the import at the limit instead of reading on."""

    def __init__(self, file: BinaryIO, limit: int):
        self.file, self.limit, self.count = file, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.file.read(len(buffer))
        if not data:
            return 0
        self.count += len(data)
        if self.count > self.limit:
            raise _too_large(self.limit)
        buffer[: len(data)] = data
        return len(data)


def _decoded(file: BinaryIO, limit: int) -> Iterator[str]:
    stream = io.BufferedReader(_Limited(file, limit), buffer_size=_BUFFER_BYTES)
    sample = stream.peek(_SAMPLE_BYTES)[:_SAMPLE_BYTES]
    encoding = _encoding(sample)
    _check_text(sample.decode(encoding, errors="replace"))
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    line = 0
    try:
        for line, content in enumerate(text, start=1):
            yield content
    except UnicodeDecodeError as exc:
        raise FileRejected(f"the file is not valid {encoding} text after line {line} ({exc.reason})",
                           row=line + 1) from None


def _encoding(sample: bytes) -> str:
    for signature, reason in _SIGNATURES.items():
        if sample.startswith(signature):
            raise FileRejected(f"this is {reason}")
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The sample may end inside a character; anything earlier means it is not UTF-8, and a
        # Western-European Excel saved it in its code page.
        if exc.start < len(sample) - 3:
            _refuse_east_asian(sample)
            return "cp1252"
    return "utf-8-sig"


def _refuse_east_asian(sample: bytes) -> None:
    """Windows-1252 decodes nearly any bytes, so a Shift-JIS or GBK file would be stored as mojibake
    (`ƒJƒ^ƒJƒi`). Western text has its accented letters one at a time between ASCII ones (`Straße`);
    double-byte code pages have every character as two or more bytes of 0x80 and above. A sample whose
    high bytes come nearly all in runs, and that decodes as one of those code pages, is refused, naming it."""
    runs = [len(run) for run in _HIGH_RUNS.findall(sample)]
    high = sum(runs)
    if high < 8 or sum(length for length in runs if length >= 2) * 5 < high * 4:
        return
    for encoding, language in (("shift_jis", "Japanese"), ("gbk", "Chinese"), ("big5", "Chinese"),
                               ("cp949", "Korean")):
        for cut in range(4):  # the sample may end inside a character
            try:
                sample[:len(sample) - cut].decode(encoding)
            except UnicodeDecodeError:
                continue
            raise FileRejected(f"the file is neither UTF-8 nor Windows-1252 text: it reads as {encoding} "
                               f"({language}); save it as \"CSV UTF-8\" and upload it again")


def _check_text(sample: str) -> None:
    controls = len(_CONTROL.findall(sample))
    if "\x00" in sample or controls > len(sample) // 100:
        raise FileRejected("this is a binary file, not CSV text")


def _checked_text(file: TextIO, limit: int) -> Iterator[str]:
    count = 0
    for number, line in enumerate(file, start=1):
        if number == 1:
            line = line.removeprefix("\ufeff")
            _check_text(line[:_SAMPLE_BYTES])
        count += len(line)  # characters: close enough to bytes for a limit
        if count > limit:
            raise _too_large(limit)
        yield line


def sniff_delimiter(header: str) -> str:
    """`;` or `,`, whichever the header row uses more (outside quotes)."""
    unquoted = re.sub(r'"[^"]*"', "", header)
    return ";" if unquoted.count(";") > unquoted.count(",") else ","


def neutralised(text: str) -> str:
    """A text cell that a spreadsheet would run as a formula, made literal with a leading `'`."""
    # The first character rules most cells out before the regex runs: this is on every text cell.
    return "'" + text if text and text[0] in FORMULA_STARTS and _FORMULA.match(text) else text


def decimal_point(text: str) -> str:
    """`52,5` -> `52.5`, for numeric cells of a file whose delimiter leaves the comma free."""
    return text.replace(",", ".") if _DECIMAL_COMMA.fullmatch(text) else text

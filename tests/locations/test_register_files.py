"""Register files as they arrive: Excel workbooks read as sheets, the format told from the header,
the UK and AFDC registers with their columns in any order, and all of it through the import.

Every row here is made up for the test.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime
from xml.sax.saxutils import escape

import pytest
from django.core.management import CommandError, call_command
from openpyxl import Workbook

from locations.csv_import import locations_import_csv
from locations.csv_import.reading import FileRejected
from locations.csv_import.registers import detect_format
from locations.models import Evse, Location
from locations.registers.afdc import iter_afdc_locations, iter_afdc_workbook
from locations.registers.uk_ncr import iter_uk_ncr_locations, iter_uk_ncr_workbook
from locations.registers.workbook import SpooledStrings, sheet_records
from tests.locations.test_bnetza_register_current import PREAMBLE_2023, STATIONS, _csv_text, _xlsx
from tests.locations.test_csv_import import as_csv, grid

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def excel_like_xlsx(rows: list[list], *, dimension: str | None = None, rich: bool = False,
                    inline: bool = False) -> io.BytesIO:
    """A workbook as Excel writes it, texts in the shared-strings table (openpyxl writes them inline),
    or with `inline` as other tools do, with rich text when `rich`."""
    def content(text: str) -> str:
        if rich and " " in text:  # two runs and a phonetic hint, which is no part of the text
            head, tail = text.split(" ", 1)
            return (f"<r><rPr><b/></rPr><t>{escape(head)} </t></r><r><t>{escape(tail)}</t></r>"
                    f"<rPh sb=\"0\" eb=\"1\"><t>ignored</t></rPh>")
        return f"<t>{escape(text)}</t>"

    strings: dict[str, int] = {}
    sheet_rows = []
    for number, row in enumerate(rows, start=1):
        cells = []
        for column, value in enumerate(row):
            ref = f"{chr(65 + column)}{number}"
            if value is None:
                continue
            if isinstance(value, (int, float)):
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
            elif inline:
                cells.append(f'<c r="{ref}" t="inlineStr"><is>{content(value)}</is></c>')
            else:
                index = strings.setdefault(value, len(strings))
                cells.append(f'<c r="{ref}" t="s"><v>{index}</v></c>')
        sheet_rows.append(f'<row r="{number}">{"".join(cells)}</row>')
    dimension_xml = f'<dimension ref="{dimension}"/>' if dimension else ""

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sharedStrings+xml"/></Types>'))
        archive.writestr("_rels/.rels", (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="xl/workbook.xml"/></Relationships>'))
        archive.writestr("xl/workbook.xml", (
            f'<workbook xmlns="{MAIN_NS}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships"><sheets><sheet name="Tabelle1" sheetId="1" r:id="rId1"/></sheets></workbook>'))
        archive.writestr("xl/_rels/workbook.xml.rels", (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'worksheet" Target="worksheets/sheet1.xml"/></Relationships>'))
        archive.writestr("xl/worksheets/sheet1.xml",
                         f'<worksheet xmlns="{MAIN_NS}">{dimension_xml}<sheetData>{"".join(sheet_rows)}'
                         "</sheetData></worksheet>")
        archive.writestr("xl/sharedStrings.xml", f'<sst xmlns="{MAIN_NS}">{"".join(f"<si>{content(text)}</si>" for text in strings)}</sst>')
    out.seek(0)
    return out


class OneWayStream(io.RawIOBase):
    """A stream that cannot seek, as a pipe."""

    def __init__(self, data: bytes):
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# --------------------------------------------------------------------------- workbooks


@pytest.mark.parametrize("inline", [False, True], ids=["shared strings", "inline strings"])
def test_a_sheets_texts_shared_or_inline_plain_or_rich_are_read(inline):
    rows = [["Name", "Ort", "Zahl"], ["Große Straße 1", "Köln", 22], [None, "Köln", 3.5], ["a & b <c>", None, None]]
    records = list(sheet_records(excel_like_xlsx(rows, rich=True, inline=inline)))
    # Without a <dimension>, a row ends with its last cell, as a CSV record would without its padding.
    assert records == [(1, ["Name", "Ort", "Zahl"]), (2, ["Große Straße 1", "Köln", "22"]), (3, ["", "Köln", "3.5"]),
                       (4, ["a & b <c>"])]


def test_a_stale_dimension_does_not_cut_the_rows():
    rows = [["a", "b", "c"], ["1", "2", "3"]]
    assert [cells for _, cells in sheet_records(excel_like_xlsx(rows, dimension="A1"))] == rows


def test_spooled_strings_keep_offsets_only_and_refuse_too_much_text():
    strings = SpooledStrings()
    strings.load(io.BytesIO(f'<sst xmlns="{MAIN_NS}"><si><t>eins</t></si><si><t/></si><si><t>drei</t></si></sst>'
                            .encode()))
    assert (len(strings), strings[0], strings[1], strings[2]) == (3, "eins", "", "drei")
    with pytest.raises(ValueError, match="texts take more than 10 bytes"):
        list(sheet_records(excel_like_xlsx([["x" * 11]]), max_text_bytes=10))


def test_cells_become_the_texts_a_csv_export_holds():
    workbook = Workbook()
    workbook.active.append([22, 22.0, 3.7, datetime(2020, 1, 11), datetime(2020, 1, 11, 10, 30), True, None, "text"])
    out = io.BytesIO()
    workbook.save(out)
    out.seek(0)
    ((_, cells),) = list(sheet_records(out))
    assert cells == ["22", "22", "3.7", "2020-01-11", "2020-01-11 10:30:00", "1", "", "text"]


def test_a_stream_that_cannot_seek_is_read_too():
    data = _xlsx().getvalue()
    assert list(sheet_records(OneWayStream(data))) == list(sheet_records(io.BytesIO(data)))


@pytest.mark.parametrize("content", [b"PK\x03\x04 not really a zip", b"not a workbook at all"])
def test_a_broken_workbook_is_a_value_error(content):
    with pytest.raises(ValueError, match="not a readable Excel workbook"):
        list(sheet_records(io.BytesIO(content)))


# --------------------------------------------------------------------------- AFDC and UK: columns by name

AFDC_COLUMNS = ["Station Name", "ZIP", "Latitude", "Longitude", "ID"]
AFDC_ROWS = [
    {"Station Name": "City Hall Garage", "ZIP": "5403", "Latitude": "44.4759", "Longitude": "-73.2121", "ID": "1001"},
    {"Station Name": "Harbor Lot", "ZIP": "94107", "Latitude": "37.7749", "Longitude": "-122.4194", "ID": "1002",
     "City": "San Francisco", "State": "CA", "Street Address": "1 Harbor Way"},
    {"Station Name": "Nowhere", "ZIP": "10001", "Latitude": "0.0", "Longitude": "-73.99", "ID": "1003"},
]
UK_COLUMNS = ["chargeDeviceID", "name", "latitude", "longitude", "thoroughfare", "town", "postcode",
              "connector1ID", "connector1Type", "connector1RatedOutputKW", "connector1ChargeMethod",
              "connector1TetheredCable", "dateCreated"]
UK_ROWS = [
    {"chargeDeviceID": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "name": "Market Square", "latitude": "52.629729",
     "longitude": "1.292322", "thoroughfare": "Market Square", "town": "Norwich", "postcode": "NR2 1NH",
     "connector1ID": "5001", "connector1Type": "Type 2 Mennekes (IEC62196)", "connector1RatedOutputKW": "22.0",
     "connector1ChargeMethod": "Three Phase AC", "connector1TetheredCable": "0", "dateCreated": "2016-03-01 09:30:00"},
    {"chargeDeviceID": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "name": "Depot", "latitude": "40.4", "longitude": "-3.7",
     "thoroughfare": "Calle Mayor", "town": "Madrid", "postcode": "28013", "connector1Type": "3-pin Type G (BS1363)"},
]


def _csv(columns: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return out.getvalue()


def _sheet(columns: list[str], rows: list[dict]) -> io.BytesIO:
    def typed(text: str):
        try:
            return int(text) if text.isdigit() else float(text)
        except ValueError:
            return datetime.fromisoformat(text) if text[:4].isdigit() and text[4:5] == "-" else text or None

    workbook = Workbook()
    workbook.active.append(columns)
    for row in rows:
        workbook.active.append([typed(row.get(column, "")) for column in columns])
    out = io.BytesIO()
    workbook.save(out)
    out.seek(0)
    return out


def _shuffled(columns: list[str]) -> list[str]:
    return ["Unknown Column", *reversed(columns), "Another One"]


@pytest.mark.parametrize(("columns", "rows", "read_csv", "read_sheet"), [
    (AFDC_COLUMNS + ["City", "State", "Street Address"], AFDC_ROWS, iter_afdc_locations, iter_afdc_workbook),
    (UK_COLUMNS, UK_ROWS, iter_uk_ncr_locations, iter_uk_ncr_workbook),
], ids=["afdc", "uk-ncr"])
def test_reordered_and_unknown_columns_and_workbooks_give_the_same_rows(columns, rows, read_csv, read_sheet):
    expected = [(r.row, r.location, [reason for *_, reason in r.error or []]) for r in read_csv(io.StringIO(
        _csv(columns, rows), newline=""))]
    assert [location for _, location, _ in expected if location] and any(errors for *_, errors in expected)
    for variant in (_csv(_shuffled(columns), rows), _csv(columns, [{**r, "Unknown Column": "x"} for r in rows])):
        got = [(r.row, r.location, [reason for *_, reason in r.error or []])
               for r in read_csv(io.StringIO(variant, newline=""))]
        assert got == expected
    from_sheet = [(r.row, r.location, [reason for *_, reason in r.error or []])
                  for r in read_sheet(_sheet(_shuffled(columns), rows))]
    assert from_sheet == expected


# --------------------------------------------------------------------------- telling the format


@pytest.mark.parametrize(("content", "encoding", "expected"), [
    (_csv_text().encode("cp1252"), "cp1252", "bnetza"),
    (b"\xef\xbb\xbf" + _csv_text().encode("utf-8"), "utf-8-sig", "bnetza"),
    (_csv(_shuffled(UK_COLUMNS), UK_ROWS).encode("utf-8"), "utf-8", "uk-ncr"),
    (_csv(AFDC_COLUMNS, AFDC_ROWS).encode("utf-8"), "utf-8", "afdc"),
    (as_csv(grid(1)), "utf-8", "evhub"),
    (as_csv(grid(1), delimiter=";"), "utf-8", "evhub"),
], ids=["bnetza-cp1252", "bnetza-utf8-bom", "uk-ncr", "afdc", "evhub", "evhub-semicolon"])
def test_the_format_is_told_from_a_csv_header_and_the_file_is_left_where_it_was(content, encoding, expected):
    file = io.BytesIO(content)
    assert detect_format(file) == expected
    assert file.tell() == 0
    assert detect_format(io.StringIO(content.decode(encoding), newline="")) == expected


@pytest.mark.parametrize(("file", "expected"), [
    (lambda: _xlsx(), "bnetza"),
    (lambda: _sheet(UK_COLUMNS, UK_ROWS), "uk-ncr"),
    (lambda: excel_like_xlsx([AFDC_COLUMNS, ["Somewhere", "10001", "40.7", "-73.9", "1"]]), "afdc"),
], ids=["bnetza", "uk-ncr", "afdc"])
def test_the_format_is_told_from_a_workbooks_header(file, expected):
    workbook = file()
    assert detect_format(workbook) == expected
    assert workbook.tell() == 0


def test_an_unknown_header_or_our_layout_in_a_workbook_is_refused():
    with pytest.raises(FileRejected, match="no known header"):
        detect_format(io.BytesIO(b"name,street\r\nfoo,bar\r\n"))
    ours = excel_like_xlsx([list(grid(1)[0])])
    with pytest.raises(FileRejected, match="read from CSV"):
        detect_format(ours)


# --------------------------------------------------------------------------- through the import


def _import(cpo, file, **options):
    return locations_import_csv(cpo=cpo, file=file, format="bnetza", skip_invalid=True, **options)


def undated_station() -> dict:
    return {**STATIONS[0], "Ladeeinrichtungs-ID": "1000009", "Inbetriebnahmedatum": ""}


def test_a_2023_register_imports_from_csv_and_the_same_workbook_changes_nothing(alpha):
    report = _import(alpha, io.BytesIO(_csv_text(stations=[*STATIONS, undated_station()]).encode("cp1252")))
    assert (report.rows, report.created, report.error_count, report.committed) == (5, 4, 1, True)
    assert report.errors[0].reason == "outside Germany"

    kiel = Location.objects.get(cpo=alpha, ocpi_id="DE-BNA-1000001")
    assert kiel.opening_times == {"twentyfourseven": True}
    assert kiel.directions == [{"language": "de", "text": "Parkplatz am Rathaus"}]
    assert kiel.last_updated.isoformat() == "2021-02-05T00:00:00+00:00"
    evse = Evse.objects.get(location=kiel, uid="DE-BNA-1000001-1")
    assert evse.evse_id == "DE*SWM*E1000001*1"
    assert sorted(evse.capabilities.values_list("code", flat=True)) == ["RFID_READER"]
    dresden = Location.objects.get(cpo=alpha, ocpi_id="DE-BNA-1000002")
    assert list(dresden.evses.get().parking_restrictions.values_list("code", flat=True)) == ["CUSTOMERS"]
    assert dresden.evses.get().status == "INOPERATIVE"
    assert not Location.objects.get(cpo=alpha, ocpi_id="DE-BNA-1000003").publish
    # Without a commissioning date, the export's date of the preamble ("Letzte Aktualisierung vom").
    undated = Location.objects.get(cpo=alpha, ocpi_id="DE-BNA-1000009")
    assert undated.last_updated.isoformat() == "2026-09-01T00:00:00+00:00"

    # The workbook of the same export: its date cell apart from its label, as a spreadsheet may keep it.
    preamble = [row if not row or not row[0].startswith("Letzte") else ["Letzte Aktualisierung vom:",
                                                                          datetime(2026, 9, 1)]
                for row in PREAMBLE_2023]
    again = _import(alpha, _xlsx(stations=[*STATIONS, undated_station()], preamble=preamble))
    assert (again.rows, again.unchanged, again.created, again.updated) == (5, 4, 0, 0)


def test_a_workbook_over_the_size_limit_or_broken_is_one_error(alpha, settings):
    broken = _import(alpha, io.BytesIO(b"PK\x03\x04" + b"\x00" * 100))
    assert broken.error_count == 1 and "not a readable Excel workbook" in broken.errors[0].reason
    settings.EVHUB_CSV_MAX_BYTES = 1000
    too_large = _import(alpha, _xlsx())
    assert too_large.error_count == 1 and "larger than 1,000 bytes" in too_large.errors[0].reason
    assert Location.objects.count() == 0


def test_the_command_tells_the_format_and_imports_a_workbook(alpha, tmp_path):
    path = tmp_path / "Ladesaeulenregister.xlsx"
    path.write_bytes(_xlsx().getvalue())
    out = io.StringIO()
    with pytest.raises(CommandError) as skipped:
        call_command("import_locations", str(path), "--cpo", "ALP", "--skip-invalid", stdout=out)
    assert skipped.value.returncode == 2  # the station abroad
    assert "bnetza layout, told from its header" in out.getvalue()
    assert "3 created" in out.getvalue() and "committed" in out.getvalue()

    unknown = tmp_path / "other.csv"
    unknown.write_bytes(b"name,street\r\nfoo,bar\r\n")
    with pytest.raises(CommandError, match="no known header") as refused:
        call_command("import_locations", str(unknown), "--cpo", "ALP", stdout=io.StringIO())
    assert refused.value.returncode == 1


def test_a_cell_beyond_excels_last_column_is_refused_not_allocated():
    workbook = excel_like_xlsx([["a"]])
    data = io.BytesIO()
    with zipfile.ZipFile(workbook) as source, zipfile.ZipFile(data, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b'r="A1"', b'r="ZZZ1"')  # openpyxl reads up to ZZZ
            target.writestr(item, content)
    data.seek(0)
    with pytest.raises(ValueError, match="beyond Excel's last column"):
        list(sheet_records(data))

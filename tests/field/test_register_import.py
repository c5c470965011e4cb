"""Field test: the real national registers in ../shared/data/locations through the CSV import.

Each register is imported for a CPO of its country with `skip_invalid` (a register always has a few
rows that are no usable station: coordinates abroad, no town). The test prints, per file, how many
rows were imported and rejected with the top reasons, and fails when acceptance drops, when the
numbers stop adding up, or when importing the same export again changes anything. Each file is
also told by its header, and a register saved as an Excel workbook reads as its CSV does.
"""

from __future__ import annotations

import io
import itertools
import time
from collections import Counter

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from openpyxl import Workbook

from locations import services
from locations.csv_import import detect_format, locations_import_csv
from locations.models import Connector, Evse, Location
from locations.registers.afdc import iter_afdc_locations, iter_afdc_workbook
from locations.registers.bnetza import iter_bnetza_locations, iter_bnetza_workbook
from locations.registers.common import csv_records, decoded_lines

pytestmark = [pytest.mark.field, pytest.mark.django_db]

# file, format, country of the importing CPO, data lines read (None: all), minimum share imported.
# The 2019 BNetzA export is imported (twice) by the re-import test. The AFDC list's 50,270 stations
# are one format repeated: its first 10,000 say as much, in a fifth of the time.
REGISTERS = [
    ("de-bnetza-2017-04-11.csv", "bnetza", "DE", None, 0.99),
    ("uk-ncr.csv", "uk-ncr", "GB", None, 0.99),
    ("us-afdc-stations.csv", "afdc", "US", 10_000, 0.99),
]


def _cpo(country: str):
    cpo, _ = services.cpo_create(country_code=country, party_id="REG", owner_name=f"Register {country}")
    return cpo


def _import(cpo, path, format: str, lines: int | None = None):
    with path.open("rb") as file:
        if lines is not None:
            file = io.BytesIO(b"".join(itertools.islice(file, lines + 1)))  # and the header
        started = time.perf_counter()
        report = locations_import_csv(cpo=cpo, file=file, format=format, skip_invalid=True)
        return report, time.perf_counter() - started


def _counts(cpo) -> tuple[int, int, int]:
    # Tables filled inside the test's transaction have no statistics: without them PostgreSQL joins
    # 30,000 connectors to their EVSEs by nested loops for minutes.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE locations_location, locations_evse, locations_connector")
    return (Location.objects.filter(cpo=cpo).count(), Evse.objects.filter(location__cpo=cpo).count(),
            Connector.objects.filter(evse__location__cpo=cpo).count())


def _print(capsys, name: str, report, seconds: float) -> None:
    reasons = Counter(error.reason for error in report.errors)
    with capsys.disabled():
        print(f"\n{name}: {report.rows:,} rows -> {report.locations:,} locations imported "
              f"({report.created:,} created, {report.updated:,} updated, {report.unchanged:,} unchanged), "
              f"{report.error_count:,} rejected, {seconds:.1f} s ({report.rows / seconds:,.0f} rows/s)")
        for reason, count in reasons.most_common(5):
            print(f"    {count:>5}  {reason}")


@pytest.mark.parametrize(("name", "format", "country", "lines", "minimum"), REGISTERS,
                         ids=[r[0] for r in REGISTERS])
def test_a_register_imports_with_high_acceptance(shared_data, capsys, name, format, country, lines, minimum):
    cpo = _cpo(country)
    report, seconds = _import(cpo, shared_data / "locations" / name, format, lines)
    _print(capsys, name if lines is None else f"{name} (first {lines:,} rows)", report, seconds)
    _assert_accepted(cpo, report, minimum)


def _assert_accepted(cpo, report, minimum: float) -> None:
    assert report.committed
    assert report.locations >= minimum * report.rows
    # Every data row is a location or a rejection (a rejected row may have several reasons).
    rejected_rows = len({error.row for error in report.errors})
    assert report.locations + rejected_rows == report.rows
    locations, evses, connectors = _counts(cpo)
    assert report.created == report.locations == locations
    assert connectors >= evses >= locations


def test_the_2019_bnetza_export_imports_and_reimporting_it_changes_nothing(shared_data, capsys):
    cpo = _cpo("DE")
    path = shared_data / "locations" / "de-bnetza-2019-07-19.csv"
    first, seconds = _import(cpo, path, "bnetza")
    _print(capsys, path.name, first, seconds)
    _assert_accepted(cpo, first, 0.99)
    _assert_rows_sharing_an_id_stay_distinct(cpo)
    counts = _counts(cpo)
    modified = set(Location.objects.filter(cpo=cpo).values_list("id", "date_modified", "last_updated"))

    again, seconds = _import(cpo, path, "bnetza")
    _print(capsys, "de-bnetza-2019-07-19.csv again", again, seconds)

    assert again.unchanged == again.locations == first.locations
    assert (again.created, again.updated) == (0, 0)
    assert set(Location.objects.filter(cpo=cpo).values_list("id", "date_modified", "last_updated")) == modified
    assert _counts(cpo) == counts


def _assert_rows_sharing_an_id_stay_distinct(cpo) -> None:
    suffixed = Location.objects.filter(cpo=cpo, ocpi_id__regex=r"^DE-BNA-[0-9a-f]{12}-[0-9]+$")
    assert suffixed.count() > 500
    location = suffixed.first()
    original = Location.objects.get(cpo=cpo, ocpi_id=location.ocpi_id.rsplit("-", 1)[0])
    assert (location.address, location.address_lat) == (original.address, original.address_lat)
    assert all(uid.startswith(location.ocpi_id + "-") for uid in location.evses.values_list("uid", flat=True))


def test_the_command_imports_a_register_and_says_rows_were_skipped(shared_data):
    _cpo("DE")
    out = io.StringIO()
    with pytest.raises(CommandError) as skipped:
        call_command("import_locations", str(shared_data / "locations" / "de-bnetza-2017-04-11.csv"),
                     "--cpo", "REG", "--format", "bnetza", "--skip-invalid", stdout=out)
    assert skipped.value.returncode == 2
    assert "outside Germany" in out.getvalue()
    assert "committed" in out.getvalue()
    # Without --skip-invalid the same file is all or nothing: its 3 bad rows keep everything out.
    with pytest.raises(CommandError) as refused:
        call_command("import_locations", str(shared_data / "locations" / "de-bnetza-2017-04-11.csv"),
                     "--cpo", "REG", "--format", "bnetza", "--dry-run", stdout=io.StringIO())
    assert refused.value.returncode == 1


# --------------------------------------------------------------------------- formats as published

FORMATS = [
    ("de-bnetza-2017-04-11.csv", "bnetza"),
    ("de-bnetza-2019-07-19.csv", "bnetza"),
    ("uk-ncr.csv", "uk-ncr"),
    ("us-afdc-stations.csv", "afdc"),
]


@pytest.mark.parametrize(("name", "expected"), FORMATS, ids=[name for name, _ in FORMATS])
def test_each_real_register_is_told_by_its_header(shared_data, name, expected):
    with (shared_data / "locations" / name).open("rb") as file:
        assert detect_format(file) == expected
        assert file.tell() == 0


def _as_workbook(path, records, tmp_path):
    """The export as its publisher's Excel workbook holds it: each CSV record one sheet row."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    for _, cells in records:
        sheet.append([cell or None for cell in cells])
    target = tmp_path / (path.stem + ".xlsx")
    workbook.save(target)
    return target


@pytest.mark.parametrize(("name", "delimiter", "read_csv", "read_workbook", "lines"), [
    ("de-bnetza-2019-07-19.csv", ";", iter_bnetza_locations, iter_bnetza_workbook, None),
    ("us-afdc-stations.csv", ",", iter_afdc_locations, iter_afdc_workbook, 10_000),
], ids=["bnetza-2019", "afdc"])
def test_a_real_register_as_a_workbook_gives_the_same_locations(shared_data, tmp_path, capsys, name, delimiter,
                                                                 read_csv, read_workbook, lines):
    path = shared_data / "locations" / name
    with path.open("rb") as file:
        records = list(itertools.islice(csv_records(decoded_lines(file), delimiter=delimiter),
                                        lines + 1 if lines else None))
    workbook = _as_workbook(path, records, tmp_path)
    with path.open("rb") as file:
        expected = [(r.location, r.error and [reason for *_, reason in r.error])
                    for r in itertools.islice(read_csv(file), lines)]
    started = time.perf_counter()
    with workbook.open("rb") as file:
        got = [(r.location, r.error and [reason for *_, reason in r.error]) for r in read_workbook(file)]
    seconds = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n{workbook.name}: {len(got):,} rows read from the workbook in {seconds:.1f} s "
              f"({len(got) / seconds:,.0f} rows/s)")
    assert len(got) == len(expected) > 1000
    assert got == expected


def test_the_command_imports_a_real_register_without_being_told_its_format(shared_data):
    _cpo("GB")
    out = io.StringIO()
    with pytest.raises(CommandError) as skipped:
        call_command("import_locations", str(shared_data / "locations" / "uk-ncr.csv"), "--cpo", "REG",
                     "--country", "GB", "--skip-invalid", stdout=out)
    assert skipped.value.returncode == 2
    assert "uk-ncr layout, told from its header" in out.getvalue() and "committed" in out.getvalue()

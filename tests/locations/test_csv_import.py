"""CSV import of locations (`locations.csv_import`) and the `import_locations` command."""

from __future__ import annotations

import csv
import io
import json
import os
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from locations import services
from locations.csv_import import COLUMNS, RowError, csv_template, importer, locations_import_csv
from locations.enums import Moderation
from locations.models import Connector, Evse, Location
from tests.conftest import location_payload

pytestmark = [pytest.mark.django_db]


def row(location: int = 1, evse: int = 1, connector: int = 1, **overrides) -> dict:
    """A valid evhub row: connector `connector` of EVSE `evse` of location `location`."""
    values = {
        "location_id": f"LOC{location}", "name": f"Ladepark {location}", "address": f"Hauptstraße {location}",
        "city": "Mannheim", "postal_code": "68159", "country": "DE", "latitude": f"49.{490000 + location:06d}",
        "longitude": "8.468098", "parking_type": "PARKING_LOT", "facilities": "CAFE|WIFI",
        "evse_uid": f"LOC{location}-{evse}", "evse_id": f"DE*ALP*E{location:04d}{evse}", "evse_status": "AVAILABLE",
        "capabilities": "RFID_READER", "connector_id": str(connector), "standard": "TYPE_2", "format": "SOCKET",
        "power_type": "AC_3_PHASE", "max_voltage": "230", "max_amperage": "32", "max_electric_power": "22000",
    }
    values.update(overrides)
    return values


def grid(locations: int, evses: int = 2, connectors: int = 2, first: int = 1) -> list[dict]:
    return [row(loc, evse, conn) for loc in range(first, first + locations)
            for evse in range(1, evses + 1) for conn in range(1, connectors + 1)]


def as_csv(rows: list[dict], *, delimiter: str = ",", columns: list[str] = COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, delimiter=delimiter, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def run(cpo, content: bytes | str, **options):
    file = io.BytesIO(content) if isinstance(content, bytes) else io.StringIO(content)
    return locations_import_csv(cpo=cpo, file=file, **options)


def stored(cpo) -> list:
    """Every stored row of the CPO's locations, EVSEs and connectors, all fields included."""
    locations = Location.objects.filter(cpo=cpo).order_by("pk")
    return [
        list(locations.values()),
        list(Evse.objects.filter(location__cpo=cpo).order_by("pk").values()),
        list(Connector.objects.filter(evse__location__cpo=cpo).order_by("pk").values()),
        [sorted(location.facilities.values_list("code", flat=True)) for location in locations],
    ]


# --- Success ------------------------------------------------------------------------------------

def test_a_file_becomes_locations_evses_and_connectors(alpha):
    report = run(alpha, as_csv(grid(3)))

    assert (report.rows, report.locations, report.created, report.updated, report.error_count) == (12, 3, 3, 0, 0)
    assert report.committed
    location = Location.objects.get(cpo=alpha, ocpi_id="LOC2")
    assert (location.name, location.country, location.time_zone) == ("Ladepark 2", "DEU", "Europe/Berlin")
    assert location.moderation == Moderation.PENDING
    assert sorted(location.facilities.values_list("code", flat=True)) == ["CAFE", "WIFI"]
    assert location.last_updated is not None
    evse = location.evses.get(uid="LOC2-1")
    assert (evse.evse_id, evse.status) == ("DE*ALP*E00021", "AVAILABLE")
    connectors = evse.connectors.order_by("connector_id")
    assert [(c.connector_id, c.standard, c.max_amperage, c.max_electric_power) for c in connectors] == [
        ("1", "IEC_62196_T2", 32, 22000), ("2", "IEC_62196_T2", 32, 22000)]
    assert Connector.objects.filter(evse__location__cpo=alpha).count() == 12


def test_the_same_file_twice_changes_nothing(alpha):
    content = as_csv(grid(4))
    run(alpha, content)
    before = stored(alpha)

    report = run(alpha, content)

    assert (report.created, report.updated, report.unchanged, report.locations) == (0, 0, 4, 4)
    assert stored(alpha) == before


def test_a_row_naming_an_existing_location_updates_it_and_keeps_its_other_evses(alpha):
    services.location_upsert(cpo=alpha, data=location_payload(alpha, "LOC1"))
    stamp = Location.objects.get(ocpi_id="LOC1").last_updated

    report = run(alpha, as_csv([row(1, name="Ladepark Neu"), row(1, connector=2, name="Ladepark Neu")]))

    assert (report.created, report.updated) == (0, 1)
    location = Location.objects.get(cpo=alpha, ocpi_id="LOC1")
    assert location.name == "Ladepark Neu"
    assert location.last_updated > stamp
    assert sorted(location.evses.values_list("uid", flat=True)) == ["LOC1-1", "LOC1-E1"]


def test_a_last_updated_column_stamps_connectors_evses_and_location(alpha):
    rows = [row(1, last_updated="2024-05-01T10:00:00Z"), row(1, connector=2, last_updated="2024-05-02T10:00:00Z")]
    run(alpha, as_csv(rows))
    location = Location.objects.get(cpo=alpha)
    assert location.last_updated.isoformat() == "2024-05-02T10:00:00+00:00"
    assert location.evses.get().last_updated == location.last_updated


def test_the_template_imports_as_it_is(alpha):
    report = run(alpha, csv_template())
    assert (report.error_count, report.locations, report.created) == (0, 1, 1)
    location = Location.objects.get(cpo=alpha)
    assert location.evses.count() == 2


# --- Errors and all-or-nothing -------------------------------------------------------------------

def test_an_error_in_row_90_of_100_rolls_back_everything_and_names_row_column_value_reason(alpha):
    rows = grid(25)
    rows[89]["max_amperage"] = "lots"  # the 90th data row: line 91, under the header

    report = run(alpha, as_csv(rows))

    assert not report.committed
    assert Location.objects.filter(cpo=alpha).count() == 0
    assert report.error_count == 1
    [error] = report.errors
    assert (error.row, error.column, error.value) == (91, "max_amperage", "lots")
    assert "must be an integer" in error.reason
    assert (report.rows, report.locations) == (100, 24)  # counted as if written: the other 24 were valid


def test_errors_map_back_to_the_row_that_supplied_the_value(alpha):
    rows = [
        row(1),
        row(1, connector=2, evse_status="", latitude=""),  # empty cells take the values above
        row(2, evse_status="WORKING"),  # an EVSE field, on the EVSE's first row
        row(2, connector=2, name="Other name", evse_status=""),  # contradicts the location's first row
        row(3, latitude="91.000000"),
        row(4, time_zone="Mars/Olympus"),
        row(5, evse=1, connector=1, standard="TYPE_9"),
    ]
    report = run(alpha, as_csv(rows))

    found = {(e.row, e.column, e.value) for e in report.errors}
    assert found == {
        (4, "evse_status", "WORKING"),
        (5, "name", "Other name"),
        (6, "latitude", "91.000000"),
        (7, "time_zone", "Mars/Olympus"),
        (8, "standard", "TYPE_9"),
    }
    assert "differs from 'Ladepark 2' given for this location in row 4" in [
        e.reason for e in report.errors if e.column == "name"][0]


def test_the_rows_of_a_location_must_be_together(alpha):
    report = run(alpha, as_csv([row(1), row(2), row(1, connector=2)]))
    assert [(e.row, e.column) for e in report.errors] == [(4, "location_id")]
    assert "already had rows from row 2" in report.errors[0].reason
    assert not report.committed


def test_a_country_with_several_clocks_needs_a_time_zone(alpha):
    report = run(alpha, as_csv([row(1, country="ES", latitude="40.416775", longitude="-3.703790")]))
    [error] = report.errors
    assert error.column == "time_zone"
    assert "is required" in error.reason and "Atlantic/Canary" in error.reason


def test_missing_columns_are_one_error_naming_them(alpha):
    columns = [c for c in COLUMNS if c not in ("latitude", "standard")]
    report = run(alpha, as_csv(grid(1), columns=columns))
    assert report.error_count == 1
    assert "latitude" in report.errors[0].reason and "standard" in report.errors[0].reason
    assert report.errors[0].row == 1
    assert not report.committed


@pytest.mark.parametrize("garbage", [
    os.urandom(4096),
    b"PK\x03\x04" + os.urandom(500),  # an .xlsx
    b"\x00\x01\x02\x03" * 100,
])
def test_binary_garbage_is_one_clear_error(alpha, garbage):
    report = run(alpha, garbage)
    assert report.error_count == 1
    assert "not CSV" in report.errors[0].reason
    assert not report.committed and report.rows == 0


def test_an_empty_file_is_an_error(alpha):
    report = run(alpha, b"")
    assert report.error_count == 1 and "empty" in report.errors[0].reason


def test_too_many_rows_is_an_error(alpha, settings):
    settings.EVHUB_CSV_MAX_ROWS = 6
    report = run(alpha, as_csv(grid(2)))
    assert not report.committed
    assert Location.objects.count() == 0
    assert any("more than 6 rows" in e.reason and "EVHUB_CSV_MAX_ROWS" in e.reason for e in report.errors)


def test_a_file_over_the_size_limit_is_an_error(alpha, settings):
    settings.EVHUB_CSV_MAX_BYTES = 2000
    content = as_csv(grid(10))
    assert len(content) > 2000
    report = run(alpha, content)
    assert not report.committed
    assert Location.objects.count() == 0
    assert "larger than 2,000 bytes" in report.errors[-1].reason


def test_a_cell_over_the_length_limit_is_an_error(alpha, settings):
    settings.EVHUB_CSV_MAX_CELL_CHARS = 300
    report = run(alpha, as_csv([row(1, name="x" * 301)]))
    [error] = report.errors
    assert (error.row, error.column) == (2, "name")
    assert "301 characters" in error.reason


def test_errors_are_capped_but_counted(alpha, monkeypatch):
    monkeypatch.setattr("locations.csv_import.report.MAX_REPORTED_ERRORS", 5)
    rows = [row(i, max_voltage="x") for i in range(1, 21)]
    report = run(alpha, as_csv(rows))
    assert (len(report.errors), report.error_count) == (5, 20)
    json.dumps(report.as_dict())


# --- What spreadsheets do to files ---------------------------------------------------------------

def test_a_byte_order_mark_is_dropped(alpha):
    report = run(alpha, b"\xef\xbb\xbf" + as_csv(grid(1)))
    assert report.error_count == 0 and report.created == 1


def test_semicolons_with_decimal_commas(alpha):
    rows = [row(1, latitude="49,494409", longitude="8,468098", kwh="1234,5")]
    report = run(alpha, as_csv(rows, delimiter=";"))
    assert report.error_count == 0, report.errors
    location = Location.objects.get(cpo=alpha)
    assert (location.address_lat, location.address_lng) == (49.494409, 8.468098)
    assert location.evses.get().kwh == Decimal("1234.50")


def test_a_windows_code_page_file_and_a_text_file_are_read(alpha, bravo):
    content = as_csv([row(1, address="Große Straße 1")]).decode()
    assert run(alpha, content.encode("cp1252")).error_count == 0
    assert run(bravo, content).error_count == 0
    for cpo in (alpha, bravo):
        assert Location.objects.get(cpo=cpo).address == "Große Straße 1"


@pytest.mark.parametrize("encoding, names", [
    ("shift_jis", "shift_jis (Japanese)"), ("gbk", "gbk (Chinese)"),
])
def test_an_east_asian_code_page_is_refused_not_stored_as_mojibake(alpha, encoding, names):
    rows = [row(n, name=name, address=address) for n, (name, address) in enumerate([
        ("東京駅 充電スタンド", "丸の内一丁目 9-1"), ("新宿 駐車場", "西新宿二丁目 8-1"),
        ("横浜 みなとみらい", "みなとみらい三丁目 1-1")], start=1)]
    content = as_csv(rows).decode().encode(encoding)
    report = run(alpha, content)
    assert not report.committed and names in str(report.errors[0]) and "CSV UTF-8" in str(report.errors[0])
    assert not Location.objects.filter(cpo=alpha).exists()


def test_western_text_with_typographic_quotes_is_still_windows_1252(alpha):
    content = as_csv([row(1, name="„Ladesäule“ am Dom – 24/7 €", address="Domplatz 1")]).decode()
    report = run(alpha, content.encode("cp1252"))
    assert report.error_count == 0, report.errors
    assert Location.objects.get(cpo=alpha).name == "„Ladesäule“ am Dom – 24/7 €"


def test_formulas_are_neutralised_in_text_but_not_in_numbers(alpha):
    rows = [row(1, name='=HYPERLINK("http://evil.example","x")', address="+1-1 Main Street", city="@SUM(A1)",
                postal_code="-x", country="GB", latitude="51.507351", longitude="-0.127758")]
    report = run(alpha, as_csv(rows))
    assert report.error_count == 0, report.errors
    location = Location.objects.get(cpo=alpha)
    assert location.name == '\'=HYPERLINK("http://evil.example","x")'
    assert (location.address, location.city, location.postal_code) == ("'+1-1 Main Street", "'@SUM(A1)", "'-x")
    assert location.address_lng == -0.127758
    assert location.time_zone == "Europe/London"


def test_a_formula_in_a_numeric_cell_is_refused_not_neutralised(alpha):
    report = run(alpha, as_csv([row(1, max_voltage="=2*115")]))
    [error] = report.errors
    assert (error.column, error.value) == ("max_voltage", "=2*115")


# --- Dry run, tenants, queries ------------------------------------------------------------------

def test_a_dry_run_counts_and_writes_nothing(alpha):
    report = run(alpha, as_csv(grid(3)), dry_run=True)
    assert (report.created, report.error_count, report.committed) == (3, 0, False)
    assert Location.objects.count() == Evse.objects.count() == Connector.objects.count() == 0


# serialized_rollback: the seeded lookup tables must be there whatever transactional test ran before.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_import_that_is_the_whole_transaction_commits_or_rolls_back_whole(alpha):
    # Outside any caller's transaction the import checks foreign keys statement by statement.
    rows = grid(3)
    rows[9]["standard"] = "TYPE_9"
    assert not run(alpha, as_csv(rows)).committed
    assert Location.objects.count() == Evse.objects.count() == Connector.objects.count() == 0
    report = run(alpha, as_csv(grid(3)))
    assert report.committed and (Location.objects.count(), Connector.objects.count()) == (3, 12)


def test_skip_invalid_keeps_the_valid_locations(alpha):
    rows = grid(3)
    rows[5]["max_amperage"] = "lots"
    report = run(alpha, as_csv(rows), skip_invalid=True)
    assert report.committed and report.error_count == 1
    assert sorted(Location.objects.values_list("ocpi_id", flat=True)) == ["LOC1", "LOC3"]


def test_an_import_never_touches_another_cpos_locations_of_the_same_ids(alpha, bravo):
    run(alpha, as_csv(grid(2)))
    alphas = stored(alpha)

    report = run(bravo, as_csv([{**r, "name": "Bravo's", "evse_id": ""} for r in grid(2)]))

    assert report.created == 2
    assert stored(alpha) == alphas
    assert Location.objects.filter(ocpi_id="LOC1").count() == 2
    assert set(Location.objects.filter(cpo=bravo).values_list("name", flat=True)) == {"Bravo's"}


def test_queries_grow_with_batches_not_with_rows(alpha, monkeypatch, django_assert_max_num_queries):
    monkeypatch.setattr(importer, "BATCH_LOCATIONS", 5)
    run(alpha, as_csv(grid(1, first=900)))  # warms the per-process lookup caches
    with django_assert_max_num_queries(1000) as one_batch:
        assert run(alpha, as_csv(grid(5))).created == 5
    per_batch = len(one_batch.captured_queries)
    with django_assert_max_num_queries(3 * per_batch):
        assert run(alpha, as_csv(grid(15, first=100))).created == 15
    with django_assert_max_num_queries(3 * per_batch):
        assert run(alpha, as_csv(grid(15, first=100))).unchanged == 15


# --- The command --------------------------------------------------------------------------------

def _file(tmp_path, content: bytes):
    path = tmp_path / "locations.csv"
    path.write_bytes(content)
    return str(path)


def test_the_command_imports_and_prints_the_counts(alpha, tmp_path):
    out = io.StringIO()
    call_command("import_locations", _file(tmp_path, as_csv(grid(2))), "--cpo", "alp", stdout=out)
    assert "8 rows, 2 locations: 2 created, 0 updated, 0 unchanged; 0 error(s); committed" in out.getvalue()
    assert Location.objects.filter(cpo=alpha).count() == 2


def test_the_command_dry_run_writes_nothing(alpha, tmp_path):
    out = io.StringIO()
    call_command("import_locations", _file(tmp_path, as_csv(grid(2))), "--cpo", "ALP", "--country", "de",
                 "--dry-run", stdout=out)
    assert "2 created" in out.getvalue() and "dry run, nothing written" in out.getvalue()
    assert Location.objects.count() == 0


def test_the_command_with_errors_prints_them_and_exits_non_zero(alpha, tmp_path):
    rows = grid(2)
    rows[3]["max_voltage"] = "-5"
    out = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("import_locations", _file(tmp_path, as_csv(rows)), "--cpo", "ALP", "--dry-run", stdout=out)
    assert failure.value.returncode == 1
    assert "row 5, max_voltage, '-5': must be between 0 and 2147483647" in out.getvalue()
    assert Location.objects.count() == 0


def test_the_command_refuses_an_unknown_cpo(alpha, tmp_path):
    with pytest.raises(CommandError, match="no CPO with party id 'XYZ'"):
        call_command("import_locations", _file(tmp_path, as_csv(grid(1))), "--cpo", "XYZ")
    with pytest.raises(CommandError, match="in country FR"):
        call_command("import_locations", _file(tmp_path, as_csv(grid(1))), "--cpo", "ALP", "--country", "FR")


def test_report_rows_are_plain_data():
    error = RowError(5, "max_voltage", "-5", "must be 0 or more")
    assert str(error) == "row 5, max_voltage, '-5': must be 0 or more"
    assert str(RowError(0, "", "", "this is a binary file")) == "file: this is a binary file"


# --- National registers -------------------------------------------------------------------------

BNETZA_2017 = "\r\n".join([
    "Ladesäulenregister Bundesnetzagentur;;;;;;;;;;;;;;;",
    '"=""Stand: 11.04.2017""";;;;;;;;;;;;;;;',
    "Allgemeine Informationen;;;;;;1. Ladepunkt;;2. Ladepunkt;;3. Ladepunkt;;4. Ladepunkt;;;",
    "Betreiber;Standort;Längengrad [DG];Breitengrad [DG];Art der Ladeeinrichtung;Anzahl Ladepunkte;"
    "Steckertypen 1;P1 [kW];Steckertypen 2;P2 [kW];Steckertypen 3;P3 [kW];Steckertypen 4#;P4 [kW];;",
    # two stations at one spot: identical rows (lines 5 and 6)
    "Stromnetz Hamburg GmbH;Heilwigstraße, 2, 20249, Hamburg;9,996298;53,580799;Normalladeeinrichtung;2;"
    "AC Steckdose Typ 2, AC Schuko;22;AC Steckdose Typ 2, AC Schuko;22;;;;;;",
    "Stromnetz Hamburg GmbH;Heilwigstraße, 2, 20249, Hamburg;9,996298;53,580799;Normalladeeinrichtung;2;"
    "AC Steckdose Typ 2, AC Schuko;22;AC Steckdose Typ 2, AC Schuko;22;;;;;;",
    # line 7: 58° N is in Norway
    "Stadt Wolfsburg;Otto-Wels-Platz, 38440 Wolfsburg;6,218603;58,096363;Normalladeeinrichtung;2;"
    "AC Kupplung Typ 2;22;DC Kupplung Combo;20;;;;;;",
    "",
]).encode("utf-8")


def test_a_register_keeps_stations_sharing_an_id_apart_and_stamps_them_with_the_export_date(alpha):
    report = run(alpha, BNETZA_2017, format="bnetza", skip_invalid=True)

    assert (report.rows, report.created, report.error_count, report.committed) == (3, 2, 1, True)
    assert (report.errors[0].row, report.errors[0].reason) == (7, "outside Germany")
    first, second = Location.objects.filter(cpo=alpha).order_by("pk")
    assert second.ocpi_id == first.ocpi_id + "-2"
    assert sorted(second.evses.values_list("uid", flat=True)) == [second.ocpi_id + "-1", second.ocpi_id + "-2"]
    assert first.last_updated.isoformat() == second.last_updated.isoformat() == "2017-04-11T00:00:00+00:00"

    before = stored(alpha)
    again = run(alpha, BNETZA_2017, format="bnetza", skip_invalid=True)
    assert (again.unchanged, again.locations) == (2, 2)
    assert stored(alpha) == before


def test_a_register_with_errors_is_all_or_nothing_without_skip_invalid(alpha):
    report = run(alpha, BNETZA_2017, format="bnetza")
    assert not report.committed and Location.objects.count() == 0


def test_a_file_that_is_not_the_register_named_is_one_error(alpha):
    report = run(alpha, as_csv(grid(1)), format="bnetza")
    assert report.error_count == 1 and "not a bnetza register export" in report.errors[0].reason


def test_an_unreadable_header_is_one_error(alpha):
    report = run(alpha, b'"' + b"x" * 200_000 + b"\n")
    assert report.error_count == 1 and "unreadable CSV" in report.errors[0].reason


def test_an_update_by_csv_keeps_the_fields_the_file_has_no_column_for(alpha):
    from locations import services
    from locations.models import Location
    from tests.conftest import location_payload

    hours = {"twentyfourseven": True}
    data = location_payload(alpha, "BER-ALEX-01", opening_times=hours, operator={"name": "Alpha Operations"})
    data["evses"][0].update(uid="BER-ALEX-01-1", floor_level="-1")
    services.location_upsert(cpo=alpha, data=data)
    from locations.csv_import import csv_template, locations_import_csv
    import io

    report = locations_import_csv(cpo=alpha, file=io.BytesIO(csv_template().encode()))
    assert report.error_count == 0 and report.updated == 1
    location = Location.objects.get(cpo=alpha, ocpi_id="BER-ALEX-01")
    assert location.name == "Ladepark Alexanderplatz"
    assert location.opening_times == hours and location.operator == {"name": "Alpha Operations"}
    assert location.evses.get(uid="BER-ALEX-01-1").floor_level == "-1"


def _given_only_reference(clean: dict, data: dict, sources: dict) -> dict:
    # The rule as first written (per key, per object), against which the cached key sets are checked.
    kept = {key: value for key, value in clean.items()
            if key in services.ALWAYS_KEPT or any(source in data for source in sources.get(key, (key,)))}
    if "evses" in kept:
        kept["evses"] = [_given_only_reference(evse, raw, services.EVSE_SOURCES)
                         for evse, raw in zip(kept["evses"], data["evses"])]
    if "connectors" in kept:
        kept["connectors"] = [_given_only_reference(connector, raw, services.CONNECTOR_SOURCES)
                              for connector, raw in zip(kept["connectors"], data["connectors"])]
    return kept


@pytest.mark.parametrize("drop", [(), ("name", "postal_code", "facilities"), ("parking_type", "region"),
                                  ("state",), ("evse_id", "capabilities"), ("max_electric_power", "tariff_ids")])
def test_given_only_keeps_the_same_fields_as_the_per_key_rule(drop):
    from types import SimpleNamespace

    from locations.validation import clean_location

    data = location_payload(SimpleNamespace(country_code="DE", party_id="ABC"), "GIVEN1")
    data.update(parking_type="PARKING_LOT", facilities=["CAFE"], state="Berlin")
    for evse in data["evses"]:
        evse.update(evse_id="DE*ABC*E1", capabilities=["RFID_READER"])
        for connector in evse["connectors"]:
            connector.update(max_electric_power=22000, tariff_ids=["T1"])
    for obj in [data, *data["evses"], *(c for evse in data["evses"] for c in evse["connectors"])]:
        for key in drop:
            obj.pop(key, None)
    clean = clean_location(data, stamped=False)
    for _ in range(2):  # computed, then from the cache
        assert services._given_only(clean, data, services.LOCATION_SOURCES) == \
            _given_only_reference(clean, data, services.LOCATION_SOURCES)

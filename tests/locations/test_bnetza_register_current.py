"""The BNetzA register as it has been published since 2021: split address columns, and since 2023
the Ladeeinrichtungs-ID, status, opening hours, payment, parking and an EVSE id per charge point; as
CSV in Windows-1252 and in UTF-8 with a BOM, and as an Excel workbook.

Every row here is made up for the test (operators, streets and ids are not real ones); the layouts,
the preamble and the values' vocabulary are the register's.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime

import pytest
from openpyxl import Workbook

from locations.registers import register_location
from locations.registers.bnetza import (
    LAYOUT_2021,
    detect_layout,
    is_header,
    iter_bnetza_locations,
    iter_bnetza_workbook,
)
from locations.validation import clean_location

COLUMNS_2023 = [
    "Ladeeinrichtungs-ID", "Betreiber", "Anzeigename (Karte)", "Status", "Art der Ladeeinrichtung",
    "Anzahl Ladepunkte", "Nennleistung Ladeeinrichtung [kW]", "Inbetriebnahmedatum", "Straße", "Hausnummer",
    "Adresszusatz", "Postleitzahl", "Ort", "Kreis/kreisfreie Stadt", "Bundesland", "Breitengrad", "Längengrad",
    "Standortbezeichnung", "Informationen zum Parkraum", "Bezahlsysteme", "Öffnungszeiten",
    "Öffnungszeiten: Wochentage", "Öffnungszeiten: Tageszeiten",
    *(f"{name}{n}" for n in range(1, 7) for name in ("Steckertypen", "Nennleistung Stecker", "EVSE-ID", "Public Key")),
]
COLUMNS_2021 = [
    "Betreiber", "Straße", "Hausnummer", "Adresszusatz", "Postleitzahl", "Ort", "Bundesland", "Kreis/kreisfreie Stadt",
    "Breitengrad", "Längengrad", "Inbetriebnahmedatum", "Nennleistung Ladeeinrichtung [kW]", "Art der Ladeeinrichung",
    "Anzahl Ladepunkte", *(f"{name}" for n in range(1, 5) for name in (f"Steckertypen{n}", f"P{n} [kW]", f"Public Key{n}")),
]
PREAMBLE_2023 = [
    ["Ladesäulenregister Bundesnetzagentur"], [], ["Hinweis: "],
    ["Die Liste beinhaltet die Ladeeinrichtungen aller Betreiberinnen und Betreiber, die das Anzeigeverfahren "
     "der Bundesnetzagentur "],
    ["zum Zeitpunkt der Aktualisierung vollständig abgeschlossen haben. "], [],
    ["Letzte Aktualisierung vom: 01.09.2026"], [],
    ["Allgemeine Informationen", *[""] * 22, "1. Ladepunkt", "", "", "", "2. Ladepunkt"],
]
HEADER_ROW = len(PREAMBLE_2023) + 1
KEY = "04A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F"

BASE = {
    "Betreiber": "Stadtwerke Musterstadt GmbH", "Status": "In Betrieb", "Art der Ladeeinrichtung": "Normalladeeinrichtung",
    "Anzahl Ladepunkte": "2", "Nennleistung Ladeeinrichtung [kW]": "44", "Inbetriebnahmedatum": "05.02.2021",
    "Straße": "Am Beispielpark", "Hausnummer": "12", "Postleitzahl": "24103", "Ort": "Kiel",
    "Kreis/kreisfreie Stadt": "Kreisfreie Stadt Kiel", "Bundesland": "Schleswig-Holstein",
    "Breitengrad": "54,321098", "Längengrad": "10,123456", "Informationen zum Parkraum": "Keine Beschränkung",
    "Bezahlsysteme": "Onlinezahlungsverfahren;RFID-Karte", "Öffnungszeiten": "247",
    "Steckertypen1": "AC Typ 2 Steckdose", "Nennleistung Stecker1": "22", "EVSE-ID1": "DE*SWM*E1000001*1",
    "Public Key1": KEY, "Steckertypen2": "AC Typ 2 Steckdose", "Nennleistung Stecker2": "22",
    "EVSE-ID2": "DE*SWM*E1000001*2", "Public Key2": KEY,
}
WEEK = "Montag; Dienstag; Mittwoch; Donnerstag; Freitag; Samstag; Sonntag"
STATIONS = [
    # 0: two AC charge points, 24/7, EVSE ids, a Windows-1252 character (ß) in the street
    {**BASE, "Ladeeinrichtungs-ID": "1000001", "Anzeigename (Karte)": "Musterstrom", "Straße": "Große Straße",
     "Adresszusatz": "Parkplatz am Rathaus", "Standortbezeichnung": "Rathaus Kiel",
     "Öffnungszeiten: Wochentage": WEEK, "Öffnungszeiten: Tageszeiten": "; ".join(["00:00-23:59"] * 7)},
    # 1: a fast charger, CCS and CHAdeMO with a power each, in maintenance, limited hours
    {**BASE, "Ladeeinrichtungs-ID": "1000002", "Status": "In Wartung", "Art der Ladeeinrichtung": "Schnellladeeinrichtung",
     "Anzahl Ladepunkte": "1", "Inbetriebnahmedatum": "01.03.2023", "Straße": "Hauptstraße", "Hausnummer": "1a",
     "Postleitzahl": "01069", "Ort": "Dresden", "Bundesland": "Sachsen", "Breitengrad": "51,05", "Längengrad": "13,73",
     "Informationen zum Parkraum": "Nur für Kunden", "Öffnungszeiten": "Eingeschränkt",
     "Bezahlsysteme": "Kreditkarte (NFC);Debitkarte (NFC);Onlinezahlungsverfahren;RFID-Karte",
     "Öffnungszeiten: Wochentage": "Montag; Dienstag; Mittwoch; Donnerstag; Freitag; Samstag",
     "Öffnungszeiten: Tageszeiten": "; ".join(["07:00-20:00"] * 5 + ["22:00-06:00"]),
     "Steckertypen1": "DC Fahrzeugkupplung Typ Combo 2 (CCS); DC CHAdeMO", "Nennleistung Stecker1": "150; 50",
     "EVSE-ID1": "DE*SCH*E1000002*1\n", "Steckertypen2": "", "Nennleistung Stecker2": "", "EVSE-ID2": "",
     "Public Key2": ""},
    # 2: decommissioned; EVSE ids that are no eMI3 ids; a Tiefgarage; "Keine Angabe"
    {**BASE, "Ladeeinrichtungs-ID": "1000003", "Status": "Stillgelegt", "Öffnungszeiten": "Keine Angabe",
     "Informationen zum Parkraum": "Tiefgarage, nur für Mieter", "EVSE-ID1": "DE SWM 24D 006",
     "EVSE-ID2": "DE*SWM*E1000003*2; DE*SWM*E1000003*3", "Bezahlsysteme": ""},
    # 3: Germany's coordinates abroad
    {**BASE, "Ladeeinrichtungs-ID": "1000004", "Breitengrad": "58,1", "Längengrad": "6,2"},
]


def _cells(columns, station):
    return [station.get(column, "") for column in columns]


def _csv_text(columns=COLUMNS_2023, stations=STATIONS, preamble=PREAMBLE_2023) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    width = len(columns)
    for row in preamble:
        writer.writerow(row + [""] * (width - len(row)))
    writer.writerow(columns)
    for station in stations:
        writer.writerow(_cells(columns, station))
    return out.getvalue()


def _typed(column: str, text: str):
    """A cell as Excel keeps it: numbers, dates and postcodes as numbers (a postcode's 0 lost)."""
    if not text:
        return None
    if column == "Inbetriebnahmedatum":
        return datetime.strptime(text, "%d.%m.%Y")
    if column in ("Breitengrad", "Längengrad"):
        return float(text.replace(",", "."))
    if column in ("Ladeeinrichtungs-ID", "Postleitzahl", "Anzahl Ladepunkte", "Nennleistung Stecker1") and text.isdigit():
        return int(text)
    return text


def _xlsx(columns=COLUMNS_2023, stations=STATIONS, preamble=PREAMBLE_2023) -> io.BytesIO:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Ladesäulenregister"
    for row in preamble:
        sheet.append([cell or None for cell in row])
    sheet.append(columns)
    for station in stations:
        sheet.append([_typed(column, text) for column, text in zip(columns, _cells(columns, station))])
    out = io.BytesIO()
    workbook.save(out)
    out.seek(0)
    return out


def _read_csv(raw: bytes, **kwargs):
    return list(iter_bnetza_locations(io.BytesIO(raw), **kwargs))


@pytest.fixture(scope="module")
def rows():
    """The results of `STATIONS`, in their order."""
    return _read_csv(_csv_text().encode("cp1252"))


# --------------------------------------------------------------------------- the header


def test_the_header_is_found_by_its_column_names_after_the_ten_row_preamble(rows):
    assert is_header(COLUMNS_2023) and is_header(COLUMNS_2021)
    assert detect_layout(COLUMNS_2023) == detect_layout(COLUMNS_2021) == LAYOUT_2021
    assert rows[0].row == HEADER_ROW + 1 and len(rows) == len(STATIONS)


def test_the_preamble_rows_are_handed_over_for_the_export_date():
    seen = []
    list(iter_bnetza_locations(io.StringIO(_csv_text(), newline=""), on_preamble=seen.append))
    assert [cells[0] for cells in seen if cells[0].startswith("Letzte")] == ["Letzte Aktualisierung vom: 01.09.2026"]
    assert len(seen) == len(PREAMBLE_2023)


def test_windows_1252_utf8_with_bom_and_text_give_the_same_rows(rows):
    text = _csv_text()
    expected = [(r.row, r.location, r.error, r.warnings) for r in rows]
    for raw in (b"\xef\xbb\xbf" + text.encode("utf-8"), text.encode("utf-8")):
        assert [(r.row, r.location, r.error, r.warnings) for r in _read_csv(raw)] == expected
    from_text = iter_bnetza_locations(io.StringIO("\ufeff" + text, newline=""))
    assert [(r.row, r.location, r.error, r.warnings) for r in from_text] == expected


# --------------------------------------------------------------------------- a station


def test_a_2023_row_becomes_a_location_with_the_registers_id(rows):
    location = rows[0].location
    assert location["id"] == "DE-BNA-1000001"
    assert location["name"] == "Rathaus Kiel"  # Standortbezeichnung
    assert (location["address"], location["postal_code"], location["city"], location["state"]) == (
        "Große Straße 12", "24103", "Kiel", "Schleswig-Holstein")
    assert location["coordinates"] == {"latitude": "54.321098", "longitude": "10.123456"}
    assert location["directions"] == [{"language": "de", "text": "Parkplatz am Rathaus"}]
    assert location["operator"] == {"name": "Stadtwerke Musterstadt GmbH"}
    assert location["last_updated"] == "2021-02-05T00:00:00Z" and location["publish"] is True


def test_without_a_site_name_the_map_name_and_street_name_the_location(rows):
    assert rows[1].location["name"] == "Stadtwerke Musterstadt GmbH, Hauptstraße 1a"
    station = {**STATIONS[0], "Standortbezeichnung": ""}
    (row,) = _read_csv(_csv_text(stations=[station]).encode("utf-8"))
    assert row.location["name"] == "Musterstrom, Große Straße 12"


def test_each_charge_point_is_an_evse_with_its_emi3_id(rows):
    first, second = rows[0].location["evses"]
    assert (first["uid"], first["evse_id"]) == ("DE-BNA-1000001-1", "DE*SWM*E1000001*1")
    assert (second["uid"], second["evse_id"]) == ("DE-BNA-1000001-2", "DE*SWM*E1000001*2")
    assert first["connectors"] == [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                                    "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 32,
                                    "max_electric_power": 22000}]


def test_an_evse_id_cell_with_a_line_break_keeps_its_id_and_the_rows_keep_their_lines(rows):
    (evse,) = rows[1].location["evses"]
    assert evse["evse_id"] == "DE*SCH*E1000002*1"
    assert rows[2].row == HEADER_ROW + 4  # the line break in the quoted cell above is one more line


def test_ids_that_are_not_one_emi3_id_are_left_out_with_a_warning(rows):
    result = rows[2]
    assert all("evse_id" not in evse for evse in result.location["evses"])
    assert ("EVSE-ID1", "DE SWM 24D 006", "not an eMI3 EVSE id, left out") in result.warnings
    assert ("EVSE-ID2", "DE*SWM*E1000003*2; DE*SWM*E1000003*3",
            "several EVSE ids for one charge point, left out") in result.warnings


def test_a_power_per_plug(rows):
    (evse,) = rows[1].location["evses"]
    assert [(c["standard"], c["power_type"], c["max_electric_power"]) for c in evse["connectors"]] == [
        ("IEC_62196_T2_COMBO", "DC", 150_000), ("CHADEMO", "DC", 50_000)]


@pytest.mark.parametrize(("text", "status", "publish"), [
    ("In Betrieb", "UNKNOWN", True), ("In Wartung", "INOPERATIVE", True), ("Außer Betrieb", "OUTOFORDER", True),
    ("In Planung", "PLANNED", True), ("Stillgelegt", "REMOVED", False), ("", "UNKNOWN", True),
])
def test_status_becomes_the_evses_status_and_publish(text, status, publish):
    (row,) = _read_csv(_csv_text(stations=[{**STATIONS[0], "Status": text}]).encode("utf-8"))
    assert {evse["status"] for evse in row.location["evses"]} == {status}
    assert row.location["publish"] is publish


def test_an_unknown_status_is_unknown_with_a_warning():
    (row,) = _read_csv(_csv_text(stations=[{**STATIONS[0], "Status": "Teilweise"}]).encode("utf-8"))
    assert {evse["status"] for evse in row.location["evses"]} == {"UNKNOWN"}
    assert ("Status", "Teilweise", "unknown status, read as UNKNOWN") in row.warnings


# --------------------------------------------------------------------------- opening hours, payment, parking


def test_247_and_a_week_round_the_clock_are_twentyfourseven(rows):
    assert rows[0].location["opening_times"] == {"twentyfourseven": True}
    week = {**STATIONS[1], "Öffnungszeiten": "Eingeschränkt", "Öffnungszeiten: Wochentage": WEEK,
            "Öffnungszeiten: Tageszeiten": "00:00-24:00"}
    (row,) = _read_csv(_csv_text(stations=[week]).encode("utf-8"))
    assert row.location["opening_times"] == {"twentyfourseven": True}


def test_weekday_hours_become_regular_hours_split_at_midnight(rows):
    hours = rows[1].location["opening_times"]
    assert hours["twentyfourseven"] is False
    assert hours["regular_hours"][0] == {"weekday": 1, "period_begin": "07:00", "period_end": "20:00"}
    assert hours["regular_hours"][-2:] == [
        {"weekday": 6, "period_begin": "22:00", "period_end": "23:59"},
        {"weekday": 7, "period_begin": "00:00", "period_end": "06:00"},
    ]
    assert {period["weekday"] for period in hours["regular_hours"]} == set(range(1, 8))


@pytest.mark.parametrize(("days", "times", "expected"), [
    ("Mo-Fr", "08:00-18:00", [(day, "08:00", "18:00") for day in range(1, 6)]),
    ("Samstag; Sonntag", "09:00-12:00, 14:00-18:00; geschlossen",
     [(6, "09:00", "12:00"), (6, "14:00", "18:00")]),
    ("Montag; Dienstag", "08:00-18:00; 08:00-18:00; 08:00-18:00", None),  # three times for two days
    ("Montag", "ab 8 Uhr", None),
    ("Feiertage", "08:00-18:00", None),
])
def test_what_cannot_be_read_safely_is_left_out(days, times, expected):
    station = {**STATIONS[0], "Öffnungszeiten": "Eingeschränkt", "Öffnungszeiten: Wochentage": days,
               "Öffnungszeiten: Tageszeiten": times}
    (row,) = _read_csv(_csv_text(stations=[station]).encode("utf-8"))
    hours = row.location["opening_times"]
    if expected is None:
        assert hours is None
        assert any(reason == "opening hours not readable, left out" for _, _, reason in row.warnings)
    else:
        assert [(p["weekday"], p["period_begin"], p["period_end"]) for p in hours["regular_hours"]] == expected


def test_keine_angabe_is_no_opening_hours(rows):
    assert rows[2].location["opening_times"] is None
    assert not [w for w in rows[2].warnings if w[0].startswith("Öffnungszeiten")]


def test_payment_systems_become_capabilities_where_ocpi_has_one(rows):
    assert rows[0].location["evses"][0]["capabilities"] == ["RFID_READER"]
    assert rows[1].location["evses"][0]["capabilities"] == [
        "CONTACTLESS_CARD_SUPPORT", "CREDIT_CARD_PAYABLE", "DEBIT_CARD_PAYABLE", "RFID_READER"]
    assert rows[2].location["evses"][0]["capabilities"] == []


def test_parking_information_becomes_restrictions_and_type_where_it_is_clear(rows):
    assert rows[0].location["parking_type"] is None
    assert rows[0].location["evses"][0]["parking_restrictions"] == []
    assert rows[1].location["evses"][0]["parking_restrictions"] == ["CUSTOMERS"]
    assert rows[2].location["parking_type"] == "UNDERGROUND_GARAGE"
    assert rows[2].location["evses"][0]["parking_restrictions"] == ["CUSTOMERS"]


def test_coordinates_abroad_are_an_error(rows):
    assert rows[3].error == [("Breitengrad/Längengrad", "58,1/6,2", "outside Germany")]


def test_the_locations_pass_ocpi_validation(rows):
    for result in rows:
        if result.ok:
            clean_location(register_location(result.location, country_code="DE", party_id="ALP",
                                             last_updated="2026-09-01T00:00:00Z"))


# --------------------------------------------------------------------------- columns by name


def test_reordered_and_unknown_columns_give_the_same_locations(rows):
    columns = COLUMNS_2023 + ["Eine neue Spalte", "Noch eine"]
    random.Random(7).shuffle(columns)
    shuffled = _read_csv(_csv_text(columns=columns, stations=[{**s, "Eine neue Spalte": "x"} for s in STATIONS])
                         .encode("utf-8"))
    assert [r.location for r in shuffled] == [r.location for r in rows]


def test_the_2021_layout_with_public_keys_and_no_facility_id():
    station = {"Betreiber": "Energieversorgung Muster AG", "Straße": "Lindenallee", "Hausnummer": "3",
               "Postleitzahl": "4109", "Ort": "Leipzig", "Bundesland": "Sachsen", "Breitengrad": "51,339695",
               "Längengrad": "12,373075", "Inbetriebnahmedatum": "14.06.2020", "Art der Ladeeinrichung":
               "Normalladeeinrichtung", "Anzahl Ladepunkte": "2", "Steckertypen1": "AC Typ 2 Steckdose, AC Schuko",
               "P1 [kW]": "22", "Public Key1": KEY, "Steckertypen2": "AC Typ 2 Steckdose", "P2 [kW]": "11"}
    preamble = [["Ladesäulenregister Bundesnetzagentur"], [], ["Stand: 01.03.2021"], [],
                ["Allgemeine Informationen", *[""] * 13, "1. Ladepunkt"]]
    (row,) = _read_csv(_csv_text(COLUMNS_2021, [station], preamble).encode("cp1252"))
    location = row.location
    assert row.row == 7 and location["id"].startswith("DE-BNA-") and len(location["id"]) == 19
    assert (location["address"], location["postal_code"], location["city"]) == ("Lindenallee 3", "04109", "Leipzig")
    assert ("Postleitzahl", "4109", "leading zero restored") in row.warnings
    assert [[c["standard"] for c in evse["connectors"]] for evse in location["evses"]] == [
        ["IEC_62196_T2", "DOMESTIC_F"], ["IEC_62196_T2"]]
    assert "opening_times" not in location and "capabilities" not in location["evses"][0]


def test_a_four_digit_postcode_outside_the_zero_regions_is_dropped():
    (row,) = _read_csv(_csv_text(stations=[{**STATIONS[0], "Postleitzahl": "4103"}]).encode("utf-8"))
    assert row.location["postal_code"] is None
    assert ("Postleitzahl", "4103", "postcode is not 5 digits") in row.warnings


# --------------------------------------------------------------------------- Excel


def test_the_workbook_gives_the_same_locations_as_the_csv(rows):
    from_workbook = list(iter_bnetza_workbook(_xlsx()))
    # A sheet's rows are rows: the CSV's line break inside a cell does not shift the later ones.
    assert [r.row for r in from_workbook] == list(range(HEADER_ROW + 1, HEADER_ROW + 1 + len(STATIONS)))
    assert [r.location for r in from_workbook] == [r.location for r in rows]
    # The same errors, the numbers as the sheet holds them ("58.1", not the CSV's "58,1").
    assert from_workbook[3].error == [("Breitengrad/Längengrad", "58.1/6.2", "outside Germany")]


def test_the_workbook_preamble_is_handed_over_too():
    seen = []
    list(iter_bnetza_workbook(_xlsx(), on_preamble=seen.append))
    assert any("Letzte Aktualisierung vom: 01.09.2026" in cells for cells in seen)

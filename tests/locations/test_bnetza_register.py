"""Tests for the BNetzA charge-point register parser (locations.registers.bnetza).

The inline rows are copied unchanged from the Bundesnetzagentur Ladesäulenregister exports of
2017-04-11 and 2019-07-19, licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).
Quelle: Bundesnetzagentur.
"""

import hashlib
import io
import re
from pathlib import Path

import pytest

from locations.registers.bnetza import (
    LAYOUT_2017,
    LAYOUT_2019,
    RegisterRow,
    detect_layout,
    iter_bnetza_locations,
)

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
SAMPLE_2019 = REPO / "locations" / "fixtures" / "bnetza-2019-sample.csv"

HEADER_2017 = [
    "Ladesäulenregister Bundesnetzagentur;;;;;;;;;;;;;;;",
    '"=""Stand: 11.04.2017""";;;;;;;;;;;;;;;',
    ";;;;;;;;;;;;;;;",
    "Allgemeine Informationen;;;;;;1. Ladepunkt;;2. Ladepunkt;;3. Ladepunkt;;4. Ladepunkt;;;",
    "Betreiber;Standort;Längengrad [DG];Breitengrad [DG];Art der Ladeeinrichtung;Anzahl Ladepunkte;"
    "Steckertypen 1;P1 [kW];Steckertypen 2;P2 [kW];Steckertypen 3;P3 [kW];Steckertypen 4#;P4 [kW];;",
]
ROWS_2017 = [
    # line 6
    '"Volkswagen Sachsen GmbH; Die Gläserne Manufaktur";Lennéstraße 1, 01069 Dresden;13,75423;51,04365;'
    "Schnellladeeinrichtung;2;DC Kupplung Combo, DC CHAdeMO;50;AC Kupplung Typ 2;43;;;;;;",
    # line 7
    "DREWAG - Stadtwerke Dresden GmbH;Leonardo-da-Vinci-Straße, 0A, 01326, Dresden;13,864731;51,013049;"
    "Normalladeeinrichtung;2;AC Steckdose Typ 2, AC Schuko;11;AC Steckdose Typ 2, AC Schuko;11;;;;;;",
    # line 8
    "Stromnetz Hamburg GmbH;Heilwigstraße, 2, 20249, Hamburg;9,996298;53,580799;Normalladeeinrichtung;2;"
    "AC Steckdose Typ 2, AC Schuko;22;AC Steckdose Typ 2, AC Schuko;22;;;;;;",
    # line 9
    "APCOA PARKING Deutschland GmbH;Hüblerstr.8, 01309 Dresden;13,8047301999999;51,0517908;"
    "Normalladeeinrichtung;2;AC Steckdose Typ 2;11;AC Steckdose Typ 2;11;;;;;;",
    # line 10: longitude lost its decimal comma
    "EWE VERTRIEB GmbH;Füchteler Str. 8, 49377 Vechta;8291302;52,730861;Normalladeeinrichtung;2;"
    "AC Steckdose Typ 2;11;AC Steckdose Typ 2;22;;;;;;",
    # line 11: latitude and longitude in each other's column
    "Stadtwerke Heide GmbH;Schwarzer Weg 9, 25797 Wöhrden;54,163768;8,997439;Normalladeeinrichtung;2;"
    "AC Steckdose Typ 2;22;AC Steckdose Typ 2;22;;;;;;",
    # line 12: 58° N is in Norway
    "Stadt Wolfsburg;Otto-Wels-Platz, 38440 Wolfsburg;6,218603;58,096363;Normalladeeinrichtung;2;"
    "AC Kupplung Typ 2;22;DC Kupplung Combo;20;;;;;;",
    # lines 13-14: the export's blank padding rows
    ";;;;;;;;;;;;;;;",
    ";;;;;;;;;;;;;;;",
]

HEADER_2019 = [
    "Ladesäulenregister Bundesnetzagentur;;;;;;;;;;;;;;;;;;;;;",
    ";;;;;;;;;;;;;;;;;;;;;",
    "Stand: 19.07.2019;;;;;;;;;;;;;;;;;;;;;",
    ";;;;;;;;;;;;;;;;;;;;;",
    "Allgemeine Informationen;;;;;;;;;;1. Ladepunkt;;;2. Ladepunkt;;;3. Ladepunkt;;;4. Ladepunkt;;",
    "Betreiber;Adresse;Postleitzahl Ort;Bundesland;Längengrad [DG];Breitengrad [DG];Inbetriebnahmedatum;"
    "Anschlussleistung [kW];Art der Ladeeinrichtung;Anzahl Ladepunkte;Steckertypen1;P1 [kW];Public Key1;"
    "Steckertypen2;P2 [kW];Public Key2;Steckertypen3;P3 [kW];Public Key3;Steckertypen4;P4 [kW];Public Key4",
]
PUBLIC_KEY = (
    '"f280 1180 2856 dc19 97a7 b806\neff9 e5fd 8d87 1ea3 fd67 2b12\n'
    '0b2e d426 7363 5338 0b4f 4692\n57cd 5570 198e 75ec cd29 b770"'
)
ROWS_2019 = [
    # line 7
    "MVV Energie AG;Luisenring 49;68159 Mannheim;Baden-Württemberg;8,468098;49,494409;14.04.2010;22;"
    "Normalladeeinrichtung;2;AC Steckdose Typ 2;22;;AC Schuko;2;;;;;;;",
    # line 8
    'Energie Baden-Württemberg;"BAB6; Autobahnraststätte Am Hockenheimring West";68766 Hockenheim;'
    "Baden-Württemberg;8,567804;49,320815;22.12.2016;50;Schnellladeeinrichtung;2;AC Kupplung Typ 2;43;;"
    "DC Kupplung Combo;50;;;;;;;",
    # lines 9-15: a public key spread over four lines, twice
    "Energie- und Wasserversorgung Bruchsal GmbH;Au in den Buchen 80;76646 Bruchsal;Baden-Württemberg;"
    "8,527396;49,099463;31.05.2019;44;Normalladeeinrichtung;2;AC Steckdose Typ 2, AC Schuko;22;"
    f"{PUBLIC_KEY};AC Steckdose Typ 2, AC Schuko;22;{PUBLIC_KEY};;;;;;",
    # line 16, 17: the same charging station registered twice
    "IONITY GmbH;Raststätte Gruibingen Süd;73344 Gruibingen;Baden-Württemberg;9,632882;48,605276;15.09.2018;"
    "350;Schnellladeeinrichtung;1;DC Kupplung Combo;350;;;;;;;;;;",
    "IONITY GmbH;Raststätte Gruibingen Süd;73344 Gruibingen;Baden-Württemberg;9,632882;48,605276;15.09.2018;"
    "350;Schnellladeeinrichtung;1;DC Kupplung Combo;350;;;;;;;;;;",
    # line 18: "0" is not a connector type
    "e-con AG;Gutenbergstraße 12;87781 Ungerhausen;Bayern;10,272101;48,017892;16.10.2018;215;"
    "Schnellladeeinrichtung;4;AC Steckdose Typ 2;22;;AC Kupplung Typ 2;43;;DC Kupplung Combo, DC CHAdeMO;120;;"
    "DC Kupplung Combo, 0;30;",
    # line 19
    "Stadtwerke Rüsselsheim GmbH;Darmstädter Str. 65;65428 Rüsselsheim am Main;Hessen;8,41201;49,9887;"
    "01.01.2015;22;Normalladeeinrichtung;4;Steckdose Typ 1;11;;AC Schuko;3,7;;AC Schuko;3,7;;AC CEE 3 polig;11;",
    # line 20
    "Neubrandenburger Wohnungsgesellschaft mbH;Stargarder Straße 7;17033 Neubrandenburg;"
    "Mecklenburg-Vorpommern;13,2611111111111;53,5558333;11.05.2019;22;Normalladeeinrichtung;2;"
    "AC Steckdose Typ 2;22;;AC Steckdose Typ 2;22;;;;;;;",
    # line 21: Wildenfels is at 12.6° E, not 15.6° E
    "envia Mitteldeutsche Energie AG;Arno-Schmidt-Straße 28;08134 Wildenfels;Sachsen;15,592092;50,681519;"
    "26.09.2017;94;Schnellladeeinrichtung;2;AC Kupplung Typ 2;50;;DC Kupplung Combo, DC CHAdeMO;44;;;;;;;",
]

OCPI_LATITUDE = re.compile(r"-?[0-9]{1,2}\.[0-9]{5,7}")
OCPI_LONGITUDE = re.compile(r"-?[0-9]{1,3}\.[0-9]{5,7}")


def _export(header, rows):
    return "\r\n".join(header + rows) + "\r\n"


def _parse(text):
    return list(iter_bnetza_locations(io.StringIO(text, newline="")))


def _by_row(rows):
    return {r.row: r for r in rows}


@pytest.fixture
def rows_2017():
    return _by_row(_parse(_export(HEADER_2017, ROWS_2017)))


@pytest.fixture
def rows_2019():
    return _by_row(_parse(_export(HEADER_2019, ROWS_2019)))


# --------------------------------------------------------------------------- layout


def test_detect_layout_from_header_cells():
    assert detect_layout(HEADER_2017[-1].split(";")) == LAYOUT_2017
    assert detect_layout(HEADER_2019[-1].split(";")) == LAYOUT_2019


def test_detect_layout_rejects_other_files():
    with pytest.raises(ValueError):
        detect_layout(["Name", "Street", "Latitude", "Longitude"])


def test_file_without_register_header_is_refused():
    with pytest.raises(ValueError, match="header"):
        _parse("Name;Street\r\nfoo;bar\r\n")


# --------------------------------------------------------------------------- 2019 layout


def test_2019_row_becomes_an_ocpi_location(rows_2019):
    location = rows_2019[7].location
    assert location["id"].startswith("DE-BNA-") and len(location["id"]) == 19
    assert location["name"] == "MVV Energie AG, Luisenring 49"
    assert (location["address"], location["postal_code"], location["city"]) == (
        "Luisenring 49",
        "68159",
        "Mannheim",
    )
    assert location["state"] == "Baden-Württemberg"
    assert location["country"] == "DEU"
    assert location["coordinates"] == {"latitude": "49.494409", "longitude": "8.468098"}
    assert location["time_zone"] == "Europe/Berlin"
    assert location["publish"] is True and location["parking_type"] is None
    assert location["operator"] == {"name": "MVV Energie AG"}
    assert location["last_updated"] == "2010-04-14T00:00:00Z"


def test_2019_charge_points_become_evses(rows_2019):
    location = rows_2019[7].location
    type2, schuko = (evse["connectors"] for evse in location["evses"])
    assert [evse["uid"] for evse in location["evses"]] == [f"{location['id']}-1", f"{location['id']}-2"]
    assert {evse["status"] for evse in location["evses"]} == {"UNKNOWN"}
    assert type2 == [
        {
            "id": "1",
            "standard": "IEC_62196_T2",
            "format": "SOCKET",
            "power_type": "AC_3_PHASE",
            "max_voltage": 230,  # OCPI 2.2.1: line to neutral for AC_3_PHASE
            "max_amperage": 32,
            "max_electric_power": 22000,
        }
    ]
    assert schuko[0]["standard"] == "DOMESTIC_F"
    assert (schuko[0]["power_type"], schuko[0]["max_amperage"], schuko[0]["max_electric_power"]) == (
        "AC_1_PHASE",
        9,
        2000,
    )


def test_multi_line_cells_keep_physical_row_numbers(rows_2019):
    assert sorted(rows_2019) == [7, 8, 9, 16, 17, 18, 19, 20, 21]
    assert rows_2019[9].location["city"] == "Bruchsal"
    assert len(rows_2019[9].location["evses"]) == 2


def test_long_street_is_cut_at_a_word_boundary(rows_2019):
    location = rows_2019[8].location
    assert location["address"] == "BAB6; Autobahnraststätte Am Hockenheimring"
    assert location["name"] == "Energie Baden-Württemberg, BAB6; Autobahnraststätte Am Hockenheimring West"


def test_state_fits_ocpi_length(rows_2019):
    assert rows_2019[20].location["state"] == "Meckl.-Vorpommern"


def test_decimal_commas(rows_2017, rows_2019):
    assert rows_2017[9].location["coordinates"] == {"latitude": "51.051791", "longitude": "13.804730"}
    schuko = rows_2019[19].location["evses"][1]["connectors"][0]
    assert schuko["max_electric_power"] == 3700


def test_high_power_dc_uses_high_voltage(rows_2019):
    (connector,) = rows_2019[16].location["evses"][0]["connectors"]
    assert connector["standard"] == "IEC_62196_T2_COMBO"
    assert (connector["power_type"], connector["max_voltage"], connector["max_amperage"]) == ("DC", 920, 380)
    assert connector["max_electric_power"] == 350_000


# --------------------------------------------------------------------------- connectors


def test_multi_connector_cell_gives_one_connector_each(rows_2017):
    dc, ac = rows_2017[6].location["evses"]
    assert [(c["id"], c["standard"], c["format"], c["power_type"]) for c in dc["connectors"]] == [
        ("1", "IEC_62196_T2_COMBO", "CABLE", "DC"),
        ("2", "CHADEMO", "CABLE", "DC"),
    ]
    assert [c["max_electric_power"] for c in dc["connectors"]] == [50000, 50000]
    assert [(c["standard"], c["format"], c["power_type"]) for c in ac["connectors"]] == [
        ("IEC_62196_T2", "CABLE", "AC_3_PHASE")
    ]


def test_plug_is_capped_at_its_own_rating(rows_2017):
    type2, schuko = rows_2017[8].location["evses"][0]["connectors"]
    assert (type2["standard"], type2["max_electric_power"]) == ("IEC_62196_T2", 22000)
    assert (schuko["standard"], schuko["power_type"], schuko["max_electric_power"]) == (
        "DOMESTIC_F",
        "AC_1_PHASE",
        3700,
    )
    assert schuko["max_amperage"] == 16


def test_type1_and_cee_connectors(rows_2019):
    evses = rows_2019[19].location["evses"]
    assert [evse["connectors"][0]["standard"] for evse in evses] == [
        "IEC_62196_T1",
        "DOMESTIC_F",
        "DOMESTIC_F",
        "IEC_60309_2_single_16",
    ]
    assert ("P1 [kW]", "11", "more than the connectors' rating of 7.4 kW, capped") in rows_2019[19].warnings


def test_unknown_connector_next_to_known_ones_is_a_warning(rows_2019):
    result = rows_2019[18]
    assert result.error is None
    assert ("Steckertypen4", "0", "unknown connector type, skipped") in result.warnings
    last = result.location["evses"][3]
    assert [c["standard"] for c in last["connectors"]] == ["IEC_62196_T2_COMBO"]


def test_row_without_any_known_connector_is_an_error():
    row = (
        "MVV Energie AG;Luisenring 49;68159 Mannheim;Baden-Württemberg;8,468098;49,494409;14.04.2010;22;"
        "Normalladeeinrichtung;1;Hyper Stecker, 0;22;;;;;;;;;;"
    )
    (result,) = _parse(_export(HEADER_2019, [row]))
    assert result.location is None
    (column, value, reason), = result.error
    assert (value, reason) == ("Hyper Stecker, 0", "no known connector type")
    assert "Steckertypen1" in column


# --------------------------------------------------------------------------- 2017 layout


@pytest.mark.parametrize(
    "line, address, postal_code, city",
    [
        (6, "Lennéstraße 1", "01069", "Dresden"),
        (7, "Leonardo-da-Vinci-Straße 0A", "01326", "Dresden"),
        (8, "Heilwigstraße 2", "20249", "Hamburg"),
        (9, "Hüblerstr.8", "01309", "Dresden"),
    ],
)
def test_2017_standort_is_split(rows_2017, line, address, postal_code, city):
    location = rows_2017[line].location
    assert (location["address"], location["postal_code"], location["city"]) == (address, postal_code, city)


def test_2017_row_has_no_state_nor_date(rows_2017):
    location = rows_2017[6].location
    assert location["state"] is None and location["last_updated"] is None
    assert location["operator"]["name"] == "Volkswagen Sachsen GmbH; Die Gläserne Manufaktur"
    assert location["coordinates"] == {"latitude": "51.043650", "longitude": "13.754230"}


def test_blank_padding_rows_are_not_data_rows(rows_2017):
    assert sorted(rows_2017) == [6, 7, 8, 9, 10, 11, 12]


# --------------------------------------------------------------------------- errors


def test_bad_coordinate_gives_error_with_row_number(rows_2017):
    result = rows_2017[10]
    assert isinstance(result, RegisterRow)
    assert result.location is None and not result.ok
    assert result.error == [
        ("Breitengrad [DG]/Längengrad [DG]", "52,730861/8291302", "not a coordinate"),
    ]


def test_unparseable_coordinate_is_an_error():
    row = ROWS_2017[0].replace("13,75423", "13,75x23")
    (result,) = _parse(_export(HEADER_2017, [row]))
    assert result.row == 6
    assert result.error == [("Längengrad [DG]", "13,75x23", "not a number")]


def test_coordinates_outside_germany_are_errors(rows_2017, rows_2019):
    assert rows_2017[12].error[0][2] == "outside Germany"
    assert rows_2019[21].error[0][1] == "50,681519/15,592092"


def test_swapped_coordinates_are_repaired_with_a_warning(rows_2017):
    result = rows_2017[11]
    assert result.location["coordinates"] == {"latitude": "54.163768", "longitude": "8.997439"}
    assert result.warnings[0][2] == "latitude and longitude swapped"


# --------------------------------------------------------------------------- ids


def test_ids_are_stable_between_imports():
    text = _export(HEADER_2019, ROWS_2019)
    first = [r.location and r.location["id"] for r in _parse(text)]
    second = [r.location and r.location["id"] for r in _parse(text)]
    assert first == second


def test_id_recipe(rows_2019):
    key = "MVV Energie AG|Luisenring 49, 68159 Mannheim|49.494409|8.468098"
    assert rows_2019[7].location["id"] == "DE-BNA-" + hashlib.sha1(key.encode()).hexdigest()[:12]


def test_exact_duplicate_rows_share_an_id_and_others_do_not(rows_2019):
    assert rows_2019[16].location["id"] == rows_2019[17].location["id"]
    ids = [r.location["id"] for line, r in rows_2019.items() if r.ok and line != 17]
    assert len(ids) == len(set(ids))


def test_locations_match_ocpi_formats(rows_2017, rows_2019):
    for result in [*rows_2017.values(), *rows_2019.values()]:
        if not result.ok:
            continue
        location = result.location
        assert len(location["id"]) <= 36 and len(location["address"]) <= 45 and len(location["city"]) <= 45
        assert OCPI_LATITUDE.fullmatch(location["coordinates"]["latitude"])
        assert OCPI_LONGITUDE.fullmatch(location["coordinates"]["longitude"])
        for evse in location["evses"]:
            assert len(evse["uid"]) <= 36
            for connector in evse["connectors"]:
                assert connector["max_amperage"] > 0 and connector["max_voltage"] > 0


# --------------------------------------------------------------------------- input forms


def test_binary_latin1_and_bom_inputs_give_the_same_rows():
    text = _export(HEADER_2019, ROWS_2019)
    expected = [(r.row, r.location) for r in _parse(text)]
    for raw in (text.encode("utf-8"), text.encode("cp1252"), b"\xef\xbb\xbf" + text.encode("utf-8")):
        assert [(r.row, r.location) for r in iter_bnetza_locations(io.BytesIO(raw))] == expected
    bom_text = io.StringIO("\ufeff" + text, newline="")
    assert [(r.row, r.location) for r in iter_bnetza_locations(bom_text)] == expected


def test_utf8_read_as_latin1_is_repaired():
    text = _export(HEADER_2019, ROWS_2019)
    expected = [(r.row, r.location) for r in _parse(text)]
    misread = io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="latin-1", newline="")
    assert [(r.row, r.location) for r in iter_bnetza_locations(misread)] == expected


def test_parser_streams():
    consumed = []

    def lines():
        for line in io.StringIO(_export(HEADER_2019, ROWS_2019), newline=""):
            consumed.append(line)
            yield line

    first = next(iter_bnetza_locations(lines()))
    assert first.row == 7
    assert len(consumed) == 7


# --------------------------------------------------------------------------- shipped sample and field data


def test_shipped_2019_sample_parses_completely():
    with SAMPLE_2019.open(encoding="utf-8", newline="") as f:
        results = list(iter_bnetza_locations(f))
    assert len(results) == 404
    assert all(r.ok for r in results), [(r.row, r.error) for r in results if not r.ok]
    assert len({r.location["state"] for r in results}) == 16


@pytest.mark.parametrize("name", ["de-bnetza-2017-04-11.csv", "de-bnetza-2019-07-19.csv"])
def test_field_data_real_exports(name):
    path = SHARED_DATA / "locations" / name
    if not path.exists():
        pytest.skip(f"field data absent: {path}")
    total = parsed = 0
    reasons = {}
    with path.open(encoding="utf-8", newline="") as f:
        for result in iter_bnetza_locations(f):
            total += 1
            parsed += result.ok
            for _column, _value, reason in result.error or []:
                reasons[reason] = reasons.get(reason, 0) + 1
    print(f"\n{name}: {total} rows, {parsed} parsed, {total - parsed} errors {reasons}")
    assert total > 1000
    assert parsed / total > 0.95

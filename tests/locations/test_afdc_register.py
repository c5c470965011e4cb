"""Tests for the AFDC station parser (locations.registers.afdc).

The inline rows are copied unchanged from the US DOE/NREL Alternative Fuels Data Center station
list (ghhyc/EV-Charging, data/alt_fuel_stations.csv): US federal data, NREL AFDC.
"""

import collections
import io
import re

import pytest

from locations.registers import register_location
from locations.registers.afdc import ASSUMED_CONNECTOR, FORMAT, detect_afdc, iter_afdc_locations
from locations.validation import InvalidPayload, clean_location

HEADER = "Station Name,ZIP,Latitude,Longitude,ID"
ROWS = [
    "LADWP - Truesdale Center,91352,34.24831915,-118.3879714,1517",  # line 2
    # lines 3-4: the ZIP lost its leading zero (05403, Vermont); the same coordinates twice
    "Burlington International Airport,5403,44.469281,-73.154972,27036",
    "Burlington International Airport,5403,44.469281,-73.154972,32973",
    "Glenn International,987,18.375312,-65.973635,165407",  # line 5: Puerto Rico, 00987
    "429 Penn Center Parking - Tesla Destination,\xa046204,39.7735,-86.154725,168551",  # line 6: no-break space
    "City of Dallas,75203,32.74458,-96.781018,47512",  # line 7
    "Los Angeles Department of Public Works - Baldwin Park Construction Permit Office,91706,34.089085,-117.95463,21612",
    "Rosegate Apartments,12065,42.868419,0,191112",  # line 9: longitude 0.0
    "Comfort Hotel-DCFC,L2G3X,43.09247,-79.08459,194331",  # line 10: Niagara Falls, Ontario
    "LAS VEGAS TEST UNITS,0,36.132854,-115.153631,200443",  # line 11: no ZIP
    "Niumamua Office Building,96740,24.782658,-152.546919,186657",  # line 12: 700 km off Hawaii
    "HANCOCK GARAGE HANCOCK 4,2169,42.248558,-71,153721",  # line 13: a whole-degree longitude
]

OCPI_LATITUDE = re.compile(r"-?[0-9]{1,2}\.[0-9]{5,7}")
OCPI_LONGITUDE = re.compile(r"-?[0-9]{1,3}\.[0-9]{5,7}")


def _export(rows=ROWS, header=HEADER, end="\n"):
    return end.join([header, *rows]) + end


def _parse(text):
    return list(iter_afdc_locations(io.StringIO(text, newline="")))


@pytest.fixture
def rows():
    return {r.row: r for r in _parse(_export())}


# --------------------------------------------------------------------------- header


def test_detect_accepts_the_extract_and_the_full_export():
    assert detect_afdc(HEADER.split(",")) == FORMAT
    full = ["Fuel Type Code", "Station Name", "Street Address", "City", "State", "ZIP", "Latitude",
            "Longitude", "ID", "EV Connector Types"]
    assert detect_afdc(full) == FORMAT


@pytest.mark.parametrize("header", [
    ["chargeDeviceID", "reference", "name", "latitude", "longitude", "town", "postcode"],
    ["Betreiber", "Adresse", "Postleitzahl Ort", "Längengrad [DG]", "Breitengrad [DG]"],
])
def test_detect_rejects_other_registers(header):
    with pytest.raises(ValueError, match=r"not an AFDC station export: no column\(s\) \['Station Name'"):
        detect_afdc(header)


def test_other_file_is_refused_before_any_row():
    with pytest.raises(ValueError, match="not an AFDC station export"):
        _parse("chargeDeviceID,name,latitude,longitude\nabc,Toutley Depot,51.4,-0.8\n")
    with pytest.raises(ValueError, match="empty"):
        _parse("")


# --------------------------------------------------------------------------- locations


def test_row_becomes_an_ocpi_location(rows):
    result = rows[2]
    assert result.warnings == []
    assert result.location == {
        "id": "US-AFDC-1517",
        "name": "LADWP - Truesdale Center",
        "address": "LADWP - Truesdale Center",  # the extract has no street: the name stands in
        "city": "ZIP 91352",  # nor a city: OCPI requires one, the ZIP says where
        "postal_code": "91352",
        "state": "CA",
        "country": "USA",
        "coordinates": {"latitude": "34.248319", "longitude": "-118.387971"},
        "time_zone": "America/Los_Angeles",
        "publish": True,
        "parking_type": None,
        "evses": [{"uid": "US-AFDC-1517-1", "status": "UNKNOWN", "connectors": [ASSUMED_CONNECTOR]}],
        "last_updated": None,
    }


def test_assumed_connector_is_level_2_j1772(rows):
    (connector,) = rows[7].location["evses"][0]["connectors"]
    assert connector == {"id": "1", "standard": "IEC_62196_T1", "format": "CABLE", "power_type": "AC_1_PHASE",
                         "max_voltage": 208, "max_amperage": 32, "max_electric_power": 6656}
    assert connector is not ASSUMED_CONNECTOR  # each location owns its dicts


def test_long_name_is_cut_for_the_address_only(rows):
    location = rows[8].location
    assert location["name"] == (
        "Los Angeles Department of Public Works - Baldwin Park Construction Permit Office"
    )
    assert location["address"] == "Los Angeles Department of Public Works"


# --------------------------------------------------------------------------- ZIP, state, time zone


@pytest.mark.parametrize("line, zip_code, state, zone", [
    (3, "05403", "VT", "America/New_York"),
    (5, "00987", "PR", "America/Puerto_Rico"),
    (6, "46204", "IN", "America/Indiana/Indianapolis"),
    (7, "75203", "TX", "America/Chicago"),
])
def test_zip_gives_state_and_time_zone(rows, line, zip_code, state, zone):
    location = rows[line].location
    assert (location["postal_code"], location["city"], location["state"], location["time_zone"]) == (
        zip_code, f"ZIP {zip_code}", state, zone
    )


def test_lost_leading_zeros_are_restored_with_a_warning(rows):
    assert rows[3].warnings == [("ZIP", "5403", "leading zeros restored")]
    assert rows[5].warnings == [("ZIP", "987", "leading zeros restored")]


def test_split_states_name_the_zone_they_assume(rows):
    assert rows[7].warnings == [("ZIP", "75203", "TX spans time zones, assumed America/Chicago")]
    assert rows[6].warnings == [("ZIP", "46204", "IN spans time zones, assumed America/Indiana/Indianapolis")]


def test_city_and_state_columns_win_when_the_file_has_them():
    # The line-7 station in the full export's layout; street and city are illustrative, not copied.
    header = "Station Name,Street Address,City,State,ZIP,Latitude,Longitude,ID"
    row = "City of Dallas,1500 Marilla St,Dallas,TX,75203,32.74458,-96.781018,47512"
    (result,) = _parse(_export([row], header))
    location = result.location
    assert (location["address"], location["city"], location["state"]) == ("1500 Marilla St", "Dallas", "TX")
    assert result.warnings == [("State", "TX", "TX spans time zones, assumed America/Chicago")]


# --------------------------------------------------------------------------- the export's quirks


def test_longitude_zero_is_an_error(rows):
    result = rows[9]
    assert not result.ok and result.location is None
    assert result.error == [("Longitude", "0", "0: a missing value, not a position")]


def test_duplicate_coordinates_are_distinct_stations(rows):
    first, second = rows[3].location, rows[4].location
    assert first["coordinates"] == second["coordinates"]
    assert (first["id"], second["id"]) == ("US-AFDC-27036", "US-AFDC-32973")
    assert first["evses"][0]["uid"] != second["evses"][0]["uid"]


def test_canadian_station_is_an_error(rows):
    assert rows[10].error == [("ZIP", "L2G3X", "a Canadian postcode: not a US station")]


def test_row_without_zip_has_no_city_and_is_an_error(rows):
    assert rows[11].error == [("ZIP", "0", "no city, nor a ZIP to stand in for it")]
    assert rows[11].warnings == [("ZIP", "0", "not a ZIP code, dropped")]


def test_coordinates_outside_the_us_are_errors(rows):
    assert rows[12].error == [("Latitude/Longitude", "24.782658/-152.546919", "outside the US")]


def test_whole_degree_coordinate_is_kept_with_a_warning(rows):
    result = rows[13]
    assert result.location["coordinates"] == {"latitude": "42.248558", "longitude": "-71.000000"}
    assert ("Latitude/Longitude", "42.248558/-71", "imprecise: under 2 decimals") in result.warnings


def test_every_row_is_reported_with_its_line(rows):
    assert sorted(rows) == list(range(2, 14))
    assert [line for line, r in rows.items() if not r.ok] == [9, 10, 11, 12]


# --------------------------------------------------------------------------- ids, input forms, OCPI


def test_ids_are_stable_and_the_afdc_ids():
    first = [r.location and r.location["id"] for r in _parse(_export())]
    assert first == [r.location and r.location["id"] for r in _parse(_export())]
    assert first[0] == "US-AFDC-1517"


def test_binary_crlf_and_bom_inputs_give_the_same_rows():
    expected = [(r.row, r.location, r.error) for r in _parse(_export())]
    for raw in (_export().encode(), _export(end="\r\n").encode(), b"\xef\xbb\xbf" + _export().encode()):
        assert [(r.row, r.location, r.error) for r in iter_afdc_locations(io.BytesIO(raw))] == expected


def test_parser_streams():
    consumed = []

    def lines():
        for line in io.StringIO(_export(), newline=""):
            consumed.append(line)
            yield line

    assert next(iter_afdc_locations(lines())).row == 2
    assert len(consumed) == 2


def test_locations_match_ocpi_formats_and_pass_validation(rows):
    for result in rows.values():
        if not result.ok:
            continue
        location = result.location
        assert len(location["id"]) <= 36 and len(location["address"]) <= 45 and len(location["city"]) <= 45
        assert OCPI_LATITUDE.fullmatch(location["coordinates"]["latitude"])
        assert OCPI_LONGITUDE.fullmatch(location["coordinates"]["longitude"])
        clean_location(register_location(location, country_code="US", party_id="TST",
                                         last_updated="2020-01-01T00:00:00Z"))


# --------------------------------------------------------------------------- field data


@pytest.mark.field
def test_field_data_full_list(shared_data, capsys):
    path = shared_data / "locations" / "us-afdc-stations.csv"
    if not path.exists():
        pytest.skip(f"field data absent: {path}")
    total = parsed = 0
    errors, warnings, rejects = collections.Counter(), collections.Counter(), collections.Counter()
    coordinates = collections.Counter()
    with path.open(encoding="utf-8", newline="") as f:
        for result in iter_afdc_locations(f):
            total += 1
            errors.update(reason for _, _, reason in result.error or [])
            warnings.update(reason.split(",")[0] if "spans" in reason else reason for _, _, reason in result.warnings)
            if not result.ok:
                continue
            parsed += 1
            location = result.location
            coordinates[tuple(location["coordinates"].values())] += 1
            try:
                clean_location(register_location(location, country_code="US", party_id="TST",
                                                 last_updated="2020-01-01T00:00:00Z"))
            except InvalidPayload as exc:
                rejects.update(f"{path_}: {reason}" for path_, reason in exc.errors.items())
    shared = sum(n for n in coordinates.values() if n > 1)
    with capsys.disabled():
        print(f"\nus-afdc-stations.csv: {total} rows, {parsed} parsed, {total - parsed} errors "
              f"{errors.most_common(5)}\n  warnings {warnings.most_common(8)}"
              f"\n  {shared} locations share their coordinates with another"
              f"\n  OCPI validation rejects {sum(rejects.values())} {rejects.most_common(5)}")
    assert total == 50270
    assert parsed / total > 0.999
    assert errors["0: a missing value, not a position"] == 1
    assert shared > 1000
    assert not rejects

"""find_ev_filter_locations: the contract's filters, the drivers' extras, the count, and bad arguments."""

import pytest

from .conftest import BERLIN, BRANDENBURG, HAMBURG, POTSDAM, data_of, error_of, gql, place

pytestmark = pytest.mark.django_db


def connector(cid: str, standard: str, power: int | None, power_type: str = "DC") -> dict:
    return {"id": cid, "standard": standard, "format": "CABLE", "power_type": power_type, "max_voltage": 400,
            "max_amperage": 125, "max_electric_power": power, "last_updated": "2024-05-01T10:00:00Z"}


def evse(uid: str, status: str = "AVAILABLE", connectors=(), **extra) -> dict:
    return {"uid": uid, "status": status, "connectors": list(connectors), "last_updated": "2024-05-01T10:00:00Z",
            **extra}


@pytest.fixture
def stations(alpha, bravo):
    """Four published locations around Berlin and one pending at its very centre."""
    place(alpha, "MITTE", BERLIN, name="Mitte", city="Berlin", province="Berlin",
          facilities=["CAFE", "WIFI"], parking_types=["INDOOR"], evses=[
              evse("M1", "CHARGING", [connector("1", "IEC_62196_T2_COMBO", 150000)],
                   capabilities=["QR_READER"], payment_types=["GCASH"]),
              evse("M2", "AVAILABLE", [connector("1", "IEC_62196_T2", 11000, "AC_3_PHASE")],
                   payment_types=["MAYA"])])
    place(bravo, "POTSDAM", POTSDAM, name="Potsdam", city="Potsdam", province="Brandenburg",
          facilities=["WIFI"], parking_types=["OUTDOOR"], evses=[
              evse("P1", "AVAILABLE", [connector("1", "CHADEMO", 50000)], capabilities=["CREDIT_DEBIT_PAYABLE"])])
    place(alpha, "BRB", BRANDENBURG, name="Brandenburg", city="Brandenburg an der Havel", province="Brandenburg",
          evses=[evse("B1", "AVAILABLE", [connector("1", "TYPE_2", None, "AC_3_PHASE")])])
    place(bravo, "HAM", HAMBURG, name="Hamburg", city="Hamburg", province="Hamburg", evses=[])
    place(alpha, "SECRET", BERLIN, name="Secret", city="Berlin", province="Berlin", moderated=False)


def names(api, args: str = "", field: str = "find_ev_filter_locations") -> list[str]:
    return [location["name"] for location in data_of(gql(api, f"{{ {field}{args} {{ name }} }}"), field)]


@pytest.mark.smoke
def test_nearest_first_with_distance_filled(basic, stations):
    found = data_of(gql(basic, "{ find_ev_filter_locations(lat: 52.52, lng: 13.405, distance: 100) "
                               "{ name distance } }"), "find_ev_filter_locations")
    assert [f["name"] for f in found] == ["Mitte", "Potsdam", "Brandenburg"]
    assert found[0]["distance"] == 0
    assert found[1]["distance"] == pytest.approx(26.5, abs=0.1)
    assert found[2]["distance"] == pytest.approx(59.4, abs=0.1)


def test_radius_and_default_radius(basic, stations):
    assert names(basic, "(lat: 52.52, lng: 13.405, distance: 26)") == ["Mitte"]
    assert names(basic, "(lat: 52.52, lng: 13.405, distance: 27)") == ["Mitte", "Potsdam"]
    assert names(basic, "(lat: 52.52, lng: 13.405)") == ["Mitte"]  # 10 km by default
    assert names(basic, "(lat: 52.52, lng: 13.405, distance: 0)") == ["Mitte"]


def test_without_a_point_every_published_location_by_id_and_no_distance(basic, stations):
    found = data_of(gql(basic, "{ find_ev_filter_locations { name distance } }"), "find_ev_filter_locations")
    assert [f["name"] for f in found] == ["Mitte", "Potsdam", "Brandenburg", "Hamburg"]
    assert {f["distance"] for f in found} == {None}


@pytest.mark.parametrize("args, expected", [
    ('(city: "berlin")', ["Mitte"]),
    ('(province: "BRANDENBURG")', ["Potsdam", "Brandenburg"]),
    ('(province: "Brandenburg", city: "Potsdam")', ["Potsdam"]),
    ('(facilities: ["WIFI"])', ["Mitte", "Potsdam"]),
    ('(facilities: ["CAFE", "BANKS/ATM"])', ["Mitte"]),
    ('(parking_types: ["OUTDOOR"])', ["Potsdam"]),
    ('(parking_types: ["INDOOR", "OUTDOOR"])', ["Mitte", "Potsdam"]),
    ('(capabilities: ["QR_READER"])', ["Mitte"]),
    ('(capabilities: ["credit_debit_payable", "QR_READER"])', ["Mitte", "Potsdam"]),
    ('(payment_types: ["MAYA"])', ["Mitte"]),
    ('(payment_types: ["GCASH", "MAYA"])', ["Mitte"]),
    ('(connector_types: ["CHADEMO"])', ["Potsdam"]),
    ('(connector_types: ["TYPE_2"])', ["Mitte", "Brandenburg"]),  # OCPI's IEC_62196_T2 is a TYPE_2
    ('(connector_types: ["IEC_62196_T2_COMBO", "CHADEMO"])', ["Mitte", "Potsdam"]),
    ("(min_power: 50000)", ["Mitte", "Potsdam", "Brandenburg"]),
    ("(min_power: 50001)", ["Mitte"]),
    ("(min_power: 150001)", []),
    ("(min_power: 40000)", ["Mitte", "Potsdam", "Brandenburg"]),  # 400 V x 125 A without max_electric_power
    ('(status: "AVAILABLE")', ["Mitte", "Potsdam", "Brandenburg"]),
    ('(status: "charging")', ["Mitte"]),
])
def test_each_filter(basic, stations, args, expected):
    assert names(basic, args) == expected


@pytest.mark.smoke
def test_filters_are_anded_and_evse_filters_hold_for_one_evse(basic, stations):
    assert names(basic, '(lat: 52.52, lng: 13.405, distance: 100, facilities: ["WIFI"], status: "AVAILABLE")') == [
        "Mitte", "Potsdam"]
    # Mitte has an AVAILABLE EVSE and a 150 kW EVSE, but not one that is both.
    assert names(basic, '(status: "AVAILABLE", min_power: 100000)') == []
    assert names(basic, '(status: "CHARGING", min_power: 100000, payment_types: ["GCASH"])') == ["Mitte"]
    assert names(basic, '(connector_types: ["TYPE_2"], min_power: 20000)') == ["Brandenburg"]
    assert names(basic, '(city: "Berlin", facilities: ["WIFI"], parking_types: ["OUTDOOR"])') == []


def test_pages_and_counts(basic, stations):
    args = "(lat: 52.52, lng: 13.405, distance: 200)"  # Hamburg, 255 km away, is out
    assert names(basic, args) == ["Mitte", "Potsdam", "Brandenburg"]
    assert names(basic, args[:-1] + ", limit: 2, offset: 1)") == ["Potsdam", "Brandenburg"]
    count = lambda a: data_of(gql(basic, f"{{ find_ev_filter_locations_count{a} }}"), "find_ev_filter_locations_count")
    assert count(args) == 3
    assert count(args[:-1] + ", limit: 1, offset: 2)") == 3  # the page does not change the total
    assert count('(province: "Brandenburg")') == 2
    assert count("") == 4


def test_the_count_runs_only_when_asked(basic, stations, django_assert_num_queries):
    with django_assert_num_queries(2):  # the client key, the locations
        names(basic, "(lat: 52.52, lng: 13.405, distance: 200)")
    with django_assert_num_queries(2):  # the key is known to the process now: the locations and the count
        gql(basic, "{ find_ev_filter_locations(lat: 52.52, lng: 13.405) { name } "
                   "find_ev_filter_locations_count(lat: 52.52, lng: 13.405) }")


def test_never_unpublished_data(basic, stations):
    for args in ("", '(city: "Berlin")', "(lat: 52.52, lng: 13.405, distance: 1)"):
        assert "Secret" not in names(basic, args)


@pytest.mark.parametrize("args, message", [
    ('(facilities: ["CAFE", "SAUNA"])', "unknown facilities code(s) SAUNA; valid codes: AIRPORT, BANKS/ATM"),
    ('(capabilities: ["TELEPORT"])', "unknown capabilities code(s) TELEPORT; valid codes: "),
    ('(payment_types: ["BITCOIN"])', "unknown payment_types code(s) BITCOIN; valid codes: GCASH, MAYA"),
    ('(parking_types: ["ROOF"])', "unknown parking_types code(s) ROOF; valid codes: ALONG_MOTORWAY"),
    ('(connector_types: ["TYPE_9"])', "unknown connector_types code(s) TYPE_9; valid codes: CHADEMO"),
    ('(status: "FREE")', "unknown status 'FREE'; valid statuses: AVAILABLE, BLOCKED"),
    ("(min_power: -1)", "min_power must be 0 or more watts"),
    ("(lat: 90.5, lng: 0.5)", "lat must be a latitude between -90 and 90, not 90.5"),
    ("(lat: -91, lng: 0.5)", "lat must be a latitude between -90 and 90"),
    ("(lat: 1.5, lng: 180.01)", "lng must be a longitude between -180 and 180, not 180.01"),
    ("(lat: 1.5, lng: -181)", "lng must be a longitude between -180 and 180"),
    ("(lat: 1.5, lng: 1, distance: -1)", "distance must be between 0 and 200 km, not -1.0"),
    ("(lat: 1.5, lng: 1, distance: 1e6)", "distance must be between 0 and 200 km"),
    ("(lat: 1.5)", "give lat and lng together"),
    ("(distance: 5)", "distance needs lat and lng"),
    ("(limit: 0)", "limit must be 1 or more"),
    ('(city: "Ber\\u0000lin")', "city must not contain NUL characters"),
    ('(province: "\\u0000")', "province must not contain NUL characters"),
])
def test_bad_arguments_are_errors_saying_what_is_valid(basic, stations, args, message):
    for field in ("find_ev_filter_locations", "find_ev_filter_locations_count"):
        selection = " { name }" if field == "find_ev_filter_locations" else ""
        if field.endswith("count") and "limit" in args:
            continue  # the count ignores paging
        response = gql(basic, f"{{ {field}{args}{selection} }}")
        assert response.status_code == 200
        error = error_of(response)
        assert message in error["message"], error
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert response.json()["data"] == {field: None}


def test_variables_work_like_literals(basic, stations):
    query = ("query Near($lat: Float!, $lng: Float!, $km: Float, $types: [String!]) {"
             " find_ev_filter_locations(lat: $lat, lng: $lng, distance: $km, connector_types: $types) { name } }")
    response = gql(basic, query, {"lat": 52.52, "lng": 13.405, "km": 30, "types": ["CHADEMO"]})
    assert [f["name"] for f in data_of(response, "find_ev_filter_locations")] == ["Potsdam"]

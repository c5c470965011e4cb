"""OCPI rules and harmless normalisation in `locations.validation` (no database)."""

from datetime import datetime, timezone

import pytest

from locations.validation import V211, InvalidPayload, clean_connector, clean_evse, clean_location, format_coordinate

pytestmark = pytest.mark.smoke


class _Cpo:
    country_code, party_id = "DE", "ALP"


def payload(**overrides):
    from tests.conftest import location_payload

    return location_payload(_Cpo(), **overrides)


def errors_of(data, **kwargs) -> dict:
    with pytest.raises(InvalidPayload) as caught:
        clean_location(data, **kwargs)
    return caught.value.errors


def test_a_valid_location_is_cleaned_into_model_values():
    clean = clean_location(payload())
    assert clean["ocpi_id"] == "LOC1"
    assert (clean["address_lat"], clean["address_lng"]) == (49.494409, 8.468098)
    assert clean["last_updated"] == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert [c["standard"] for c in clean["evses"][0]["connectors"]] == ["IEC_62196_T2", "IEC_62196_T2_COMBO"]


def test_coordinates_sent_as_numbers_or_with_few_decimals_are_normalised():
    clean = clean_location(payload(coordinates={"latitude": 52.52, "longitude": "13.4050"}))
    assert (clean["address_lat"], clean["address_lng"]) == (52.52, 13.405)
    assert format_coordinate(52.52) == "52.52000"
    assert format_coordinate(-126.1049651) == "-126.1049651"


@pytest.mark.parametrize(
    ("coordinates", "reason"),
    [
        ({"latitude": "91.000000", "longitude": "8.000000"}, "out of range"),
        ({"latitude": "0", "longitude": "0"}, "placeholder"),
        ({"latitude": "50.123456", "longitude": "50.123456"}, "copied"),
        ({"latitude": "", "longitude": ""}, "missing"),
        ({"latitude": "north", "longitude": "8.1"}, "not a decimal degree"),
    ],
)
def test_wrong_coordinates_are_rejected_with_a_reason(coordinates, reason):
    assert reason in errors_of(payload(coordinates=coordinates))["coordinates"]


def test_lower_case_enums_and_padded_values_are_normalised():
    data = payload()
    data["evses"][0]["status"] = "charging "
    data["evses"][0]["connectors"][0].update(format="socket", power_type="ac_3_phase", max_voltage="230")
    clean = clean_location(data)
    connector = clean["evses"][0]["connectors"][0]
    assert clean["evses"][0]["status"] == "CHARGING"
    assert (connector["format"], connector["power_type"], connector["max_voltage"]) == ("SOCKET", "AC_3_PHASE", 230)


def test_a_two_letter_country_becomes_alpha3_and_nonsense_is_refused():
    assert clean_location(payload(country="ru"))["country"] == "RUS"
    assert "alpha-3" in errors_of(payload(country="Polska"))["country"]
    assert "alpha-3" in errors_of(payload(country="TRY"))["country"]


def test_timestamps_naive_with_fraction_or_offset_are_utc():
    assert clean_location(payload(last_updated="2024-05-01 10:00:00.123456"))["last_updated"] == datetime(
        2024, 5, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
    assert clean_location(payload(last_updated="2024-05-01T12:00:00+02:00"))["last_updated"] == datetime(
        2024, 5, 1, 10, tzinfo=timezone.utc)
    assert "RFC 3339" in errors_of(payload(last_updated="yesterday"))["last_updated"]


def test_every_missing_required_field_is_reported_at_its_path():
    data = payload()
    for key in ("address", "city", "country", "time_zone", "publish"):
        del data[key]
    del data["evses"][0]["connectors"][1]["max_amperage"]
    data["evses"][0]["connectors"][0]["standard"] = None
    errors = errors_of(data)
    assert {"address", "city", "country", "time_zone", "publish"} <= set(errors)
    assert errors["evses[0].connectors[1].max_amperage"] == "is required"
    assert errors["evses[0].connectors[0].standard"] == "must not be null"


def test_enum_values_outside_ocpi_are_refused_naming_the_valid_ones():
    data = payload(facilities=["CAFE", "SAUNA"])
    data["evses"][0]["connectors"][0]["standard"] = "Type 3 plug"
    errors = errors_of(data)
    assert "'SAUNA' is not one of" in errors["facilities"] and "WIFI" in errors["facilities"]
    assert "IEC_62196_T2" in errors["evses[0].connectors[0].standard"]


def test_unambiguous_names_of_standards_are_mapped():
    data = payload()
    data["evses"][0]["connectors"][0]["standard"] = "Type 2 outlet"
    data["evses"][0]["connectors"][1]["standard"] = "TYPE_2"
    connectors = clean_location(data)["evses"][0]["connectors"]
    assert [c["standard"] for c in connectors] == ["IEC_62196_T2", "IEC_62196_T2"]
    assert connectors[1]["connector_type_code"] == "TYPE_2"


def test_portal_gbt_becomes_gbt_dc_on_a_dc_connector():
    connector = {"id": "1", "standard": "GBT", "format": "CABLE", "power_type": "DC", "max_voltage": 750,
                 "max_amperage": 250, "last_updated": "2024-05-01T10:00:00Z"}
    evse = {"uid": "E1", "status": "AVAILABLE", "connectors": [connector], "last_updated": "2024-05-01T10:00:00Z"}
    assert clean_evse(evse)["connectors"][0]["standard"] == "GBT_DC"


def test_power_type_may_be_left_out_only_where_the_standard_fixes_it():
    base = {"id": "1", "format": "CABLE", "max_voltage": 500, "max_amperage": 125,
            "last_updated": "2024-05-01T10:00:00Z"}
    assert clean_connector({**base, "standard": "CHADEMO"})["power_type"] == "DC"
    with pytest.raises(InvalidPayload) as caught:
        clean_connector({**base, "standard": "IEC_62196_T2"})
    assert caught.value.errors == {"power_type": "is required"}


def test_kilowatts_where_watts_belong_are_refused():
    data = payload()
    data["evses"][0]["connectors"][0]["max_electric_power"] = 22
    assert "22 kW is 22000" in errors_of(data)["evses[0].connectors[0].max_electric_power"]


def test_an_evse_needs_connectors_and_unique_uids():
    data = payload()
    data["evses"].append({**data["evses"][0]})
    data["evses"].append({"uid": "E3", "status": "AVAILABLE", "connectors": [],
                          "last_updated": "2024-05-01T10:00:00Z"})
    errors = errors_of(data)
    assert "used twice" in errors["evses[1].uid"]
    assert "at least one connector" in errors["evses[2].connectors"]


def test_string_lengths_and_charsets_follow_ocpi():
    data = payload(id="X" * 37, city="C" * 46)
    data["evses"][0]["uid"] = "1175 - kullandık"
    errors = errors_of(data)
    assert "maximum is 36" in errors["id"]
    assert "maximum is 45" in errors["city"]
    assert "ASCII" in errors["evses[0].uid"]


def test_long_addresses_are_kept_and_control_characters_become_spaces():
    clean = clean_location(payload(address="1, Jalan Chee Seng 13, Taman Leader, 11200 Tanjung\tBungah"))
    assert clean["address"] == "1, Jalan Chee Seng 13, Taman Leader, 11200 Tanjung Bungah"


def test_time_zone_must_be_iana_and_a_spelling_with_spaces_is_repaired():
    assert clean_location(payload(time_zone="Asia/Kuala Lumpur"))["time_zone"] == "Asia/Kuala_Lumpur"
    assert "IANA" in errors_of(payload(time_zone="Germany"))["time_zone"]


def test_nested_classes_are_checked():
    data = payload(
        opening_times={"twentyfourseven": False, "regular_hours": [{"weekday": 0, "period_begin": "08:00",
                                                                    "period_end": "18:00"}]},
        images=[{"url": "https://example.com/a.jpg", "category": "LOCATION", "type": "image/jpeg"}],
    )
    errors = errors_of(data)
    assert "weekday must be between 1 and 7" in errors["opening_times"]
    data["opening_times"]["regular_hours"][0]["weekday"] = 1
    assert clean_location(data)["images"][0]["type"] == "jpeg"


def test_ocpi_211_names_are_read():
    data = payload(type="PARKING_GARAGE")
    del data["publish"], data["time_zone"]
    connector = data["evses"][0]["connectors"][0]
    connector["voltage"], connector["amperage"] = connector.pop("max_voltage"), connector.pop("max_amperage")
    connector["tariff_id"] = "T1"
    data["evses"][0]["connectors"] = [connector]
    clean = clean_location(data, version=V211)
    assert clean["publish"] is True and clean["parking_types"] == ["PARKING_GARAGE"]
    assert clean["evses"][0]["connectors"][0]["max_voltage"] == 230
    assert clean["evses"][0]["connectors"][0]["tariff_ids"] == ["T1"]


def test_partial_objects_validate_only_what_they_carry():
    clean = clean_location({"name": "New name", "last_updated": "2024-06-01T00:00:00Z"}, partial=True)
    assert set(clean) == {"name", "last_updated"}
    with pytest.raises(InvalidPayload):
        clean_location({"coordinates": {"latitude": "99.0", "longitude": "1.0"}}, partial=True)


def test_not_an_object_is_refused():
    with pytest.raises(InvalidPayload):
        clean_location(["not", "an", "object"])

"""Tests for the UK National Chargepoint Registry parser (locations.registers.uk_ncr).

The inline devices are real rows of the NCR export 2012-2017 (stephenbrowett/EV_charging_stations,
uk-ncr.csv). Contains public sector information licensed under the Open Government Licence v3.0.
Cells the parser does not read (telephone numbers, opening hours, ...) are left out of the
dict-built rows; `RAW_SPLIT_DEVICE` is one physical line copied byte for byte.
"""

import collections
import csv
import io
import re

import pytest

from locations.registers import register_location
from locations.registers.bnetza import RegisterRow
from locations.registers.uk_ncr import (
    CONNECTOR_TYPES,
    FORMAT,
    _type_key,
    detect_uk_ncr,
    iter_uk_ncr_locations,
)
from locations.validation import InvalidPayload, clean_location

BASE_COLUMNS = (
    "chargeDeviceID,reference,name,latitude,longitude,subBuildingName,buildingName,buildingNumber,"
    "thoroughfare,street,doubleDependantLocality,dependantLocality,town,county,postcode,countryCode,uprn,"
    "deviceDescription,locationShortDescription,locationLongDescription,deviceManufacturer,deviceModel,"
    "deviceOwnerName,deviceOwnerWebsite,deviceOwnerTelephoneNo,deviceOwnerContactName,deviceControllerName,"
    "deviceControllerWebsite,deviceControllerTelephoneNo,deviceControllerContactName,deviceNetworks,"
    "chargeDeviceStatus,publishStatus,deviceValidated,dateCreated,dateUpdated,moderated,lastUpdated,"
    "lastUpdatedBy,attribution,dateDeleted,paymentRequired,paymentRequiredDetails,subscriptionRequired,"
    "subscriptionRequiredDetails,parkingFeesFlag,parkingFeesDetails,parkingFeesUrl,accessRestrictionFlag,"
    "accessRestrictionDetails,physicalRestrictionFlag,physicalRestrictionText,onStreetFlag,locationType,"
    "bearing,access24Hours,accessMondayFrom,accessMondayTo,accessTuesdayFrom,accessTuesdayTo,"
    "accessWednesdayFrom,accessWednesdayTo,accessThursdayFrom,accessThursdayTo,accessFridayFrom,"
    "accessFridayTo,accessSaturdayFrom,accessSaturdayTo,accessSundayFrom,accessSundayTo"
).split(",")
CONNECTOR_FIELDS = ["ID", "Type", "RatedOutputKW", "OutputCurrent", "RatedVoltage", "ChargeMethod",
                    "ChargeMode", "TetheredCable", "Status", "Description", "Validated"]
HEADER = BASE_COLUMNS + [f"connector{n}{field}" for n in range(1, 9) for field in CONNECTOR_FIELDS]
# The export's quirk: connector 2's last column is named "connector3Validated" too.
HEADER[HEADER.index("connector2Validated")] = "connector3Validated"
HEADER_LINE = ",".join(HEADER) + "\n"

TOUTLEY_DEPOT = {  # name and reference swapped; CHAdeMO, CCS and 43 kW AC
    "chargeDeviceID": "abbee8617eaf1e79190de6b59ea8c2ce", "reference": "Toutley Depot", "name": "70621",
    "latitude": "51.423036", "longitude": "-0.862208", "thoroughfare": "Toutley Depot",
    "street": "Old Forest Road", "town": "Wokingham", "county": "Berkshire", "postcode": "RG40 5QP",
    "countryCode": "gb", "deviceOwnerName": "Charge Your Car",
    "deviceOwnerWebsite": "http://www.chargeyourcar.org.uk", "deviceControllerName": "Charge Your Car",
    "deviceControllerWebsite": "http://www.chargeyourcar.org.uk", "chargeDeviceStatus": "In service",
    "publishStatus": "Published", "dateCreated": "2015-10-28 15:54:05", "dateUpdated": "2015-10-28 15:54:05",
    "dateDeleted": "n/a",
    "connector1ID": "127406", "connector1Type": "JEVS G105 (CHAdeMO) DC", "connector1RatedOutputKW": "50.0",
    "connector1OutputCurrent": "125", "connector1RatedVoltage": "400", "connector1ChargeMethod": "DC",
    "connector1TetheredCable": "1", "connector1Status": "In service",
    "connector2ID": "127407", "connector2Type": "Type 2 Combo (IEC62196) DC", "connector2RatedOutputKW": "50.0",
    "connector2OutputCurrent": "125", "connector2RatedVoltage": "400", "connector2ChargeMethod": "DC",
    "connector2TetheredCable": "1", "connector2Status": "In service",
    "connector3ID": "127408", "connector3Type": "Type 2 Mennekes (IEC62196)", "connector3RatedOutputKW": "43.0",
    "connector3OutputCurrent": "63", "connector3RatedVoltage": "400",
    "connector3ChargeMethod": "Three Phase AC", "connector3TetheredCable": "1", "connector3Status": "In service",
}
LEINSTER_GARDENS = {  # Source London: no address columns, a 0000-00-00 dateUpdated
    "chargeDeviceID": "755e7babe12f5f5b55756943fab23a2c", "reference": "SRC_LDN60354", "name": "Leinster Gardens",
    "latitude": "51.513484", "longitude": "-0.183624", "countryCode": "gb",
    "locationLongDescription": "Leinster Gardens, Westminster, London, W2 3AN", "deviceOwnerName": "Source London",
    "deviceOwnerWebsite": "https://www.sourcelondon.net", "deviceControllerName": "Source London",
    "deviceControllerWebsite": "https://www.sourcelondon.net", "chargeDeviceStatus": "In service",
    "publishStatus": "Published", "dateCreated": "2014-08-19 05:16:53", "dateUpdated": "0000-00-00 00:00:00",
    "dateDeleted": "n/a",
    "connector1ID": "119161", "connector1Type": "3-pin Type G (BS1363)", "connector1RatedOutputKW": "3.7",
    "connector1OutputCurrent": "16", "connector1RatedVoltage": "230", "connector1ChargeMethod": "Single Phase AC",
    "connector1TetheredCable": "0", "connector1Status": "In service",
    "connector2ID": "119162", "connector2Type": "Type 2 Mennekes (IEC62196)", "connector2RatedOutputKW": "7.0",
    "connector2OutputCurrent": "32", "connector2RatedVoltage": "230", "connector2ChargeMethod": "Single Phase AC",
    "connector2TetheredCable": "0", "connector2Status": "In service",
}
WALSGRAVE_HOSPITAL = {  # a 0000-00-00 dateCreated, updated in summer time
    "chargeDeviceID": "0ca6edd06518290704395d663b6eee16", "reference": "APT-2175-0018-12P",
    "name": "Walsgrave Hospital CRM - 70513", "latitude": "52.423101", "longitude": "-1.436466",
    "buildingName": "Womens and Childrens Ward", "town": "Coventry", "county": "City of Coventry",
    "postcode": "CV2 2DX", "countryCode": "gb",
    "locationLongDescription": "24h access, parking fees apply, near entrance to womens and childrens ward",
    "deviceOwnerName": "University Hospitals Cov and Warks", "deviceOwnerWebsite": "http://www.uhcw.nhs.uk",
    "deviceControllerName": "Charge Your Car", "deviceControllerWebsite": "http://www.chargeyourcar.org.uk",
    "chargeDeviceStatus": "In service", "publishStatus": "Published", "dateCreated": "0000-00-00 00:00:00",
    "dateUpdated": "2016-06-13 14:42:51", "lastUpdated": "2016-06-13 14:42:51", "dateDeleted": "n/a",
    "connector1ID": "122940", "connector1Type": "Type 2 Mennekes (IEC62196)", "connector1RatedOutputKW": "3.7",
    "connector1OutputCurrent": "16", "connector1RatedVoltage": "230", "connector1ChargeMethod": "Single Phase AC",
    "connector1TetheredCable": "0", "connector1Status": "In service",
    "connector2ID": "122941", "connector2Type": "Type 2 Mennekes (IEC62196)", "connector2RatedOutputKW": "3.7",
    "connector2OutputCurrent": "16", "connector2RatedVoltage": "230", "connector2ChargeMethod": "Single Phase AC",
    "connector2TetheredCable": "0", "connector2Status": "In service",
}
MERRION_CENTRE_TESLA = {  # a European Tesla Supercharger; websites without scheme
    "chargeDeviceID": "ec4d3bc6a57395f37fd8e5e16f82f20a", "reference": "MC14 Tesla",
    "name": "Merrion Centre 14 Tesla", "latitude": "53.802358", "longitude": "-1.543641",
    "buildingName": "CitiPark, Merrion Centre", "thoroughfare": "CitiPark, Merrion Way", "town": "Leeds",
    "county": "West Yorkshire", "postcode": "LS28BT", "countryCode": "gb", "deviceOwnerName": "CitiPark",
    "deviceOwnerWebsite": "www.citipark.co.uk", "deviceControllerName": "CitiPark",
    "deviceControllerWebsite": "www.citipark.co.uk", "chargeDeviceStatus": "In service",
    "publishStatus": "Published", "dateCreated": "2017-05-30 14:54:51", "dateUpdated": "2017-05-30 15:19:29",
    "lastUpdated": "2017-05-30 15:19:29", "dateDeleted": "n/a",
    "connector1ID": "129150", "connector1Type": "Type 2 Tesla (IEC62196) DC", "connector1RatedOutputKW": "120.0",
    "connector1OutputCurrent": "300", "connector1RatedVoltage": "400", "connector1ChargeMethod": "DC",
    "connector1TetheredCable": "1", "connector1Status": "In service",
}
BATH_ROAD = {  # a device out of service
    "chargeDeviceID": "cf164e398bebd2384cbbbfe73fa72fcf", "reference": "SRC_LDN60189",
    "name": "9 Bath Road Car Park", "latitude": "51.480920", "longitude": "-0.419318", "buildingNumber": "9",
    "thoroughfare": "Bath Road", "dependantLocality": "Hillingdon", "town": "Hounslow",
    "county": "Greater London", "postcode": "TW6 2AA ", "countryCode": "gb",
    "locationLongDescription": "9 Bath Road, Hounslow, Hillingdon, London, TW6 2AA ",
    "deviceOwnerName": "Source London", "deviceOwnerWebsite": "https://www.sourcelondon.net",
    "deviceControllerName": "Source London", "deviceControllerWebsite": "https://www.sourcelondon.net",
    "chargeDeviceStatus": "Out of service", "publishStatus": "Published", "dateCreated": "2014-08-19 05:15:03",
    "dateUpdated": "2016-01-15 15:06:36", "lastUpdated": "2016-01-15 15:06:36", "dateDeleted": "n/a",
    **{
        f"connector{n}{field}": value
        for n, connector_id in ((1, "118689"), (2, "118690"), (3, "118691"))
        for field, value in (
            ("ID", connector_id), ("Type", "Type 2 Mennekes (IEC62196)"), ("RatedOutputKW", "7.0"),
            ("OutputCurrent", "32"), ("RatedVoltage", "230"), ("ChargeMethod", "Single Phase AC"),
            ("TetheredCable", "0"), ("Status", "Out of service"),
        )
    },
}
GRANTFIELD_SHETLAND = {  # postcode "ZE1 ONT": a letter O for a zero
    "chargeDeviceID": "5b63f3f68913d801426d67ac105e1558", "reference": "SCO50720",
    "name": "Grantfield Council Offices ", "latitude": "60.157558", "longitude": "-1.156903",
    "buildingNumber": "43-45", "thoroughfare": "North Road", "town": "Shetland", "county": "Shetland Islands",
    "postcode": "ZE1 ONT", "countryCode": "gb", "deviceOwnerName": "Charge Your Car",
    "deviceOwnerWebsite": "http://www.chargeyourcar.org.uk", "deviceControllerName": "Charge Your Car",
    "deviceControllerWebsite": "http://www.chargeyourcar.org.uk", "chargeDeviceStatus": "In service",
    "publishStatus": "Published", "dateCreated": "2015-08-10 11:23:31", "dateUpdated": "2016-03-08 13:38:08",
    "lastUpdated": "2016-03-08 13:38:08", "dateDeleted": "n/a",
    "connector1ID": "126008", "connector1Type": "Type 2 Mennekes (IEC62196)", "connector1RatedOutputKW": "7.0",
    "connector1OutputCurrent": "32", "connector1RatedVoltage": "230", "connector1ChargeMethod": "Single Phase AC",
    "connector1TetheredCable": "0", "connector1Status": "In service",
}
MANCHESTER_IN_MADRID = {  # a test device at 40.4° N 3.7° W
    "chargeDeviceID": "d14136bfef12dc8b55cacb005f38637b", "reference": "MT02", "name": "Manchester Tariff street 02",
    "latitude": "40.416288", "longitude": "-3.703373", "buildingName": "CitiPark, Tariff street",
    "thoroughfare": "Tariff Street", "town": "Manchester", "county": "Greater Manchester", "postcode": "M12FJ",
    "countryCode": "gb", "deviceOwnerName": "CitiPark", "deviceControllerName": "CitiPark",
    "chargeDeviceStatus": "In service", "publishStatus": "Published", "dateCreated": "2017-05-30 15:47:32",
    "dateUpdated": "2017-05-30 15:47:32", "dateDeleted": "n/a",
    "connector1ID": "129157", "connector1Type": "Type 2 Tesla (IEC62196) DC", "connector1RatedOutputKW": "120.0",
    "connector1OutputCurrent": "300", "connector1RatedVoltage": "400", "connector1ChargeMethod": "DC",
    "connector1TetheredCable": "1", "connector1Status": "In service",
}
ALL_NULL = {  # "NULL" in every address column
    "chargeDeviceID": "17d6adbfbdb7e94b4012bce72ad86379", "reference": "CYC21178", "name": "NULL",
    "latitude": "54.526820", "longitude": "-1.551709", "thoroughfare": "NULL", "dependantLocality": "NULL",
    "town": "NULL", "postcode": "NULL", "countryCode": "gb", "locationLongDescription": "NULL",
    "deviceOwnerName": "Charge Your Car", "deviceControllerName": "Charge Your Car",
    "chargeDeviceStatus": "In service", "publishStatus": "Published", "dateCreated": "2013-09-25 13:40:17",
    "dateUpdated": "0000-00-00 00:00:00", "dateDeleted": "n/a",
    "connector1ID": "54028", "connector1Type": "Type 2 Mennekes (IEC62196)", "connector1RatedOutputKW": "7.0",
    "connector1OutputCurrent": "32", "connector1RatedVoltage": "230", "connector1ChargeMethod": "Single Phase AC",
    "connector1TetheredCable": "0", "connector1Status": "In service",
}
BRISTOL_ROAD = {  # a quoted cell spanning two lines; 22 kW three-phase
    "chargeDeviceID": "f771411826d0924c724437288664459f", "reference": "APT-TEMPP",
    "name": "Bristol Road Northfield - 70528", "latitude": "52.415522", "longitude": "-1.970484",
    "street": "Bristol Road South", "town": "Birmingham", "county": "West Midlands", "postcode": "B31 2NN",
    "countryCode": "gb", "locationLongDescription": "On-street. Fitted under Midlands PiP\r\n",
    "deviceOwnerName": "Birmingham City Council", "deviceControllerName": "APT",
    "chargeDeviceStatus": "In service", "publishStatus": "Published", "dateCreated": "0000-00-00 00:00:00",
    "dateUpdated": "2016-03-15 11:09:18", "dateDeleted": "n/a",
    "connector1ID": "44448", "connector1Type": "Type 2 Mennekes (IEC62196)", "connector1RatedOutputKW": "22.0",
    "connector1OutputCurrent": "32", "connector1RatedVoltage": "400", "connector1ChargeMethod": "Three Phase AC",
    "connector1TetheredCable": "0", "connector1Status": "In service",
}

# Line 993 of the export as it is: a bare CR inside the unquoted physicalRestrictionText cell.
RAW_SPLIT_DEVICE = (
    "0df94ca5d0479fab1af38bc25e84e0bf,3229,London Road Car Park,51.086136,-1.774669,,,,London Road,,,,"
    "Salisbury,Wiltshire,SP1 3HP,gb,,,,,Chargemaster,,Wiltshire Council,http://www.wiltshire.gov.uk,"
    "01225 770466,,Chargemaster (POLAR),https://www.chargemasterplc.com,01582 400331,,Chargemaster (POLAR),"
    "In service,Published,0,2015-07-09 13:22:03,2016-01-11 11:40:59,Y,2015-11-13 10:05:19,NCR Admin,"
    "Chargemaster (POLAR),n/a,0,,0,,1,,,0,,1,"
    "Drivers unable to remove their vehicle outside of the opening hours.\r ,,Public estate,,0,"
    "07:00,20:00,07:00,20:00,07:00,20:00,07:00,20:00,07:00,20:00,07:00,20:00,07:00,20:00,"
    "125687,Type 2 Mennekes (IEC62196),7.0,32,230,Single Phase AC,3,0,In service,,0,"
    "125688,Type 2 Mennekes (IEC62196),7.0,32,230,Single Phase AC,3,0,In service,,0"
    + "," * 66
    + "\n"
)

OCPI_LATITUDE = re.compile(r"-?[0-9]{1,2}\.[0-9]{5,7}")
OCPI_LONGITUDE = re.compile(r"-?[0-9]{1,3}\.[0-9]{5,7}")


def _line(values: dict) -> str:
    cells = [""] * len(HEADER)
    for name, value in values.items():
        cells[HEADER.index(name)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


def _export(*devices) -> str:
    return HEADER_LINE + "".join(d if isinstance(d, str) else _line(d) for d in devices)


def _parse(text: str) -> list[RegisterRow]:
    return list(iter_uk_ncr_locations(io.StringIO(text, newline="")))


def _one(values: dict) -> RegisterRow:
    (result,) = _parse(_export(values))
    return result


# --------------------------------------------------------------------------- header


def test_detect_accepts_the_ncr_header():
    assert detect_uk_ncr(HEADER) == FORMAT


@pytest.mark.parametrize("header", [
    ["Station Name", "ZIP", "Latitude", "Longitude", "ID"],
    ["Betreiber", "Adresse", "Postleitzahl Ort", "Längengrad [DG]", "Breitengrad [DG]"],
])
def test_detect_rejects_other_registers(header):
    with pytest.raises(ValueError, match="not a UK National Chargepoint Registry export"):
        detect_uk_ncr(header)


def test_other_file_is_refused_before_any_row():
    with pytest.raises(ValueError, match="chargeDeviceID"):
        _parse("Station Name,ZIP,Latitude,Longitude,ID\nLADWP - Truesdale Center,91352,34.2,-118.3,1517\n")
    with pytest.raises(ValueError, match="empty"):
        _parse("")


def test_a_duplicate_among_the_columns_read_is_refused():
    header = HEADER_LINE.replace(",county,", ",town,")
    with pytest.raises(ValueError, match="more than once"):
        _parse(header + _line(TOUTLEY_DEPOT))


# --------------------------------------------------------------------------- locations


def test_device_becomes_an_ocpi_location():
    result = _one(TOUTLEY_DEPOT)
    location = result.location
    assert location["id"] == "GB-NCR-abbee8617eaf1e79190de6b5"
    assert location["name"] == "Toutley Depot"
    assert ("name/reference", "70621/Toutley Depot", "name and reference swapped") in result.warnings
    assert (location["address"], location["city"], location["postal_code"], location["state"]) == (
        "Toutley Depot, Old Forest Road", "Wokingham", "RG40 5QP", "Berkshire"
    )
    assert (location["country"], location["time_zone"], location["publish"]) == ("GBR", "Europe/London", True)
    assert location["coordinates"] == {"latitude": "51.423036", "longitude": "-0.862208"}
    assert location["operator"] == {"name": "Charge Your Car", "website": "http://www.chargeyourcar.org.uk"}
    assert location["last_updated"] == "2015-10-28T15:54:05Z"  # GMT: summer time had ended


def test_each_connector_becomes_an_evse():
    evses = _one(TOUTLEY_DEPOT).location["evses"]
    assert [evse["uid"] for evse in evses] == ["GB-NCR-127406", "GB-NCR-127407", "GB-NCR-127408"]
    assert {evse["status"] for evse in evses} == {"UNKNOWN"}
    chademo, ccs, type2 = (evse["connectors"] for evse in evses)
    assert chademo == [{"id": "1", "standard": "CHADEMO", "format": "CABLE", "power_type": "DC",
                        "max_voltage": 400, "max_amperage": 125, "max_electric_power": 50000}]
    assert (ccs[0]["standard"], ccs[0]["format"], ccs[0]["power_type"]) == ("IEC_62196_T2_COMBO", "CABLE", "DC")
    # 400 V between phases is 230 V line to neutral, which is what OCPI 2.2.1 wants for AC_3_PHASE
    assert type2 == [{"id": "1", "standard": "IEC_62196_T2", "format": "CABLE", "power_type": "AC_3_PHASE",
                      "max_voltage": 230, "max_amperage": 63, "max_electric_power": 43000}]


def test_socket_single_phase_and_three_phase():
    bs1363, type2 = (evse["connectors"][0] for evse in _one(LEINSTER_GARDENS).location["evses"])
    assert (bs1363["standard"], bs1363["format"], bs1363["power_type"]) == ("DOMESTIC_G", "SOCKET", "AC_1_PHASE")
    assert (bs1363["max_voltage"], bs1363["max_amperage"], bs1363["max_electric_power"]) == (230, 16, 3700)
    assert (type2["format"], type2["power_type"], type2["max_electric_power"]) == ("SOCKET", "AC_1_PHASE", 7000)
    (three_phase,) = _one(BRISTOL_ROAD).location["evses"][0]["connectors"]
    assert (three_phase["power_type"], three_phase["max_voltage"], three_phase["max_amperage"]) == (
        "AC_3_PHASE", 230, 32
    )


def test_tesla_supercharger():
    location = _one(MERRION_CENTRE_TESLA).location
    (connector,) = location["evses"][0]["connectors"]
    assert (connector["standard"], connector["format"], connector["power_type"]) == ("TESLA_S", "CABLE", "DC")
    assert connector["max_electric_power"] == 120_000
    assert location["operator"]["website"] == "http://www.citipark.co.uk"
    assert location["postal_code"] == "LS2 8BT"


@pytest.mark.parametrize("ncr_type, standard", [
    ("Type 2 Mennekes (IEC62196)", "IEC_62196_T2"),
    ("3-pin Type G (BS1363)", "DOMESTIC_G"),
    ("JEVS G105 (CHAdeMO) DC", "CHADEMO"),
    ("Type 2 Combo (IEC62196) DC", "IEC_62196_T2_COMBO"),
    ("Type 2 Tesla (IEC62196) DC", "TESLA_S"),
    ("Type 1 SAEJ1772 (IEC 62196)", "IEC_62196_T1"),
    ("Type 3 Scame (IEC62196)", "IEC_62196_T3C"),
])
def test_every_connector_type_of_the_export_maps(ncr_type, standard):
    assert CONNECTOR_TYPES[_type_key(ncr_type)].standard == standard


def test_unknown_connector_type_alone_is_an_error():
    result = _one({**WALSGRAVE_HOSPITAL, "connector1Type": "Hyper Plug", "connector2Type": ""})
    assert result.error == [("connector1Type", "Hyper Plug", "no known connector type")]


def test_device_without_connectors_is_an_error():
    bare = {k: v for k, v in MERRION_CENTRE_TESLA.items() if not k.startswith("connector")}
    ((column, value, reason),) = _one(bare).error
    assert (value, reason) == ("", "no connector")
    assert column.startswith("connector1Type, connector2Type")


def test_out_of_service_device_marks_its_evses():
    evses = _one(BATH_ROAD).location["evses"]
    assert [evse["status"] for evse in evses] == ["OUTOFORDER"] * 3


def test_house_number_joins_the_thoroughfare():
    assert _one(BATH_ROAD).location["address"] == "9 Bath Road"
    assert _one(GRANTFIELD_SHETLAND).location["address"] == "43-45 North Road"
    assert _one(WALSGRAVE_HOSPITAL).location["address"] == "Womens and Childrens Ward"


def test_address_from_the_long_description_when_the_columns_are_empty():
    result = _one(LEINSTER_GARDENS)
    location = result.location
    assert (location["address"], location["city"], location["postal_code"]) == (
        "Leinster Gardens, Westminster", "London", "W2 3AN"
    )
    assert location["state"] is None
    assert ("town", "", "no town, used the location description") in result.warnings


def test_postcodes_are_normalised():
    result = _one(GRANTFIELD_SHETLAND)
    assert result.location["postal_code"] == "ZE1 0NT"
    assert ("postcode", "ZE1 ONT", "letter O read as a zero") in result.warnings
    assert _one(BATH_ROAD).location["postal_code"] == "TW6 2AA"
    assert _one({**BATH_ROAD, "postcode": "TW6"}).location["postal_code"] == "TW6"


# --------------------------------------------------------------------------- dates


def test_zero_dates_are_no_dates():
    # dateUpdated 0000-00-00: dateCreated counts, 05:16:53 British Summer Time
    assert _one(LEINSTER_GARDENS).location["last_updated"] == "2014-08-19T04:16:53Z"
    # dateCreated 0000-00-00: dateUpdated counts
    assert _one(WALSGRAVE_HOSPITAL).location["last_updated"] == "2016-06-13T13:42:51Z"
    never = {**LEINSTER_GARDENS, "dateCreated": "0000-00-00 00:00:00"}
    result = _one(never)
    assert result.ok and result.location["last_updated"] is None and result.warnings == [
        ("town", "", "no town, used the location description")
    ]


def test_register_location_fills_a_missing_date():
    location = _one({**LEINSTER_GARDENS, "dateCreated": "0000-00-00 00:00:00"}).location
    filled = register_location(location, country_code="GB", party_id="TST", last_updated="2020-01-01T00:00:00Z")
    assert filled["last_updated"] == "2020-01-01T00:00:00Z"
    assert filled["evses"][0]["connectors"][0]["last_updated"] == "2020-01-01T00:00:00Z"


# --------------------------------------------------------------------------- the export's quirks


def test_record_broken_by_a_bare_cr_is_rejoined():
    results = _parse(_export(RAW_SPLIT_DEVICE, TOUTLEY_DEPOT))
    assert [(r.row, r.ok) for r in results] == [(2, True), (3, True)]
    split = results[0]
    assert split.warnings == [(
        "physicalRestrictionText",
        "Drivers unable to remove their vehicle outside of the opening hours.",
        "line break inside an unquoted cell, record rejoined",
    )]
    location = split.location
    assert (location["id"], location["name"], location["city"]) == (
        "GB-NCR-0df94ca5d0479fab1af38bc2", "London Road Car Park", "Salisbury"
    )
    assert [evse["uid"] for evse in location["evses"]] == ["GB-NCR-125687", "GB-NCR-125688"]
    assert location["last_updated"] == "2016-01-11T11:40:59Z"


def test_binary_input_gives_the_same_rows():
    text = _export(RAW_SPLIT_DEVICE, BRISTOL_ROAD, TOUTLEY_DEPOT)
    expected = [(r.row, r.location, r.warnings) for r in _parse(text)]
    assert [(r.row, r.location, r.warnings) for r in iter_uk_ncr_locations(io.BytesIO(text.encode()))] == expected
    bom = b"\xef\xbb\xbf" + text.encode()
    assert [(r.row, r.location) for r in iter_uk_ncr_locations(io.BytesIO(bom))] == [e[:2] for e in expected]


def test_parser_streams():
    consumed = []

    def lines():
        for line in io.StringIO(_export(TOUTLEY_DEPOT, BATH_ROAD, WALSGRAVE_HOSPITAL), newline=""):
            consumed.append(line)
            yield line

    assert next(iter_uk_ncr_locations(lines())).row == 2
    assert len(consumed) == 2


def test_quoted_line_breaks_keep_physical_row_numbers():
    results = _parse(_export(BRISTOL_ROAD, TOUTLEY_DEPOT))
    assert [r.row for r in results] == [2, 4]
    assert results[0].ok and results[0].warnings == []


def test_shifted_record_is_an_error_row_and_the_next_one_parses():
    shifted = _line(GRANTFIELD_SHETLAND).replace(",North Road,", ",North Road,,", 1)  # 159 cells
    results = _parse(_export(shifted, TOUTLEY_DEPOT))
    assert [(r.row, r.ok) for r in results] == [(2, False), (3, True)]
    assert results[0].error == [("(record)", "159 cells", "not the header's 158: a shifted or broken record")]


def test_placeholders_are_empty_cells():
    result = _one(ALL_NULL)
    assert result.row == 2 and not result.ok
    assert result.error == [("town", "NULL", "town missing")]


def test_coordinates_outside_the_uk_are_errors():
    result = _one(MANCHESTER_IN_MADRID)
    assert result.error == [("latitude/longitude", "40.416288/-3.703373", "outside the UK")]


def test_country_code_case_does_not_matter():
    assert _one({**TOUTLEY_DEPOT, "countryCode": "GB"}).location == _one(TOUTLEY_DEPOT).location


# --------------------------------------------------------------------------- ids and OCPI


def test_ids_are_stable_between_imports():
    text = _export(*SAMPLES)
    first = [r.location and r.location["id"] for r in _parse(text)]
    assert first == [r.location and r.location["id"] for r in _parse(text)]
    assert _one(TOUTLEY_DEPOT).location["id"] == "GB-NCR-" + TOUTLEY_DEPOT["chargeDeviceID"][:24]


def test_ids_do_not_depend_on_what_else_changes():
    moved = {**TOUTLEY_DEPOT, "name": "Toutley", "latitude": "51.423", "dateUpdated": "2017-01-01 00:00:00"}
    assert _one(moved).location["id"] == _one(TOUTLEY_DEPOT).location["id"]


SAMPLES = [TOUTLEY_DEPOT, LEINSTER_GARDENS, WALSGRAVE_HOSPITAL, MERRION_CENTRE_TESLA, BATH_ROAD,
           GRANTFIELD_SHETLAND, BRISTOL_ROAD, RAW_SPLIT_DEVICE]


def test_locations_match_ocpi_formats_and_pass_validation():
    for result in _parse(_export(*SAMPLES)):
        location = result.location
        assert len(location["id"]) <= 36 and len(location["address"]) <= 45
        assert len(location["city"]) <= 45 and len(location["postal_code"]) <= 10
        assert location["state"] is None or len(location["state"]) <= 20
        assert OCPI_LATITUDE.fullmatch(location["coordinates"]["latitude"])
        assert OCPI_LONGITUDE.fullmatch(location["coordinates"]["longitude"])
        assert all(len(evse["uid"]) <= 36 for evse in location["evses"])
        clean_location(register_location(location, country_code="GB", party_id="TST",
                                         last_updated="2020-01-01T00:00:00Z"))


# --------------------------------------------------------------------------- field data


@pytest.mark.field
def test_field_data_full_export(shared_data, capsys):
    path = shared_data / "locations" / "uk-ncr.csv"
    if not path.exists():
        pytest.skip(f"field data absent: {path}")
    with path.open(encoding="utf-8", newline="") as f:
        assert f.readline() == HEADER_LINE
    total = parsed = 0
    errors, warnings, rejects = collections.Counter(), collections.Counter(), collections.Counter()
    with path.open(encoding="utf-8", newline="") as f:
        for result in iter_uk_ncr_locations(f):
            total += 1
            errors.update(reason for _, _, reason in result.error or [])
            warnings.update(reason for _, _, reason in result.warnings)
            if not result.ok:
                continue
            parsed += 1
            try:
                clean_location(register_location(result.location, country_code="GB", party_id="TST",
                                                 last_updated="2020-01-01T00:00:00Z"))
            except InvalidPayload as exc:
                rejects.update(f"{path_}: {reason}" for path_, reason in exc.errors.items())
    with capsys.disabled():
        print(f"\nuk-ncr.csv: {total} devices, {parsed} parsed, {total - parsed} errors {errors.most_common(5)}"
              f"\n  warnings {warnings.most_common(8)}"
              f"\n  OCPI validation rejects {sum(rejects.values())} {rejects.most_common(5)}")
    assert total == 3966  # 3,968 CSV records: two devices are split by a bare CR
    assert parsed / total > 0.99
    assert not rejects

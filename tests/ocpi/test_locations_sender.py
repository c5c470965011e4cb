"""Our CPO role: eMSPs pull the hub's published catalogue (mod_locations, Sender; transport pagination)."""

import json
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from locations import services
from locations.enums import Moderation
from locations.models import Evse, Location
from tests.conftest import location_payload
from tests.ocpi.locations_fixtures import (  # noqa: F401  (fixtures)
    V211,
    V221,
    alpha_peer,
    bravo_peer,
    emsp_peer,
    ok,
    published,
    refused,
)

pytestmark = pytest.mark.django_db

URL = "/ocpi/2.2.1/cpo/locations"
URL_211 = "/ocpi/2.1.1/cpo/locations"
LAT = re.compile(r"^-?[0-9]{1,2}\.[0-9]{5,7}$")
LNG = re.compile(r"^-?[0-9]{1,3}\.[0-9]{5,7}$")
START = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)


def stamp(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def series(cpo, count: int, prefix: str = "S") -> list[Location]:
    """`count` published locations, one minute apart (the last_updated of the whole object)."""
    locations = []
    for i in range(count):
        payload = location_payload(cpo, f"{prefix}{i}", last_updated=stamp(i))
        for evse in payload["evses"]:
            evse["last_updated"] = stamp(i)
            for connector in evse["connectors"]:
                connector["last_updated"] = stamp(i)
        locations.append(published(cpo, payload))
    return locations


def ids(response) -> list[str]:
    return [location["id"] for location in ok(response)["data"]]


def next_link(response) -> dict | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert match, link
    url = urlsplit(match.group(1))
    assert url.path == URL
    return {key: values[0] for key, values in parse_qs(url.query).items()}


def without_cursor(link: dict) -> dict:
    """The Link's query but its keyset cursor (ocpi.paging), which every next page carries."""
    assert link["cursor"]
    return {key: value for key, value in link.items() if key != "cursor"}


# --- what is listed ---------------------------------------------------------------------------------------

def test_lists_published_locations_of_every_cpo_but_not_pending_ones(alpha, bravo, emsp_peer):
    published(alpha, location_payload(alpha, "A1"))
    published(bravo, location_payload(bravo, "B1"))
    services.location_upsert(cpo=alpha, data=location_payload(alpha, "PENDING"))  # not moderated
    unpublished = published(alpha, location_payload(alpha, "GONE"))
    services.location_moderate(location=unpublished, moderation=Moderation.UNPUBLISHED)
    assert sorted(ids(emsp_peer.get(URL))) == ["A1", "B1"]


def test_a_peer_does_not_get_its_own_partys_locations(alpha, bravo, alpha_peer):
    published(alpha, location_payload(alpha, "A1"))
    published(bravo, location_payload(bravo, "B1"))
    assert ids(alpha_peer.get(URL)) == ["B1"]
    refused(alpha_peer.get(f"{URL}/A1"), 404, 2003)


def test_pending_evses_are_left_out_and_removed_ones_sent_as_removed(alpha, emsp_peer):
    location = published(alpha, location_payload(alpha, "A1"))
    # A second EVSE arrives later: pending until the hub publishes it.
    services.evse_upsert(location=location, data={
        "uid": "NEW", "status": "AVAILABLE", "last_updated": "2024-05-02T00:00:00Z", "connectors": [
            {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
             "max_voltage": 230, "max_amperage": 16, "last_updated": "2024-05-02T00:00:00Z"}]})
    evses = ok(emsp_peer.get(f"{URL}/A1"))["data"]["evses"]
    assert [evse["uid"] for evse in evses] == ["A1-E1"]
    refused(emsp_peer.get(f"{URL}/A1/NEW"), 404, 2003)
    # The CPO drops its EVSE from the location: REMOVED, still sent so that eMSPs learn of it.
    services.location_upsert(cpo=alpha, data=location_payload(alpha, "A1", evses=[],
                                                              last_updated="2024-05-03T00:00:00Z"))
    evses = ok(emsp_peer.get(f"{URL}/A1"))["data"]["evses"]
    assert [(evse["uid"], evse["status"]) for evse in evses] == [("A1-E1", "REMOVED")]


def test_object_gets_and_unknown_objects(alpha, emsp_peer):
    published(alpha, location_payload(alpha, "A1"))
    assert ok(emsp_peer.get(f"{URL}/A1"))["data"]["id"] == "A1"
    assert ok(emsp_peer.get(f"{URL}/A1/A1-E1"))["data"]["uid"] == "A1-E1"
    assert ok(emsp_peer.get(f"{URL}/A1/A1-E1/2"))["data"]["id"] == "2"
    for url in (f"{URL}/NOPE", f"{URL}/A1/NOPE", f"{URL}/A1/A1-E1/9"):
        refused(emsp_peer.get(url), 404, 2003)


def test_the_same_location_id_at_two_cpos_is_told_apart_by_the_routing_headers(alpha, bravo, emsp_peer):
    published(alpha, location_payload(alpha, "SAME", name="Alpha's"))
    published(bravo, location_payload(bravo, "SAME", name="Bravo's"))
    assert "OCPI-to-country-code" in refused(emsp_peer.get(f"{URL}/SAME"), 400, 2000)["status_message"]
    response = emsp_peer.client.get(f"{URL}/SAME", **emsp_peer.headers(), HTTP_OCPI_TO_COUNTRY_CODE="DE",
                                    HTTP_OCPI_TO_PARTY_ID="BRV")
    assert ok(response)["data"]["name"] == "Bravo's"


# --- the JSON ---------------------------------------------------------------------------------------------

def test_json_fits_ocpi(alpha, emsp_peer):
    long_address = "Jalan Sultan Ismail 123, Bukit Bintang, Kuala Lumpur Federal Territory"
    payload = location_payload(alpha, "A1", address=long_address, facilities=["CAFE", "RESTROOM"],
                               parking_types=["OUTDOOR", "PARKING_LOT"], time_zone="Europe/Berlin",
                               coordinates={"latitude": 49.5, "longitude": "8.4680981"})
    payload["evses"][0].update(capabilities=["RFID_READER", "QR_READER"], payment_types=["GCASH"],
                               physical_reference="BAY 02 ( SOCKET ONLY )")
    published(alpha, payload)
    data = ok(emsp_peer.get(URL))["data"][0]
    assert data["address"] == long_address[:45].rstrip(" ,")
    assert Location.objects.get(ocpi_id="A1").address == long_address  # stored whole
    assert data["coordinates"] == {"latitude": "49.50000", "longitude": "8.4680981"}
    assert LAT.match(data["coordinates"]["latitude"]) and LNG.match(data["coordinates"]["longitude"])
    assert data["facilities"] == ["CAFE"]  # RESTROOM is the portal's, not OCPI's
    assert data["parking_type"] == "PARKING_LOT"
    assert data["last_updated"] == "2024-05-01T10:00:00Z"
    evse = data["evses"][0]
    assert evse["capabilities"] == ["RFID_READER"]
    assert "payment_types" not in evse
    assert evse["physical_reference"] == "BAY 02 ( SOCKET"  # OCPI's 16 characters; stored whole
    # Optional fields without a value are absent, not null or empty.
    assert "state" not in data and "images" not in data and "opening_times" not in data
    assert all(value not in (None, "", [], {}) for value in data.values() if value is not data["evses"])
    connector = evse["connectors"][0]
    assert set(connector) == {"id", "standard", "format", "power_type", "max_voltage", "max_amperage",
                              "max_electric_power", "last_updated"}


def test_211_json_and_plain_token(alpha, emsp_peer):
    payload = location_payload(alpha, "A1", parking_types=["ALONG_MOTORWAY"], facilities=["METRO_STATION", "WIFI"],
                               opening_times={"twentyfourseven": True, "regular_hours": []},
                               energy_mix={"is_green_energy": False,
                                           "environ_impact": [{"category": "CARBON_DIOXIDE", "amount": 372}]})
    payload["evses"][0]["capabilities"] = ["RFID_READER", "CONTACTLESS_CARD_SUPPORT"]
    payload["evses"][0]["connectors"][0]["power_type"] = "AC_2_PHASE"
    payload["evses"][0]["connectors"][1]["standard"] = "GBT_DC"  # unknown to 2.1.1: left out
    payload["evses"][0]["connectors"][0]["tariff_ids"] = ["T1", "T2"]
    published(alpha, payload)
    response = emsp_peer.as_version(V211).get(URL_211)
    data = ok(response)["data"][0]
    assert {"country_code", "party_id", "publish", "parking_type"}.isdisjoint(data)
    assert data["type"] == "OTHER"
    assert data["facilities"] == ["WIFI"]
    assert data["coordinates"] == {"latitude": "49.494409", "longitude": "8.468098"}
    assert data["opening_times"] == {"twentyfourseven": True}
    assert data["energy_mix"]["environ_impact"] == [{"source": "CARBON_DIOXIDE", "amount": 372}]
    evse = data["evses"][0]
    assert evse["capabilities"] == ["RFID_READER"]
    assert [c["id"] for c in evse["connectors"]] == ["1"]
    connector = evse["connectors"][0]
    assert (connector["power_type"], connector["voltage"], connector["amperage"], connector["tariff_id"]) == \
        ("AC_1_PHASE", 230, 32, "T1")
    assert {"max_voltage", "max_amperage", "tariff_ids", "max_electric_power"}.isdisjoint(connector)
    refused(emsp_peer.as_version(V211).get(f"{URL_211}/A1/A1-E1/2"), 404, 2003)


def test_not_to_be_published_locations_go_to_221_peers_only(alpha, emsp_peer):
    published(alpha, location_payload(alpha, "PRIVATE", publish=False,
                                      publish_allowed_to=[{"visual_number": "12345-67", "issuer": "NewMotion"}]))
    data = ok(emsp_peer.get(URL))["data"][0]
    assert (data["publish"], data["publish_allowed_to"]) == (False, [{"visual_number": "12345-67",
                                                                       "issuer": "NewMotion"}])
    assert ids(emsp_peer.as_version(V211).get(URL_211)) == []  # 2.1.1 has no flag to pass on


# --- pagination ---------------------------------------------------------------------------------------------

def test_pages_link_total_and_limit(alpha, emsp_peer):
    series(alpha, 5)
    first = emsp_peer.get(URL, limit=2)
    assert ids(first) == ["S0", "S1"]
    assert (first.headers["X-Total-Count"], first.headers["X-Limit"]) == ("5", "2")
    assert without_cursor(next_link(first)) == {"offset": "2", "limit": "2"}
    second = emsp_peer.get(URL, **next_link(first))
    assert ids(second) == ["S2", "S3"]
    last = emsp_peer.get(URL, **next_link(second))
    assert ids(last) == ["S4"]
    assert "Link" not in last.headers and last.headers["X-Limit"] == "2"
    beyond = emsp_peer.get(URL, offset=10)
    assert ids(beyond) == [] and "Link" not in beyond.headers and beyond.headers["X-Total-Count"] == "5"


def test_limit_is_capped_by_the_server(alpha, emsp_peer, settings):
    settings.OCPI_PAGE_LIMIT = 3
    series(alpha, 4)
    response = emsp_peer.get(URL, limit=1000)
    assert len(ids(response)) == 3 and response.headers["X-Limit"] == "3"
    assert without_cursor(next_link(response)) == {"offset": "3", "limit": "3"}
    assert emsp_peer.get(URL).headers["X-Limit"] == "3"


def test_without_a_limit_a_page_is_the_default_size_and_a_peer_may_ask_up_to_the_cap(alpha, emsp_peer, settings):
    settings.OCPI_PAGE_SIZE, settings.OCPI_PAGE_LIMIT = 2, 4
    series(alpha, 5)
    default = emsp_peer.get(URL)
    assert len(ids(default)) == 2 and default.headers["X-Limit"] == "2"
    asked = emsp_peer.get(URL, limit=4)
    assert len(ids(asked)) == 4 and asked.headers["X-Limit"] == "4"
    assert without_cursor(next_link(asked)) == {"offset": "4", "limit": "4"}


def test_date_from_inclusive_date_to_exclusive_and_kept_in_the_link(alpha, emsp_peer):
    series(alpha, 5)
    response = emsp_peer.get(URL, date_from=stamp(1), date_to=stamp(4), limit=2)
    assert ids(response) == ["S1", "S2"]
    assert response.headers["X-Total-Count"] == "3"
    link = next_link(response)
    assert without_cursor(link) == {"date_from": stamp(1), "date_to": stamp(4), "offset": "2", "limit": "2"}
    assert ids(emsp_peer.get(URL, **link)) == ["S3"]
    # Without a zone designator a DateTime is UTC (types.asciidoc).
    assert ids(emsp_peer.get(URL, date_from=stamp(3).rstrip("Z"))) == ["S3", "S4"]


def test_order_is_last_updated_then_id(alpha, emsp_peer):
    series(alpha, 3)
    # S0 is updated last: it moves to the end.
    ok_location = location_payload(alpha, "S0", name="updated", last_updated=stamp(10))
    services.location_upsert(cpo=alpha, data=ok_location)
    assert ids(emsp_peer.get(URL)) == ["S1", "S2", "S0"]


@pytest.mark.parametrize("params", [{"offset": "-1"}, {"limit": "ten"}, {"date_from": "yesterday"}])
def test_bad_paging_parameters_are_2001(emsp_peer, params):
    refused(emsp_peer.get(URL, **params), 400, 2001)


def test_anonymous_is_401(client):
    assert client.get(URL).status_code == 401


# --- constant queries -------------------------------------------------------------------------------------

# auth (the peer with its parties, one query), COUNT, the page's ids, locations (+ cpo), their facilities and
# parking types (one query), EVSEs, their capabilities and parking restrictions (one query), connectors
LIST_QUERIES = 8


@pytest.mark.parametrize("count", [1, 30])
def test_list_queries_do_not_grow(alpha, bravo_peer, count, django_assert_num_queries):
    for location in series(alpha, count):
        services.evse_upsert(location=location, data={
            "uid": "E2", "status": "CHARGING", "capabilities": ["RESERVABLE"], "parking_restrictions": ["EV_ONLY"],
            "last_updated": "2024-05-01T10:00:00Z", "connectors": [
                {"id": "1", "standard": "CHADEMO", "format": "CABLE", "power_type": "DC", "max_voltage": 500,
                 "max_amperage": 125, "last_updated": "2024-05-01T10:00:00Z"}]})
        services.location_moderate(location=location, moderation=Moderation.PUBLISHED)
    with django_assert_num_queries(LIST_QUERIES):
        data = ok(bravo_peer.get(URL))["data"]
    assert len(data) == count
    assert all(len(location["evses"]) == 2 for location in data)
    assert data[-1]["evses"][1]["capabilities"] == ["RESERVABLE"]


# --- the list's JSON is the objects' JSON ----------------------------------------------------------------

UTC = timezone.utc


def varied_catalogue(alpha, bravo) -> None:
    """Locations that use every field the JSON shows, in ways the list's reading of rows must keep:
    unicode, strings over OCPI's lengths, nulls, JSON values the validation would not let in (written
    directly), fractional seconds, years before 1000, REMOVED and pending EVSEs."""
    full = location_payload(
        alpha, "FULL", name="Café Zürich – ☕ 日本", address="Rue du Marché 12, Genève, Suisse, 1204, Europe",
        city="Saint-Rémy-de-Provence-sur-Mer-et-Montagne", postal_code="CH-1204", state="Genève",
        publish=False, publish_allowed_to=[{"visual_number": "12345-67", "issuer": "Émile"}],
        related_locations=[{"latitude": "46.2043907", "longitude": "6.1431577",
                            "name": {"language": "fr", "text": "Entrée côté lac"}}],
        directions=[{"language": "fr", "text": "Suivre « P » ⇒ niveau −2"}],
        operator={"name": "Opérateur ÄÖÜ", "website": "https://example.com/ä"},
        suboperator={"name": "Sub"}, owner={"name": "Owner \"quoted\" \\ backslash"},
        facilities=["CAFE", "RESTROOM", "WIFI", "HOTEL"], parking_types=["INDOOR", "UNDERGROUND_GARAGE"],
        coordinates={"latitude": "-33.8688197", "longitude": "151.2092955"},
        opening_times={"twentyfourseven": False, "regular_hours": [
            {"weekday": 1, "period_begin": "08:00", "period_end": "20:00"}]},
        charging_when_closed=False,
        images=[{"url": "https://example.com/i.png", "category": "LOCATION", "type": "png"}],
        energy_mix={"is_green_energy": True, "energy_sources": [{"source": "SOLAR", "percentage": 12.5}],
                    "environ_impact": [{"category": "NUCLEAR_WASTE", "amount": 0.5}],
                    "supplier_name": "Énergie"},
        last_updated="2024-05-01T10:00:00.123450Z")
    full["evses"][0].update(
        capabilities=["RFID_READER", "QR_READER", "REMOTE_START_STOP_CAPABLE", "CHIP_CARD_SUPPORT"],
        parking_restrictions=["EV_ONLY", "PLUGGED"], floor_level="-2", physical_reference="BAY 02 ( SOCKET ONLY )",
        coordinates={"latitude": "46.2", "longitude": "6.1"},
        status_schedule=[{"period_begin": "2024-06-01T00:00:00Z", "status": "BLOCKED"}],
        directions=[{"language": "de", "text": "Hinten links"}],
        images=[{"url": "https://example.com/e.jpg", "category": "CHARGER", "type": "jpeg"}],
        last_updated="2024-05-01T10:00:00.5Z")
    full["evses"][0]["connectors"][0].update(tariff_ids=["T1", "T2"], power_type="AC_2_PHASE",
                                             terms_and_conditions="https://example.com/terms")
    full["evses"][0]["connectors"][1].update(standard="GBT_DC", max_electric_power=None)
    full["evses"].append({"uid": "FULL-E2", "status": "CHARGING", "last_updated": "2024-05-01T09:00:00Z",
                          "connectors": [{"id": "1", "standard": "CHADEMO", "format": "CABLE", "power_type": "DC",
                                          "max_voltage": 500, "max_amperage": 125,
                                          "last_updated": "2024-05-01T09:00:00.000001Z"}]})
    full["evses"].append({"uid": "FULL-E3", "status": "AVAILABLE", "last_updated": "2024-05-01T09:00:00Z",
                          "connectors": [{"id": "1", "standard": "GBT_AC", "format": "SOCKET",
                                          "power_type": "AC_1_PHASE", "max_voltage": 230, "max_amperage": 16,
                                          "last_updated": "2024-05-01T09:00:00Z"}]})
    rich = {**full, "country_code": bravo.country_code, "party_id": bravo.party_id, "id": "RICH", "publish": True,
            "publish_allowed_to": [], "last_updated": "2024-05-01T10:00:00Z"}
    published(bravo, rich)
    location = published(alpha, full)
    # An EVSE the CPO dropped (REMOVED, still sent) and one the hub has not published (left out).
    services.location_upsert(cpo=alpha, data={**full, "evses": full["evses"][:1] + full["evses"][2:],
                                              "last_updated": "2024-05-02T00:00:00Z"})
    services.evse_upsert(location=location, data={
        "uid": "PENDING", "status": "AVAILABLE", "last_updated": "2024-05-03T00:00:00Z", "connectors": [
            {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
             "max_voltage": 230, "max_amperage": 16, "last_updated": "2024-05-03T00:00:00Z"}]})
    # Stored values no payload would give: JSON false, 0 and "", a very old EVSE, no EVSE coordinates.
    Location.objects.filter(pk=location.pk).update(suboperator="", owner=0, images=False, directions=[],
                                                   name="Café Zürich – ☕ 日本 " + "x" * 236, city="Genève ",
                                                   time_zone="")
    Evse.objects.filter(location=location, uid="FULL-E3").update(
        last_updated=datetime(999, 1, 2, 3, 4, 5, 60, tzinfo=UTC), status_schedule={}, images=0)
    plain = location_payload(alpha, "PLAIN", country="FRA", name="",
                             coordinates={"latitude": "40.0", "longitude": "-74.0000001"},
                             last_updated="2024-05-04T00:00:00Z")
    Location.objects.filter(pk=published(alpha, plain).pk).update(time_zone="")
    published(bravo, location_payload(bravo, "BRAVO", parking_types=["ALONG_MOTORWAY", "PARKING_LOT"],
                                      opening_times={"twentyfourseven": True},
                                      last_updated="2024-05-04T00:00:00Z"))


@pytest.mark.smoke  # the list reads rows with SQL of its own for each engine
@pytest.mark.parametrize("version", [V221, V211])
def test_list_json_is_the_objects_json(alpha, bravo, emsp_peer, version):
    """The list reads plain rows, an object GET model instances: the same JSON, to the order of the keys."""
    varied_catalogue(alpha, bravo)
    caller, url = (emsp_peer, URL) if version != V211 else (emsp_peer.as_version(V211), URL_211)
    listed = ok(caller.get(url))["data"]
    assert [location["id"] for location in listed] == (
        ["RICH", "FULL", "PLAIN", "BRAVO"] if version != V211 else ["RICH", "PLAIN", "BRAVO"])
    for location in listed:
        party = "BRV" if location["id"] in ("RICH", "BRAVO") else "ALP"
        single = caller.client.get(f"{url}/{location['id']}", **caller.headers(), HTTP_OCPI_TO_COUNTRY_CODE="DE",
                                   HTTP_OCPI_TO_PARTY_ID=party)
        assert json.dumps(location) == json.dumps(ok(single)["data"])
    if version == V211:
        return
    full = listed[1]
    assert (full["owner"], full["images"], full["charging_when_closed"]) == (0, False, False)
    assert {"suboperator", "directions"}.isdisjoint(full)
    # No time zone stored: the country's, by the one rule of every way in (locations.timezones): Germany's
    # two zones (Berlin, Busingen) keep one clock.
    assert full["time_zone"] == "Europe/Berlin" and listed[2]["time_zone"] == "Europe/Paris"
    assert [(evse["uid"], evse["status"], evse["last_updated"]) for evse in full["evses"]] == [
        ("FULL-E1", "AVAILABLE", "2024-05-01T10:00:00.5Z"), ("FULL-E2", "REMOVED", "2024-05-02T00:00:00Z"),
        ("FULL-E3", "AVAILABLE", "999-01-02T03:04:05.00006Z")]
    assert full["evses"][1]["connectors"][0]["last_updated"] == "2024-05-01T09:00:00.000001Z"
    assert full["evses"][2]["images"] == 0 and "status_schedule" not in full["evses"][2]

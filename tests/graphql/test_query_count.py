"""The SQL queries of a request are a constant, whatever the number of locations, EVSEs and connectors."""

import pytest

from locations import services
from locations.models import Location
from tests.conftest import location_payload

from .conftest import data_of, gql
from .shapes import EVSE, LOCATION

pytestmark = pytest.mark.django_db

# Every relation of the contract asked for at once (and the EVSE's location, which must cost nothing).
FULL = f"{LOCATION} evses {{ locations {{ id name }} }}"
# Basic:  client key, locations (+ cpo), photos, facilities, parking types, parking restrictions, evses,
#         capabilities, payment types, connectors (+ connector type)
FULL_QUERIES = 10


def catalogue(cpo, count: int) -> None:
    """`count` published locations near Mannheim, each with 2 EVSEs of 2 connectors and every lookup."""
    def evse(ocpi_id: str, n: int) -> dict:
        return {"uid": f"{ocpi_id}-E{n}", "status": "AVAILABLE", "capabilities": ["QR_READER", "RFID_READER"],
                "payment_types": ["GCASH"], "last_updated": "2024-05-01T10:00:00Z", "connectors": [
                    {"id": str(c), "standard": "TYPE_2" if c == 1 else "CHADEMO", "format": "SOCKET",
                     "power_type": "AC_3_PHASE" if c == 1 else "DC", "max_voltage": 400, "max_amperage": 32,
                     "max_electric_power": 22000 * c, "last_updated": "2024-05-01T10:00:00Z"} for c in (1, 2)]}

    services.location_upsert_many(cpo=cpo, items=[location_payload(
        cpo, f"Q{i:03}", coordinates={"latitude": f"49.{4000 + i}", "longitude": f"8.{4600 + i}"},
        facilities=["CAFE", "WIFI"], parking_types=["OUTDOOR"], parking_restrictions=["CUSTOMERS"],
        images=[{"url": "https://cdn.example.com/x.jpg", "category": "LOCATION", "type": "jpeg"}],
        evses=[evse(f"Q{i:03}", 1), evse(f"Q{i:03}", 2)]) for i in range(count)])
    for location in Location.objects.filter(cpo=cpo):
        services.location_moderate(location=location, moderation="PUBLISHED")


@pytest.mark.smoke
@pytest.mark.parametrize("count", [1, 25])
def test_find_ev_filter_locations_queries_do_not_grow(basic, alpha, count, django_assert_num_queries):
    catalogue(alpha, count)
    query = f"{{ find_ev_filter_locations(lat: 49.45, lng: 8.5, distance: 50, limit: 100) {{ {FULL} }} }}"
    with django_assert_num_queries(FULL_QUERIES):
        found = data_of(gql(basic, query), "find_ev_filter_locations")
    assert len(found) == count
    assert all(len(location["evses"]) == 2 and len(location["evses"][1]["connectors"]) == 2 for location in found)
    assert found[0]["evses"][0]["connectors"][0]["connector_type"] == "TYPE_2"
    assert [c["code"] for c in found[-1]["evses"][1]["capabilities"]] == ["RFID_READER", "QR_READER"]


@pytest.mark.parametrize("count", [1, 25])
def test_find_ev_locations_queries_do_not_grow(basic, alpha, count, django_assert_num_queries):
    catalogue(alpha, count)
    with django_assert_num_queries(FULL_QUERIES):
        assert len(data_of(gql(basic, f"{{ find_ev_locations(limit: 100) {{ {FULL} }} }}"),
                           "find_ev_locations")) == count


@pytest.mark.parametrize("count", [1, 25])
def test_bearer_queries_do_not_grow(as_alpha, alpha, count, django_assert_num_queries):
    catalogue(alpha, count)
    # The session, then the same set as above.
    with django_assert_num_queries(FULL_QUERIES):
        assert len(data_of(gql(as_alpha, f"{{ locations(limit: 100) {{ {FULL} }} }}"), "locations")) == count
    # EVSE first: the session, evses (+ location, cpo), capabilities, payment types, connectors, the
    # location's photos, facilities, parking types, parking restrictions, and its EVSEs with theirs.
    query = f"{{ evse(limit: 100) {{ {EVSE} locations {{ {LOCATION} }} }} }}"
    with django_assert_num_queries(13):
        assert len(data_of(gql(as_alpha, query), "evse")) == 2 * count


def test_only_what_is_asked_for_is_fetched(basic, alpha, django_assert_num_queries):
    catalogue(alpha, 3)
    with django_assert_num_queries(2):  # the client key, the locations
        data_of(gql(basic, "{ find_ev_locations { id name distance publish } }"), "find_ev_locations")
    with django_assert_num_queries(3):  # the key is known to the process now: locations, evses, connectors
        data_of(gql(basic, "{ find_ev_locations { evses { connectors { standard evse_uid } } } }"),
                "find_ev_locations")

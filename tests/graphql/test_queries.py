"""The contract's queries: field names, the caller each needs, and CPO isolation (alpha never leaks to bravo)."""

import io

import pytest
from PIL import Image as PILImage

from locations import services, uploads
from locations.models import Evse

from .conftest import BERLIN, HAMBURG, POTSDAM, data_of, error_of, gql, place
from .shapes import CONTRACT_CONNECTOR, CONTRACT_EVSE, CONTRACT_LOCATION, EVSE, LOCATION

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(alpha, bravo):
    """alpha: one published and one pending location; bravo: one published, one the CPO keeps unpublished."""
    return {
        "alpha_published": place(alpha, "A-PUB", BERLIN, name="Alpha Mitte", facilities=["CAFE", "WIFI"],
                                 parking_types=["INDOOR"], parking_restrictions=["CUSTOMERS"]),
        "alpha_pending": place(alpha, "A-PEND", POTSDAM, moderated=False, name="Alpha Geheim"),
        "bravo_published": place(bravo, "B-PUB", HAMBURG, name="Bravo Hafen"),
        "bravo_private": place(bravo, "B-PRIV", HAMBURG, name="Bravo Privat", publish=False),
    }


# --- find_ev_locations (Basic) ----------------------------------------------------------------------

@pytest.mark.smoke
def test_find_ev_locations_returns_published_locations_with_every_contract_field(basic, catalogue):
    found = data_of(gql(basic, f"{{ find_ev_locations {{ {LOCATION} evses {{ locations {{ id }} }} }} }}"),
                    "find_ev_locations")
    assert [location["name"] for location in found] == ["Alpha Mitte", "Bravo Hafen"]
    alpha = found[0]
    assert set(alpha) == CONTRACT_LOCATION
    assert set(alpha["evses"][0]) == CONTRACT_EVSE
    assert set(alpha["evses"][0]["connectors"][0]) == CONTRACT_CONNECTOR
    location = catalogue["alpha_published"]
    assert alpha["id"] == location.pk and alpha["cpo_owner_id"] == location.cpo_id
    assert (alpha["address_lat"], alpha["address_lng"]) == BERLIN
    assert alpha["country_code"] == "DE"  # the CPO's ISO 3166-1 alpha-2 code, as in OCPI
    assert alpha["publish"] is True and alpha["distance"] is None
    assert [f["code"] for f in alpha["facilities"]] == ["CAFE", "WIFI"]
    assert [p["code"] for p in alpha["parking_types"]] == ["INDOOR"]
    assert [p["code"] for p in alpha["parking_restrictions"]] == ["CUSTOMERS"]
    evse = alpha["evses"][0]
    assert evse["cpo_location_id"] == location.pk and evse["locations"] == {"id": location.pk}
    assert [(c["connector_id"], c["standard"], c["max_electric_power"], c["evse_uid"]) for c in evse["connectors"]] == [
        ("1", "IEC_62196_T2", 22000, "A-PUB-E1"), ("2", "IEC_62196_T2_COMBO", 150000, "A-PUB-E1")]


def test_find_ev_locations_shows_no_pending_evse_of_a_published_location(basic, as_alpha, catalogue):
    location = catalogue["alpha_published"]
    services.evse_upsert(location=location, data={
        "uid": "NEW", "status": "AVAILABLE", "last_updated": "2024-06-01T10:00:00Z",
        "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                        "max_voltage": 230, "max_amperage": 16, "last_updated": "2024-06-01T10:00:00Z"}]})
    assert Evse.objects.get(uid="NEW").moderation == "PENDING"
    public = data_of(gql(basic, "{ find_ev_locations { id evses { uid } } }"), "find_ev_locations")
    assert [e["uid"] for e in public[0]["evses"]] == ["A-PUB-E1"]
    own = data_of(gql(as_alpha, f"{{ location(id: {location.pk}) {{ evses {{ uid }} }} }}"), "location")
    assert sorted(e["uid"] for e in own["evses"]) == ["A-PUB-E1", "NEW"]


def test_find_ev_locations_pages(basic, alpha):
    services.location_upsert_many(cpo=alpha, items=[
        {**_bare(alpha, f"L{i:03}"), "coordinates": {"latitude": "50.1", "longitude": f"8.{i:03}1"}}
        for i in range(105)])
    for location in alpha.locations.all():
        services.location_moderate(location=location, moderation="PUBLISHED", with_evses=False)
    ids = sorted(alpha.locations.values_list("pk", flat=True))
    page = lambda args: [l["id"] for l in data_of(gql(basic, f"{{ find_ev_locations{args} {{ id }} }}"),
                                                   "find_ev_locations")]
    assert page("") == ids[:20]
    assert page("(limit: 5, offset: 10)") == ids[10:15]
    assert page("(limit: 1000)") == ids[:100]
    assert page("(offset: 100)") == ids[100:]
    count = data_of(gql(basic, "{ find_ev_locations_count }"), "find_ev_locations_count")
    assert count == 105


@pytest.mark.parametrize("args, message", [
    ("(limit: 0)", "limit must be 1 or more"),
    ("(limit: -5)", "limit must be 1 or more"),
    ("(offset: -1)", "offset must be between 0 and 10000"),
    ("(offset: 10001)", "offset must be between 0 and 10000"),
])
def test_bad_pages_are_errors_saying_what_is_valid(basic, args, message):
    response = gql(basic, f"{{ find_ev_locations{args} {{ id }} }}")
    assert response.status_code == 200
    error = error_of(response)
    assert message in error["message"] and error["extensions"]["code"] == "BAD_USER_INPUT"
    assert response.json()["data"] == {"find_ev_locations": None}


def test_images_are_ocpi_images_then_uploaded_photos(basic, as_alpha, alpha):
    location = place(alpha, "IMG", BERLIN, images=[{
        "url": "https://cdn.example.com/a.jpg", "thumbnail": "https://cdn.example.com/a.thumb.jpg",
        "category": "CHARGER", "type": "jpeg", "width": 800, "height": 600}])
    png = io.BytesIO()
    PILImage.new("RGB", (64, 48), (10, 120, 200)).save(png, format="PNG")
    png.seek(0)
    photo, = uploads.photo_add(location=location, files=[png])
    found = data_of(gql(basic, "{ find_ev_locations { images image_details { url thumbnail category type width "
                               "height } } }"), "find_ev_locations")[0]
    images = found["image_details"]
    assert found["images"] == [image["url"] for image in images]  # the contract's leaf list, same order
    assert images[0] == {"url": "https://cdn.example.com/a.jpg", "thumbnail": "https://cdn.example.com/a.thumb.jpg",
                         "category": "CHARGER", "type": "jpeg", "width": 800, "height": 600}
    assert images[1]["url"] == uploads.storage_url(photo.image) and images[1]["url"].startswith("http")
    assert images[1]["category"] == "LOCATION" and images[1]["width"] == photo.width


# --- Basic and Bearer: who may ask what ---------------------------------------------------------------

@pytest.mark.smoke
@pytest.mark.parametrize("query", ["{ find_ev_locations { id } }", "{ find_ev_filter_locations { id } }",
                                   "{ find_ev_locations_count }", "{ find_ev_filter_locations_count }"])
def test_find_ev_needs_a_client_key(anonymous_api, as_alpha, query):
    for api, reason in ((anonymous_api, "no client key was sent"), (as_alpha, "no client key was sent")):
        response = gql(api, query)
        assert response.status_code == 200
        error = error_of(response)
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert reason in error["message"] and "Authorization: Basic <client key>" in error["message"]


def test_a_wrong_client_key_is_refused(anonymous_api, catalogue):
    anonymous_api.credentials(HTTP_AUTHORIZATION="Basic not-a-key")
    error = error_of(gql(anonymous_api, "{ find_ev_locations { id } }"))
    assert "unknown or revoked client key" in error["message"]


@pytest.mark.smoke
@pytest.mark.parametrize("query", ["{ evse { uid } }", "{ locations { id } }", "{ location(id: 1) { id } }"])
def test_cpo_queries_need_an_access_token(anonymous_api, basic, query):
    for api in (anonymous_api, basic):
        response = gql(api, query)
        assert response.status_code == 200
        error = error_of(response)
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert "Authorization: Bearer <access token>" in error["message"]


def test_an_invalid_access_token_says_so(anonymous_api):
    anonymous_api.credentials(HTTP_AUTHORIZATION="Bearer eyJhbGciOiJIUzI1NiJ9.e30.bad")
    error = error_of(gql(anonymous_api, "{ locations { id } }"))
    assert "the access token is invalid or expired" in error["message"]


def test_a_logged_out_session_is_refused(client_key, alpha_user):
    from tests.emsp.conftest import bearer
    api, _tokens = bearer(client_key, "alpha-owner")
    assert api.post("/ocpi/cpo/api/auth/v1/logout").status_code == 200
    error = error_of(gql(api, "{ locations { id } }"))
    assert "the session has ended" in error["message"]


# --- locations, location (Bearer) -------------------------------------------------------------------

@pytest.mark.smoke
def test_locations_are_the_callers_own_whatever_their_moderation(as_alpha, as_bravo, catalogue):
    mine = data_of(gql(as_alpha, "{ locations { id name publish } }"), "locations")
    assert mine == [  # newest first
        {"id": catalogue["alpha_pending"].pk, "name": "Alpha Geheim", "publish": False},
        {"id": catalogue["alpha_published"].pk, "name": "Alpha Mitte", "publish": True},
    ]
    theirs = data_of(gql(as_bravo, "{ locations { name } }"), "locations")
    assert theirs == [{"name": "Bravo Privat"}, {"name": "Bravo Hafen"}]


def test_locations_page(as_alpha, catalogue):
    assert [l["name"] for l in data_of(gql(as_alpha, "{ locations(limit: 1, offset: 1) { name } }"),
                                       "locations")] == ["Alpha Mitte"]


def test_location_of_the_caller_with_everything(as_alpha, catalogue):
    location = catalogue["alpha_pending"]
    found = data_of(gql(as_alpha, f"{{ location(id: {location.pk}) {{ {LOCATION} }} }}"), "location")
    assert found["name"] == "Alpha Geheim" and found["publish"] is False
    assert found["evses"][0]["uid"] == "A-PEND-E1"


@pytest.mark.smoke
def test_bravo_never_sees_alphas_location(as_bravo, catalogue):
    for key in ("alpha_pending", "alpha_published"):
        location = catalogue[key]
        response = gql(as_bravo, f"{{ location(id: {location.pk}) {{ {LOCATION} }} }}")
        assert response.status_code == 200
        assert response.json()["data"] == {"location": None}
        error = error_of(response)
        assert error["message"] == f"Location {location.pk} not found"
        assert error["extensions"]["code"] == "NOT_FOUND"
        assert b"Alpha" not in response.content and b"A-P" not in response.content
    assert error_of(gql(as_bravo, "{ location(id: 999999) { id } }"))["message"] == "Location 999999 not found"


def test_bravo_sees_nothing_of_alpha_in_evse_and_locations(as_bravo, catalogue):
    for query in (f"{{ evse(limit: 100) {{ {EVSE} locations {{ name }} }} }}",
                  f"{{ locations(limit: 100) {{ {LOCATION} }} }}",
                  '{ evse(location_name: "Alpha") { uid } }'):
        response = gql(as_bravo, query)
        assert response.status_code == 200 and not response.json().get("errors")
        assert b"Alpha" not in response.content and b"A-P" not in response.content


# --- evse (Bearer) ------------------------------------------------------------------------------------

@pytest.fixture
def evses(alpha, bravo):
    first = place(alpha, "A1", BERLIN, name="Zeppelin Garage")
    second = place(alpha, "A2", POTSDAM, name="Bahnhof Ost", moderated=False)
    place(bravo, "B1", HAMBURG, name="Bravo Hafen")
    # Make date_created order differ from location-name order.
    Evse.objects.filter(location=first).update(date_created="2024-01-01T00:00:00Z")
    Evse.objects.filter(location=second).update(date_created="2024-03-01T00:00:00Z")
    return first, second


@pytest.mark.smoke
def test_evse_lists_the_callers_evses_each_with_its_location(as_alpha, evses):
    found = data_of(gql(as_alpha, f"{{ evse {{ {EVSE} locations {{ id name }} }} }}"), "evse")
    assert [(e["uid"], e["locations"]["name"]) for e in found] == [
        ("A2-E1", "Bahnhof Ost"), ("A1-E1", "Zeppelin Garage")]  # newest first by default
    assert set(found[0]) == CONTRACT_EVSE
    assert found[0]["cpo_location_id"] == evses[1].pk and found[0]["status"] == "AVAILABLE"


@pytest.mark.parametrize("args, expected", [
    ('(order_by: "date_created", order: "ASC")', ["A1-E1", "A2-E1"]),
    ('(order_by: "date_created", order: "DESC")', ["A2-E1", "A1-E1"]),
    ('(order_by: "location", order: "ASC")', ["A2-E1", "A1-E1"]),
    ('(order_by: "location", order: "desc")', ["A1-E1", "A2-E1"]),
    ('(location_name: "zeppelin")', ["A1-E1"]),
    ('(location_name: "nowhere")', []),
    ("(limit: 1, offset: 1)", ["A1-E1"]),
])
def test_evse_filters_orders_and_pages(as_alpha, evses, args, expected):
    assert [e["uid"] for e in data_of(gql(as_alpha, f"{{ evse{args} {{ uid }} }}"), "evse")] == expected


@pytest.mark.parametrize("args, message", [
    ('(order_by: "name")', "order_by must be one of location, date_created"),
    ('(order: "UP")', "order must be ASC or DESC"),
    ("(limit: 0)", "limit must be 1 or more"),
    ('(location_name: "a\\u0000b")', "location_name must not contain NUL characters"),
])
def test_evse_bad_arguments(as_alpha, evses, args, message):
    assert message in error_of(gql(as_alpha, f"{{ evse{args} {{ uid }} }}"))["message"]


def _bare(cpo, ocpi_id: str) -> dict:
    from tests.conftest import location_payload
    return location_payload(cpo, ocpi_id, evses=[])

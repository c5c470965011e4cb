"""Every request of the seed 003 (the CPO portal's REST API, its five GraphQL queries, its two webhooks),
sent exactly as printed, answers in the seed's documented shape.

The story is a new CPO's, in the seed's order: its front end uploads `cpo-logo.png` and registers
`solarius` naming that file, the owner logs in, its back end pushes the seed's locations and EVSE by
webhook, and drivers' apps ask the seed's queries. Ids the seed prints (location 176 in the EVSE webhook,
755 in the `Location` query) are made the real ids, so that not even they are changed.
"""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import User
from django.db import connection
from PIL import Image as PILImage
from rest_framework.test import APIClient

from emsp.services import portal_client_create
from locations import services
from locations.csv_import import csv_template
from locations.models import Connector, Cpo, Evse, Location, Photo

from .seeds import (
    QUERIES,
    REQUESTS,
    RESPONSES,
    SEED,
    query,
    request_body,
    response_example,
    seed_examples,
    selection_problems,
    shape_problems,
)

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]  # both databases: the contract holds on each
PASSWORD = "solarius: a long passphrase 2024"
MAKATI = (14.559192, 121.017516)  # the point of the seed's find_ev_filter_locations


def _image(name: str, colour=(10, 120, 200), fmt: str = "PNG") -> io.BytesIO:
    data = io.BytesIO()
    PILImage.new("RGB", (40, 30), colour).save(data, format=fmt)
    data.seek(0)
    data.name = name
    return data


def _next_id(model, value: int) -> None:
    """Make `value` the next primary key of `model`'s table (both databases)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, value - 1])
        else:
            cursor.execute("DELETE FROM sqlite_sequence WHERE name = %s", [table])
            cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, value - 1])


def _answer(response, example: str):
    """The body, after checking the envelope's HTTP status and the seed's documented shape."""
    body = response.json()
    assert response.status_code == 200, body
    expected = response_example(example)
    assert shape_problems(expected, body) == [], body
    assert body["status"] == 200 and body["message"] == expected["message"]
    return body


@pytest.fixture
def front_end(db, settings) -> APIClient:
    settings.EVHUB_COUNTRY_CODE = "PH"  # the seed's CPOs are in the Philippines
    _, key = portal_client_create(name="solarius portal")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {key}")
    return api


@pytest.fixture
def solarius(front_end) -> Cpo:
    """Registered as the seed shows: the logo uploaded under `cpo_logo`, then named by its file name."""
    _answer(front_end.post("/ocpi/cpo/2.2/cpo/upload", {"cpo_logo": _image("cpo-logo.png")}, format="multipart"),
            "logo_upload")
    _answer(front_end.post("/ocpi/cpo/2.2/register", request_body("register"), format="json"), "register")
    user = User.objects.get(username="solarius")
    user.set_password(PASSWORD)  # the emailed set-password link is the portal's own test's
    user.save()
    return Cpo.objects.get(owner=user)


@pytest.fixture
def tokens(front_end, solarius) -> dict:
    body = request_body("login")
    assert set(body) == {"username", "password"}  # the seed's body, with this user's values
    body.update(username="solarius", password=PASSWORD)
    return _answer(front_end.post("/ocpi/cpo/api/auth/v1/login", body, format="json"), "login")["data"]


@pytest.fixture
def owner(tokens) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    return api


@pytest.fixture
def back_end(owner, solarius) -> APIClient:
    """The CPO's back end, calling with its token C as the seed's `Bearer CPO_TOKEN_C`."""
    token_c = owner.post("/ocpi/cpo/api/v1/credentials/token-c").json()["data"]["token_c"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_c}")
    return api


def _webhook_url(kind: str, cpo: Cpo) -> str:
    return f"/ocpi/cpo/api/v1/webhook/{kind}/{cpo.country_code}/{cpo.party_id}"


@pytest.fixture
def pushed(back_end, solarius) -> Location:
    """The seed's locations webhook, as printed; its location becomes 176, the id the EVSE webhook names."""
    _next_id(Location, 176)
    body = _answer(back_end.post(_webhook_url("locations", solarius), request_body("webhook_locations"),
                                 format="json"), "webhook_locations")
    assert body["data"] == [{"location_id": 176}]
    return Location.objects.get(pk=176)


@pytest.fixture
def published(solarius, owner) -> Location:
    """Location 755 (the seed's `location(id: 755)`) at the seed's search point, published, with a photo."""
    _next_id(Location, 755)
    data = {
        "country_code": solarius.country_code, "party_id": solarius.party_id, "id": "MKT-1", "publish": True,
        "name": "Filinvest Makati Hub", "address": "Ayala Avenue 6750", "city": "Makati", "state": "Metro Manila",
        "postal_code": "1226", "country": "PHL", "time_zone": "Asia/Manila",
        "coordinates": {"latitude": f"{MAKATI[0]:.6f}", "longitude": f"{MAKATI[1] + 0.01:.6f}"},
        "facilities": ["CAFE", "WIFI"], "parking_type": "PARKING_GARAGE",
        "evses": [{"uid": "MKT-1-E1", "status": "AVAILABLE", "capabilities": ["QR_READER"],
                   "payment_types": ["GCASH"], "last_updated": "2024-06-01T10:00:00Z",
                   "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                                   "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 32,
                                   "max_electric_power": 22000, "last_updated": "2024-06-01T10:00:00Z"}]}],
        "last_updated": "2024-06-01T10:00:00Z",
    }
    location = services.location_upsert(cpo=solarius, data=data).instance
    assert location.pk == 755
    services.location_moderate(location=location, moderation="PUBLISHED")
    _answer(owner.post("/ocpi/cpo/api/v1/locations/photos/uploads",
                       {"location_photos": [_image("front.png"), _image("bay.jpg", fmt="JPEG")],
                        "location_id": "755"}, format="multipart"), "photos_upload")
    return Location.objects.get(pk=755)


# --- REST ---------------------------------------------------------------------------------------------------

def test_register_names_the_logo_by_the_file_name_it_was_uploaded_as(front_end, solarius):
    assert solarius.owner_name == "Solarius" and solarius.contact_email == "ceo@solarius.example"
    assert solarius.logo.startswith("logos/") and solarius.logo.endswith(".png")


def test_login_refresh_change_password_and_logout(front_end, tokens, owner):
    assert tokens["role"] == "CPO_OWNER"
    refresh = APIClient()
    refresh.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['refresh_token']}")
    renewed = _answer(refresh.get("/ocpi/cpo/api/auth/v1/refresh"), "refresh")["data"]
    assert renewed["role"] == "CPO_OWNER" and renewed["refresh_token"] != tokens["refresh_token"]
    _answer(owner.post("/ocpi/cpo/api/auth/v1/change-old-password",
                       {"old_password": PASSWORD, "new_password": "another long passphrase 2025"}, format="json"),
            "change_old_password")
    login = {"username": "solarius", "password": "another long passphrase 2025"}
    fresh = _answer(front_end.post("/ocpi/cpo/api/auth/v1/login", login, format="json"), "login")["data"]
    again = APIClient()
    again.credentials(HTTP_AUTHORIZATION=f"Bearer {fresh['access_token']}")
    body = _answer(again.post("/ocpi/cpo/api/auth/v1/logout"), "logout")
    assert body["data"] == [] and body["message"] == "Logged out successfully"


def test_details_and_the_logo_update_by_uploaded_file_name(front_end, owner, solarius):
    before = _answer(owner.get("/ocpi/cpo/2.2/details"), "details")["data"]
    assert before["cpo_owner_name"] == "Solarius" and before["party_id"] == solarius.party_id
    _answer(front_end.post("/ocpi/cpo/2.2/cpo/upload", {"cpo_logo": _image("filename.png", (200, 0, 0))},
                           format="multipart"), "logo_upload")
    body = _answer(owner.patch("/ocpi/cpo/2.2/cpo/logo/upload", request_body("logo_patch"), format="json"),
                   "logo_patch")
    assert body["data"] == []
    after = _answer(owner.get("/ocpi/cpo/2.2/details"), "details")["data"]
    assert after["logo"] != before["logo"] and after["logo"].endswith(".png")


def test_location_photos_upload_and_replace(owner, published):
    photos = list(Photo.objects.filter(location=published).order_by("pk"))
    assert len(photos) == 2
    body = _answer(owner.patch(f"/ocpi/cpo/api/v1/locations/photos/uploads/{photos[0].pk}",
                               {"location_photo": _image("new.png", (0, 200, 0))}, format="multipart"),
                   "photo_patch")
    assert body["data"] == []
    photos[0].refresh_from_db()
    assert photos[0].image != Photo.objects.get(pk=photos[1].pk).image


def test_csv_upload(owner, solarius):
    csv = io.BytesIO(csv_template().encode("utf-8"))
    csv.name = "locations.csv"
    body = _answer(owner.post("/ocpi/cpo/api/v2/locations/uploads/csv", {"file": csv}, format="multipart"),
                   "csv_upload")
    assert body["data"] == [] and Location.objects.filter(cpo=solarius).exists()


def test_filters_and_cities(front_end, solarius):
    filters = _answer(front_end.get("/ocpi/cpo/2.2/filters"), "filters")["data"]
    seed_codes = {item["code"] for item in response_example("filters")["data"]["connector_types"]}
    assert seed_codes <= {item["code"] for item in filters["connector_types"]}  # TYPE_1, TYPE_2, CHADEMO, GBT
    location = services.location_upsert(cpo=solarius, data={
        "country_code": solarius.country_code, "party_id": solarius.party_id, "id": "OLO-1", "publish": True,
        "name": "SM City Olongapo", "address": "Rizal Avenue", "city": "Olongapo", "state": "Zambales",
        "country": "PHL", "time_zone": "Asia/Manila", "coordinates": {"latitude": "14.829150", "longitude": "120.282830"},
        "last_updated": "2024-06-01T10:00:00Z"}).instance
    services.location_moderate(location=location, moderation="PUBLISHED")
    body = _answer(front_end.get("/ocpi/cpo/2.2/filters/cities/Zambales"), "cities")
    assert body["data"] == response_example("cities")["data"] == [{"city": "Olongapo"}]


def test_pending_locations_and_evses(owner, back_end, solarius):
    none = owner.get("/ocpi/cpo/2.2/locations/pending").json()
    assert none == {"status": 200, "data": "NO_PENDING_LOCATIONS_AND_EVSES", "message": "Success"}
    _answer(back_end.post(_webhook_url("locations", solarius), request_body("webhook_locations"), format="json"),
            "webhook_locations")
    body = _answer(owner.get("/ocpi/cpo/2.2/locations/pending"), "pending")
    assert body["data"] == response_example("pending")["data"]  # the seed's 1 location with 2 EVSEs


# --- Webhooks -----------------------------------------------------------------------------------------------

def test_locations_webhook_stores_the_portals_values_as_plausible_ocpi(pushed):
    assert pushed.name == "Yan-Yan's Store" and (pushed.address_lat, pushed.address_lng) == (14.12345, 121.12345)
    assert sorted(pushed.facilities.values_list("code", flat=True)) == ["CAFE", "CINEMA"]
    connectors = Connector.objects.filter(evse__location=pushed).order_by("evse__uid")
    # "AC" at 230 V is one phase; "120" is the portal's kW, more than 230 V x 16 A can carry: that limit.
    assert [(c.evse.uid, c.standard, c.power_type, c.max_voltage, c.max_amperage, c.max_electric_power)
            for c in connectors] == [("123", "IEC_62196_T2", "AC_1_PHASE", 230, 16, 3680),
                                     ("123456689", "CHADEMO", "AC_1_PHASE", 230, 16, 3680)]
    evse = Evse.objects.get(location=pushed, uid="123")
    assert evse.meter_type == "AC" and evse.kwh == 7


def test_locations_webhook_sent_twice_changes_nothing(back_end, solarius, pushed):
    before = list(Connector.objects.filter(evse__location=pushed).values_list("pk", "date_modified"))
    body = _answer(back_end.post(_webhook_url("locations", solarius), request_body("webhook_locations"),
                                 format="json"), "webhook_locations")
    assert body["data"] == [{"location_id": 176}]
    assert list(Connector.objects.filter(evse__location=pushed).values_list("pk", "date_modified")) == before


def test_evse_webhook_as_printed(back_end, solarius, pushed):
    body = _answer(back_end.post(_webhook_url("evse", solarius), request_body("webhook_evse"), format="json"),
                   "webhook_evse")
    assert body["data"] == "SUCCESS"
    assert Evse.objects.filter(location=pushed).count() == 2  # the seed's uid 123456689 again: replaced


# --- GraphQL ------------------------------------------------------------------------------------------------

def _graphql(api: APIClient, name: str) -> dict:
    response = api.post("/graphql", data=json.dumps({"query": query(name)}), content_type="application/json")
    body = response.json()
    assert response.status_code == 200 and not body.get("errors"), body
    assert selection_problems(query(name), body["data"]) == []
    return body["data"]


@pytest.mark.parametrize("name, caller, field", [
    ("Evse", "owner", "evse"), ("Locations", "owner", "locations"), ("Location", "owner", "location"),
    ("Find_ev_locations", "front_end", "find_ev_locations"),
    ("Find_ev_filter_locations", "front_end", "find_ev_filter_locations"),
])
def test_the_five_queries_as_printed(request, published, name, caller, field):
    found = _graphql(request.getfixturevalue(caller), name)[field]
    locations = [found] if isinstance(found, dict) else found
    assert locations, f"{name} found nothing"
    location = locations[0]["locations"] if name == "Evse" else locations[0]
    assert location["id"] == 755
    assert len(location["images"]) == 2 and all(url.startswith("http") for url in location["images"])


@pytest.mark.parametrize("name, caller", [("Evse", "owner"), ("Locations", "owner"), ("Location", "owner"),
                                          ("Find_ev_locations", "front_end"),
                                          ("Find_ev_filter_locations", "front_end")])
def test_the_five_queries_as_printed_through_the_served_application(request, published, name, caller):
    """The WSGI application gunicorn serves (config/wsgi.py: an app's POST /graphql on the API lane) answers
    each query as the test client's handler does."""
    from django.test import RequestFactory

    from config.wsgi import application
    from tests.fuzz.conftest import in_test_transaction

    api = request.getfixturevalue(caller)
    body = json.dumps({"query": query(name)})
    environ = RequestFactory().post("/graphql", body, content_type="application/json", **api._credentials).environ
    started = []
    served = b"".join(in_test_transaction(application)(environ, lambda status, headers, *_: started.append(status)))
    assert started == ["200 OK"]
    assert json.loads(served) == {"data": _graphql(api, name)}


def test_find_ev_filter_locations_gives_the_distance(front_end, published):
    found = _graphql(front_end, "Find_ev_filter_locations")["find_ev_filter_locations"]
    assert [location["id"] for location in found] == [755]
    assert 1.0 < found[0]["distance"] < 1.2  # 0.01 degree of longitude at 14.56 N


# --- The fixtures are the seed ------------------------------------------------------------------------------

def test_fixtures_are_the_seed():
    if not SEED.is_file():
        pytest.skip("../shared/seeds is absent (a user's clone has none)")
    queries, requests, responses = seed_examples(SEED.read_text(encoding="utf-8"))
    assert {name: text.strip() for name, text in queries.items()} == {name: query(name).strip() for name in QUERIES}
    assert requests == [request_body(name) for name in REQUESTS]
    assert responses == [response_example(name) for name in RESPONSES]

"""Bad input on every way in gets the interface's own error, never a 500, and nothing stored is broken.

Each case here was a 500 (or a value stored that broke its location for good) before: a `kwh` beyond its
column, a number where a country goes, lone surrogates, JSON nested a thousand deep, integers past 2^63,
bodies past the upload limit, `NaN` in OCPI objects.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from locations.models import Evse, Location
from tests.conftest import location_payload
from tests.emsp.conftest import PASSWORD, alpha_user, as_alpha, client_key  # noqa: F401  (fixtures)
from tests.ocpi.locations_fixtures import alpha_peer, ok, refused  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]  # both databases: SQLite is where kwh broke

DEEP = "[" * 1000 + "]" * 1000
SURROGATE = '"bad \\ud800 text"'  # a JSON escape of a lone surrogate, valid JSON syntax


def webhook_body(**evse_overrides) -> dict:
    evse = {"uid": "E1", "status": "AVAILABLE", "meter_type": "AC", "kwh": 7, "capabilities": [],
            "payment_types": [], "connectors": [{"standard": "TYPE_2", "format": "SOCKET", "power_type": "AC",
                                                 "max_voltage": 230, "max_amperage": 16,
                                                 "max_electric_power": 3700}]}
    evse.update(evse_overrides)
    return {"locations": [{"name": "Depot", "address": "Hafenstr. 1, Mannheim", "lat": "49.49", "lng": "8.46",
                           "evses": [evse]}]}


@pytest.fixture
def backend(alpha) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {alpha.token_c}")
    return api


def push(backend, alpha, body: str | dict, kind: str = "locations"):
    text = body if isinstance(body, str) else json.dumps(body)
    return backend.post(f"/ocpi/cpo/api/v1/webhook/{kind}/{alpha.country_code}/{alpha.party_id}", data=text,
                        content_type="application/json")


def portal_error(response, status: int) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body["status"] == status and isinstance(body["message"], str)
    return body


# --- 1. Numbers bounded to what storage holds -------------------------------------------------------------

@pytest.mark.parametrize("kwh, stored", [(99999999.99, Decimal("99999999.99")), (7.125, Decimal("7.13")),
                                         (100000000, None), (-1, None), ("1e400", None)])
def test_kwh_is_bounded_by_its_column(backend, alpha, kwh, stored):
    response = push(backend, alpha, webhook_body(kwh=kwh))
    if stored is None:
        assert "evses[0].kwh" in portal_error(response, 400)["message"]
        assert not Location.objects.filter(cpo=alpha).exists()
        return
    assert response.status_code == 200, response.json()
    assert Evse.objects.get(location__cpo=alpha).kwh == stored
    # The location reads back and takes later writes (it broke for good when kwh overflowed on SQLite).
    assert push(backend, alpha, webhook_body(kwh=kwh)).status_code == 200


@pytest.mark.parametrize("field", ["max_voltage", "max_amperage", "max_electric_power"])
@pytest.mark.parametrize("value", [2**63, 2**31])
def test_integers_beyond_the_columns_are_refused(backend, alpha, field, value):
    body = webhook_body()
    body["locations"][0]["evses"][0]["connectors"][0][field] = value
    assert field in portal_error(push(backend, alpha, body), 400)["message"]


def test_ocpi_put_with_a_huge_voltage_is_a_2001(alpha, alpha_peer):
    payload = location_payload(alpha)
    payload["evses"][0]["connectors"][0]["max_voltage"] = 2**63
    refused(alpha_peer.put("/ocpi/2.2.1/emsp/locations/DE/ALP/LOC1", payload), 400, 2001)
    assert not Location.objects.exists()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_ocpi_put_with_nan_or_infinity_is_a_2001_and_nothing_is_stored(alpha, alpha_peer, literal):
    text = json.dumps(location_payload(alpha, energy_mix={"is_green_energy": True, "energy_sources": [
        {"source": "SOLAR", "percentage": 12.5}]}))
    text = text.replace("12.5", literal)
    refused(alpha_peer.put("/ocpi/2.2.1/emsp/locations/DE/ALP/LOC1", text), 400, 2001)
    assert not Location.objects.exists()


# --- 2. What used to be a 500 --------------------------------------------------------------------------------

def test_a_number_as_the_webhooks_country(backend, alpha):
    body = webhook_body()
    body["locations"][0]["country"] = 49
    assert "country" in portal_error(push(backend, alpha, body), 400)["message"]


def test_lone_surrogates_in_a_webhook(backend, alpha):
    text = json.dumps(webhook_body()).replace('"Depot"', SURROGATE)
    portal_error(push(backend, alpha, text), 400)
    assert not Location.objects.exists()


def test_lone_surrogates_in_an_ocpi_patch(alpha, alpha_peer):
    ok(alpha_peer.put("/ocpi/2.2.1/emsp/locations/DE/ALP/LOC1", location_payload(alpha)), 201)
    text = '{"name": %s, "last_updated": "2024-06-01T00:00:00Z"}' % SURROGATE
    refused(alpha_peer.patch("/ocpi/2.2.1/emsp/locations/DE/ALP/LOC1", text), 400, 2001)
    assert Location.objects.get().name == "Marktplatz"


def test_lone_surrogates_in_graphql_variables_and_literals(client_key):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
    query = "query Q($city: String) { find_ev_filter_locations(city: $city) { id } }"
    body = '{"query": %s, "variables": {"city": %s}}' % (json.dumps(query), SURROGATE)
    response = api.post("/graphql", data=body, content_type="application/json")
    assert response.status_code == 400
    text = json.dumps({"query": '{ find_ev_filter_locations(city: "bad \\ud800") { id } }'})
    response = api.post("/graphql", data=text, content_type="application/json")
    assert response.status_code == 400 and "Invalid Unicode escape" in response.json()["errors"][0]["message"]
    response = api.get("/graphql", {"query": query, "variables": '{"city": %s}' % SURROGATE},
                       HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and "surrogate" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("method, url, auth", [
    ("post", "/ocpi/cpo/api/auth/v1/login", "basic"),
    ("post", "/ocpi/cpo/2.2/register", "basic"),
    ("post", "/ocpi/cpo/api/auth/v1/set-password", None),
    ("post", "/ocpi/cpo/api/auth/v1/change-old-password", "bearer"),
    ("patch", "/ocpi/cpo/2.2/cpo/logo/upload", "bearer"),
    ("post", "/ocpi/cpo/api/v1/webhook/locations/DE/ALP", "token_c"),
    ("post", "/ocpi/cpo/api/v1/webhook/evse/DE/ALP", "token_c"),
])
@pytest.mark.parametrize("body", [DEEP, '{"username": %s, "password": "x"}' % DEEP, "[" * 40 + "]" * 40,
                                  '{"username": %s, "password": %s}' % (SURROGATE, SURROGATE),
                                  '{"a": NaN}'])
def test_deep_or_broken_json_is_a_400_everywhere(client_key, as_alpha, alpha, method, url, auth, body):
    api = {"basic": APIClient(), "bearer": as_alpha, "token_c": APIClient(), None: APIClient()}[auth]
    if auth == "basic":
        api.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
    elif auth == "token_c":
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {alpha.token_c}")
    response = getattr(api, method)(url, data=body, content_type="application/json")
    portal_error(response, 400)


@pytest.mark.parametrize("url", ["/ocpi/cpo/api/auth/v1/login", "/ocpi/cpo/2.2/register",
                                 "/ocpi/cpo/api/auth/v1/set-password"])
def test_bodies_past_the_limit_are_413(client_key, url):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
    body = json.dumps({"username": "x" * (3 * 1024 * 1024), "password": "y"})
    portal_error(api.post(url, data=body, content_type="application/json"), 413)


def test_csv_values_beyond_the_columns_are_row_errors(as_alpha, alpha):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from locations.csv_import import csv_template

    header, first, *rest = csv_template().splitlines()
    columns = header.split(",")
    cells = first.split(",")
    for name, value in (("kwh", "100000000"), ("max_voltage", str(2**63))):
        if name in columns:
            cells[columns.index(name)] = value
    upload = SimpleUploadedFile("l.csv", "\n".join([header, ",".join(cells)]).encode(), content_type="text/csv")
    response = as_alpha.post("/ocpi/cpo/api/v2/locations/uploads/csv", {"file": upload}, format="multipart")
    body = portal_error(response, 400)
    assert {error["column"] for error in body["data"]} >= {"max_voltage"}
    assert not Location.objects.filter(cpo=alpha).exists()


@pytest.mark.parametrize("huge", [str(2**63), str(2**64 + 5), "9" * 40])
def test_ids_beyond_any_column_are_not_found_not_500(as_alpha, alpha, backend, huge):
    response = as_alpha.patch(f"/ocpi/cpo/api/v1/locations/photos/uploads/{huge}", {}, format="multipart")
    assert response.status_code in (400, 404), response.content
    response = as_alpha.post("/ocpi/cpo/api/v1/locations/photos/uploads", {"location_id": huge}, format="multipart")
    assert response.status_code in (400, 404), response.content
    response = push(backend, alpha, {"location_id": huge, "uid": "E1", "status": "AVAILABLE", "connectors": []},
                    kind="evse")
    assert response.status_code == 404, response.content
    import base64

    uid = base64.urlsafe_b64encode(huge.encode()).decode().rstrip("=")
    response = APIClient().post("/ocpi/cpo/api/auth/v1/set-password",
                                {"uid": uid, "token": "x-y", "new_password": "a long passphrase 99"}, format="json")
    assert response.status_code == 400, response.content

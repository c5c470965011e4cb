"""The CPO webhooks: locations and EVSEs pushed by a CPO back end with its token C."""

import base64
import copy

import pytest

from locations.models import Connector, Evse, Location
from ocpi.webhooks import webhook_location_id

pytestmark = pytest.mark.django_db

LOCATIONS_URL = "/ocpi/cpo/api/v1/webhook/locations/{}/{}"
EVSE_URL = "/ocpi/cpo/api/v1/webhook/evse/{}/{}"

# A recorded payload of the contract's shape (a CPO back end in the Philippines would send the same).
PAYLOAD = {"locations": [
    {"name": "SM City Olongapo", "address": "Rizal Avenue, Olongapo City", "lat": "14.829150", "lng": "120.282830",
     "facilities": ["MALL", "RESTROOM"], "parking_types": ["INDOOR"], "parking_restrictions": ["CUSTOMERS"],
     "evses": [{"uid": "SMO-1", "status": "AVAILABLE", "meter_type": "AC", "kwh": 22,
                "capabilities": ["QR_READER"], "payment_types": ["GCASH"],
                "connectors": [{"standard": "TYPE_2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                                "max_voltage": 400, "max_amperage": 32, "max_electric_power": 22000}]},
               {"uid": "SMO-2", "status": "CHARGING", "meter_type": "DC", "kwh": 50,
                "capabilities": [], "payment_types": ["MAYA"],
                "connectors": [{"standard": "CHADEMO", "format": "CABLE", "power_type": "DC",
                                "max_voltage": 500, "max_amperage": 125, "max_electric_power": 50000},
                               {"standard": "TYPE_2", "format": "CABLE", "power_type": "AC_3_PHASE",
                                "max_voltage": 400, "max_amperage": 63, "max_electric_power": 43000}]}]},
    {"name": "Harbor Point", "address": "Subic Bay Freeport Zone, Olongapo", "lat": 14.819240, "lng": 120.271780,
     "facilities": [], "parking_types": ["OUTDOOR"], "parking_restrictions": [],
     "evses": [{"uid": "HP-1", "status": "AVAILABLE", "meter_type": "AC", "kwh": 7,
                "capabilities": [], "payment_types": [],
                "connectors": [{"standard": "TYPE_1", "format": "CABLE", "power_type": "AC_1_PHASE",
                                "max_voltage": 230, "max_amperage": 32, "max_electric_power": 7400}]}]},
]}


@pytest.fixture
def ph_alpha(db):
    from locations import services

    cpo, token_c = services.cpo_create(country_code="PH", party_id="ALP", owner_name="Alpha Charging Inc.",
                                       auto_publish=True)
    cpo.token_c = token_c
    return cpo


@pytest.fixture
def ph_bravo(db):
    from locations import services

    cpo, token_c = services.cpo_create(country_code="PH", party_id="BRV", owner_name="Bravo Energy Corp.")
    cpo.token_c = token_c
    return cpo


def post(client, url, body, token, scheme="Bearer"):
    return client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=f"{scheme} {token}")


def push_locations(client, cpo, body=PAYLOAD, token=None, scheme="Bearer"):
    return post(client, LOCATIONS_URL.format(cpo.country_code, cpo.party_id), body, token or cpo.token_c, scheme)


def snapshot(cpo) -> list:
    return [(loc.pk, loc.ocpi_id, loc.name, loc.last_updated, loc.date_modified,
             [(e.uid, e.status, e.last_updated, [(c.connector_id, c.standard, c.last_updated) for c in e.connectors.all()])
              for e in loc.evses.order_by("uid")])
            for loc in Location.objects.filter(cpo=cpo).order_by("pk").prefetch_related("evses__connectors")]


def test_locations_webhook_stores_ocpi_locations_and_returns_their_ids(client, ph_alpha):
    response = push_locations(client, ph_alpha)
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == 200 and body["message"] == "Success"
    ids = [item["location_id"] for item in body["data"]]
    assert len(ids) == 2
    first, second = Location.objects.get(pk=ids[0]), Location.objects.get(pk=ids[1])
    assert first.cpo == ph_alpha and first.name == "SM City Olongapo"
    assert first.ocpi_id == webhook_location_id("SM City Olongapo", "14.829150", "120.282830")
    assert (first.address_lat, first.address_lng) == (14.82915, 120.28283)
    assert first.city == "Olongapo City" and first.country == "PHL" and first.time_zone == "Asia/Manila"
    assert sorted(first.facilities.values_list("code", flat=True)) == ["MALL", "RESTROOM"]
    assert list(first.parking_types.values_list("code", flat=True)) == ["INDOOR"]
    evse = first.evses.get(uid="SMO-2")
    assert evse.status == "CHARGING"
    assert [(c.connector_id, c.standard, c.format, c.power_type) for c in evse.connectors.order_by("connector_id")] == [
        ("1", "CHADEMO", "CABLE", "DC"), ("2", "IEC_62196_T2", "CABLE", "AC_3_PHASE")]
    assert second.evses.get().connectors.get().max_electric_power == 7400


def test_the_same_payload_twice_changes_nothing_and_returns_the_same_ids(client, ph_alpha):
    first = push_locations(client, ph_alpha).json()["data"]
    before = snapshot(ph_alpha)
    second = push_locations(client, ph_alpha)
    assert second.status_code == 200
    assert second.json()["data"] == first
    assert snapshot(ph_alpha) == before
    assert Location.objects.filter(cpo=ph_alpha).count() == 2


def test_the_ocpi_form_of_the_token_is_accepted(client, ph_alpha):
    token = base64.b64encode(ph_alpha.token_c.encode()).decode()
    response = push_locations(client, ph_alpha, token=token, scheme="Token")
    assert response.status_code == 200, response.json()


def test_a_changed_status_is_stored_on_the_same_location(client, ph_alpha):
    ids = push_locations(client, ph_alpha).json()["data"]
    body = copy.deepcopy(PAYLOAD)
    body["locations"][0]["evses"][0]["status"] = "OUTOFORDER"
    assert push_locations(client, ph_alpha, body).json()["data"] == ids
    assert Evse.objects.get(location_id=ids[0]["location_id"], uid="SMO-1").status == "OUTOFORDER"


def test_bad_values_are_400_naming_each_field_and_nothing_is_written(client, ph_alpha):
    body = copy.deepcopy(PAYLOAD)
    body["locations"][0]["evses"][0]["status"] = "FREE"
    body["locations"][0]["evses"][1]["connectors"][0]["standard"] = "SCHUKO-ISH"
    body["locations"][0]["evses"][1]["connectors"][1]["format"] = "PLUG"
    body["locations"][1]["lat"] = "north"
    body["locations"][1]["evses"][0]["connectors"][0]["power_type"] = "THREE"
    response = push_locations(client, ph_alpha, body)
    payload = response.json()
    assert response.status_code == 400, payload
    assert payload["status"] == 400 and payload["message"].startswith("Bad Request")
    fields = {error["field"] for error in payload["data"]}
    assert {"locations[0].evses[0].status", "locations[0].evses[1].connectors[0].standard",
            "locations[0].evses[1].connectors[1].format", "locations[1].lat",
            "locations[1].evses[0].connectors[0].power_type"} <= fields
    assert Location.objects.filter(cpo=ph_alpha).count() == 0  # the good location is not written either
    assert Connector.objects.count() == 0


@pytest.mark.parametrize("body", [{}, {"locations": []}, {"locations": "x"}, {"locations": [3]}, [1, 2]])
def test_malformed_bodies_are_400(client, ph_alpha, body):
    response = push_locations(client, ph_alpha, body)
    assert response.status_code == 400, response.content
    assert response.json()["status"] == 400


def test_not_json_is_400_not_500(client, ph_alpha):
    response = client.post(LOCATIONS_URL.format("PH", "ALP"), "{not json", content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {ph_alpha.token_c}")
    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_wrong_party_is_403(client, ph_alpha, ph_bravo):
    response = post(client, LOCATIONS_URL.format("PH", "XYZ"), PAYLOAD, ph_alpha.token_c)
    assert response.status_code == 403
    assert response.json() == {"status": 403, "data": [],
                               "message": "Forbidden: this token does not belong to party PH*XYZ"}


def test_bravos_token_cannot_write_alphas_party(client, ph_alpha, ph_bravo):
    response = push_locations(client, ph_alpha, token=ph_bravo.token_c)
    assert response.status_code == 403
    evse = post(client, EVSE_URL.format("PH", "ALP"), {"location_id": 1, **PAYLOAD["locations"][0]["evses"][0]},
                ph_bravo.token_c)
    assert evse.status_code == 403
    assert Location.objects.count() == 0


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Token bm90LWEtdG9rZW4=", "Basic abc", None])
def test_unknown_or_missing_token_is_401(client, ph_alpha, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(LOCATIONS_URL.format("PH", "ALP"), PAYLOAD, content_type="application/json", **extra)
    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_evse_webhook_adds_and_replaces_an_evse(client, ph_alpha):
    location_id = push_locations(client, ph_alpha).json()["data"][0]["location_id"]
    evse = {"location_id": location_id, "uid": "SMO-3", "status": "AVAILABLE", "meter_type": "DC", "kwh": 120,
            "capabilities": ["CREDIT_DEBIT_PAYABLE"], "payment_types": ["GCASH", "MAYA"],
            "connectors": [{"standard": "GBT", "format": "CABLE", "power_type": "DC", "max_voltage": 750,
                            "max_amperage": 250, "max_electric_power": 120000}]}
    response = post(client, EVSE_URL.format("PH", "ALP"), evse, ph_alpha.token_c)
    assert response.status_code == 200, response.json()
    assert response.json() == {"status": 200, "data": "SUCCESS", "message": "Success"}
    stored = Evse.objects.get(location_id=location_id, uid="SMO-3")
    assert stored.connectors.get().standard == "GBT_DC"
    before = snapshot(ph_alpha)
    assert post(client, EVSE_URL.format("PH", "ALP"), evse, ph_alpha.token_c).status_code == 200
    assert snapshot(ph_alpha) == before
    evse["status"] = "CHARGING"
    assert post(client, EVSE_URL.format("PH", "ALP"), evse, ph_alpha.token_c).status_code == 200
    assert Evse.objects.get(pk=stored.pk).status == "CHARGING"


def test_evse_webhook_bad_values_are_400(client, ph_alpha):
    location_id = push_locations(client, ph_alpha).json()["data"][0]["location_id"]
    evse = {"location_id": location_id, "uid": "SMO-9", "status": "BUSY",
            "connectors": [{"standard": "TYPE_2", "format": "SOCKET", "power_type": "AC",
                            "max_voltage": -1, "max_amperage": 32}]}
    response = post(client, EVSE_URL.format("PH", "ALP"), evse, ph_alpha.token_c)
    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["data"]}
    assert {"status", "connectors[0].max_voltage"} <= fields
    assert not Evse.objects.filter(uid="SMO-9").exists()
    missing = post(client, EVSE_URL.format("PH", "ALP"), {"uid": "X", "status": "AVAILABLE"}, ph_alpha.token_c)
    assert missing.status_code == 400


def test_evse_webhook_for_a_location_of_another_cpo_is_404(client, ph_alpha, ph_bravo):
    bravos = push_locations(client, ph_bravo).json()["data"][0]["location_id"]
    evse = {"location_id": bravos, **PAYLOAD["locations"][0]["evses"][0], "status": "OUTOFORDER"}
    response = post(client, EVSE_URL.format("PH", "ALP"), evse, ph_alpha.token_c)
    assert response.status_code == 404
    assert response.json()["status"] == 404
    assert Evse.objects.get(location_id=bravos, uid="SMO-1").status == "AVAILABLE"


def test_webhooks_are_in_the_openapi_docs(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/ocpi/cpo/api/v1/webhook/locations/{country_code}/{party_id}" in schema["paths"]
    assert "/ocpi/cpo/api/v1/webhook/evse/{country_code}/{party_id}" in schema["paths"]


# --- The portal's values, stored as OCPI's ------------------------------------------------------------------

@pytest.mark.parametrize("sent, stored", [
    # The seed's own connector: AC at 230 V is one phase; 120 is kW, more than 230 V x 16 A carries.
    ({"power_type": "AC", "max_voltage": 230, "max_amperage": 16, "max_electric_power": 120},
     {"power_type": "AC_1_PHASE", "max_voltage": 230, "max_amperage": 16, "max_electric_power": 3680}),
    # AC at 400 V is three phases, stored line to neutral; 22 kW fits 3 x 231 V x 32 A.
    ({"power_type": "ac", "max_voltage": 400, "max_amperage": 32, "max_electric_power": 22},
     {"power_type": "AC_3_PHASE", "max_voltage": 231, "max_amperage": 32, "max_electric_power": 22000}),
    # A nominal rating within 10% of V x I is kept (7.4 kW at 230 V, 32 A).
    ({"power_type": "AC", "max_voltage": 230, "max_amperage": 32, "max_electric_power": 7400},
     {"power_type": "AC_1_PHASE", "max_voltage": 230, "max_amperage": 32, "max_electric_power": 7400}),
    ({"power_type": "DC", "max_voltage": 500, "max_amperage": 125, "max_electric_power": 50},
     {"power_type": "DC", "max_voltage": 500, "max_amperage": 125, "max_electric_power": 50000}),
    # OCPI's own values pass as they are.
    ({"power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 16, "max_electric_power": 11000},
     {"power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 16, "max_electric_power": 11000}),
    # What is no number is left for the validation to name.
    ({"power_type": "AC", "max_voltage": "x", "max_amperage": 16, "max_electric_power": True},
     {"power_type": "AC_1_PHASE", "max_voltage": "x", "max_amperage": 16, "max_electric_power": True}),
])
def test_connector_values_of_the_portal_become_ocpis(sent, stored):
    from ocpi.webhooks import connector_ocpi_of_webhook

    assert connector_ocpi_of_webhook({"standard": "TYPE_2", "format": "SOCKET", **sent}) == {
        "standard": "TYPE_2", "format": "SOCKET", **stored}


def test_the_seeds_connector_reaches_ocpi_readers_as_plausible_values(client, ph_alpha):
    body = copy.deepcopy(PAYLOAD)
    body["locations"][0]["evses"][0]["connectors"] = [{"standard": "CHADEMO", "format": "SOCKET", "power_type": "AC",
                                                       "max_voltage": 230, "max_amperage": 16,
                                                       "max_electric_power": 120}]
    response = push_locations(client, ph_alpha, body)
    assert response.status_code == 200, response.json()
    connector = Connector.objects.get(evse__uid="SMO-1")
    assert (connector.power_type, connector.max_electric_power) == ("AC_1_PHASE", 3680)


def test_an_invalid_location_is_named_once_and_nothing_is_written(client, ph_alpha):
    body = copy.deepcopy(PAYLOAD)
    body["locations"][1]["evses"][0]["status"] = "BROKEN"
    response = push_locations(client, ph_alpha, body)
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["data"]] == ["locations[1].evses[0].status"]
    assert not Location.objects.filter(cpo=ph_alpha).exists()


def test_formulas_in_free_text_are_stored_literal(client, ph_alpha):
    body = copy.deepcopy(PAYLOAD)
    body["locations"][0]["name"] = "=cmd|' /C calc'!A0"
    body["locations"][0]["address"] = "-1+cmd|' /C calc'!A0, Olongapo"
    response = push_locations(client, ph_alpha, body)
    assert response.status_code == 200, response.json()
    location = Location.objects.get(pk=response.json()["data"][0]["location_id"])
    assert (location.name, location.address) == ("'=cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0, Olongapo")
    assert location.city == "Olongapo"

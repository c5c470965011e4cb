"""The BMW link behind seed 000's path, end to end against a loopback CarData (its OAuth with PKCE checked
as BMW does, and its REST): code, approval pending, slow_down, linked with the account's cars; an expired
code starts over; the PKCE verifier never leaves the hub."""

import pytest
from rest_framework.test import APIClient

from tests.drivers.conftest import as_driver
from tests.vehicles.test_bmw_provider import CLIENT_ID, CONTAINER, DEVICE_ANSWER, GCID, TOKEN_ANSWER, VIN, CarData
from vehicles import models as m
from vehicles.providers import bmw

pytestmark = pytest.mark.django_db

BODY = {"client_id": CLIENT_ID}


@pytest.fixture
def cardata(settings):
    server = CarData()
    settings.VEHICLES_BMW_URLS = {"auth_url": server.url, "api_url": server.url}
    yield server
    server.close()


def test_link_a_bmw_with_the_device_code_flow(ada, as_ada, cardata):
    cardata.serve("POST", "/gcdm/oauth/device/code", 200, DEVICE_ANSWER)
    cardata.serve("POST", "/gcdm/oauth/token", 403, {"error": "authorization_pending"})
    cardata.serve("POST", "/gcdm/oauth/token", 400, {"error": "slow_down"})
    cardata.serve("POST", "/gcdm/oauth/token", 200, TOKEN_ANSWER)
    cardata.serve("GET", "/customers/containers", 200, {"containers": []})
    cardata.serve("POST", "/customers/containers", 201, {"containerId": CONTAINER, "name": bmw.CONTAINER_NAME})
    cardata.serve("GET", "/customers/vehicles/mappings", 200, [{"vin": VIN, "mappingType": "PRIMARY"}])
    cardata.serve("GET", f"/customers/vehicles/{VIN}/basicData", 200,
                  {"brand": "BMW", "modelName": "i4 eDrive40", "constructionDate": "2023-03-01T00:00:00Z"})

    first = as_ada.post("/api/bmw/oauth-token", BODY, format="json")
    assert first.status_code == 202
    code = first.json()
    assert code["user_code"] == "sDzZXXmD" and code["verification_uri"].endswith("/oneid/link")
    assert code["interval"] == 5 and "device_code" not in code and "code_verifier" not in code
    assert as_ada.post("/api/bmw/oauth-token", BODY, format="json").json()["interval"] == 5  # pending
    assert as_ada.post("/api/bmw/oauth-token", BODY, format="json").json()["interval"] == 10  # slow_down: +5 s

    linked = as_ada.post("/api/bmw/oauth-token", BODY, format="json")
    assert linked.status_code == 200, linked.content
    token = linked.json()
    assert set(token) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert token["access_token"] == "access-2" and token["token_type"] == "Bearer"
    assert 3500 <= token["expires_in"] <= 3599 and "cardata:api:read" in token["scope"]
    assert token["refresh_token"] == ""  # BMW rotates it: the hub's copy is the only one
    account = m.MakerAccount.objects.get(provider="bmw")
    assert account.driver == ada.user and account.external_id == GCID
    assert account.options["client_id"] == CLIENT_ID and account.options["container_id"] == CONTAINER
    assert "refresh-2" not in account.secrets  # encrypted at rest
    [device] = as_ada.post("/api/get-user-devices").json()
    assert (device["device_id"], device["device_type"], device["brand"]) == (VIN, "bmw", "BMW")
    # The PKCE pair was BMW's to check, and the verifier was sent only to BMW.
    polls = [r["form"] for r in cardata.requests if r["path"] == "/gcdm/oauth/token"]
    assert len(polls) == 3 and all(p["code_verifier"] for p in polls)


def test_an_expired_code_is_told_and_the_next_call_starts_over(as_ada, cardata):
    cardata.serve("POST", "/gcdm/oauth/device/code", 200, DEVICE_ANSWER)
    cardata.serve("POST", "/gcdm/oauth/token", 400, {"error": "expired_token"})
    assert as_ada.post("/api/bmw/oauth-token", BODY, format="json").status_code == 202
    expired = as_ada.post("/api/bmw/oauth-token", BODY, format="json")
    assert expired.status_code == 400 and "expired" in expired.json()["message"]
    assert as_ada.post("/api/bmw/oauth-token", BODY, format="json").status_code == 202
    assert len([r for r in cardata.requests if r["path"] == "/gcdm/oauth/device/code"]) == 2


def test_a_bmw_account_of_another_driver_is_a_conflict(ada, as_ada, ben, cardata):
    cardata.serve("POST", "/gcdm/oauth/device/code", 200, DEVICE_ANSWER)
    cardata.serve("POST", "/gcdm/oauth/token", 200, TOKEN_ANSWER)
    cardata.serve("GET", "/customers/containers", 200, {"containers": [
        {"containerId": CONTAINER, "name": bmw.CONTAINER_NAME, "state": "ACTIVE"}]})
    cardata.serve("GET", "/customers/vehicles/mappings", 200, [])
    from vehicles import services
    from vehicles.providers.base import Tokens

    services.maker_account_link(driver=ben.user, provider="bmw", external_id=GCID, tokens=Tokens())
    as_ben = as_driver("ben")
    assert as_ben.post("/api/bmw/oauth-token", BODY, format="json").status_code == 202  # ben's own pending code
    assert as_ada.post("/api/bmw/oauth-token", BODY, format="json").status_code == 202
    response = as_ada.post("/api/bmw/oauth-token", BODY, format="json")
    assert response.status_code == 409
    assert m.MakerAccount.objects.get(external_id=GCID).driver == ben.user


def test_the_link_needs_a_drivers_token(cardata):
    assert APIClient().post("/api/bmw/oauth-token", BODY, format="json").status_code == 401
    assert not cardata.requests

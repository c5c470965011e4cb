"""A portal CPO's token C is its back end's key: its own objects and the webhooks, nothing of other CPOs."""

import base64

import pytest

from locations.models import Location
from tests.conftest import location_payload
from tests.ocpi.locations_fixtures import emsp_peer, ok, published  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def as_token_c(client, cpo):
    token = base64.b64encode(cpo.token_c.encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Token {token}"}


@pytest.fixture
def catalogue(alpha, bravo):
    published(alpha, location_payload(alpha, "ALPHA-1"))
    published(bravo, location_payload(bravo, "BRAVO-PUB"))
    published(bravo, location_payload(bravo, "BRAVO-HIDDEN", publish=False))
    return alpha, bravo


def test_token_c_lists_only_its_own_cpos_locations(client, catalogue):
    alpha, bravo = catalogue
    body = ok(client.get("/ocpi/2.2.1/cpo/locations", **as_token_c(client, alpha)))
    assert [(loc["party_id"], loc["id"]) for loc in body["data"]] == [("ALP", "ALPHA-1")]
    for other in ("BRAVO-PUB", "BRAVO-HIDDEN"):
        response = client.get(f"/ocpi/2.2.1/cpo/locations/{other}", **as_token_c(client, alpha))
        assert response.json()["status_code"] == 2003, response.json()


def test_token_c_sees_its_own_pending_location(client, alpha):
    from locations import services

    services.location_upsert(cpo=alpha, data=location_payload(alpha, "PENDING-1"))
    assert Location.objects.get(ocpi_id="PENDING-1").moderation == "PENDING"
    body = ok(client.get("/ocpi/2.2.1/cpo/locations/PENDING-1", **as_token_c(client, alpha)))
    assert body["data"]["id"] == "PENDING-1"


def test_an_emsp_peer_still_gets_every_published_location(emsp_peer, catalogue):
    body = ok(emsp_peer.get("/ocpi/2.2.1/cpo/locations"))
    assert {loc["id"] for loc in body["data"]} == {"ALPHA-1", "BRAVO-PUB", "BRAVO-HIDDEN"}


def test_credentials_with_a_token_c_name_no_other_cpo(client, catalogue):
    alpha, _bravo = catalogue
    body = ok(client.get("/ocpi/2.2.1/credentials", **as_token_c(client, alpha)))
    parties = {(role["country_code"], role["party_id"]) for role in body["data"]["roles"]}
    assert ("DE", "BRV") not in parties and ("DE", "ALP") not in parties


def test_token_c_reads_its_pending_evses_in_the_list_and_the_object(client, alpha):
    from locations import services
    from locations.models import Evse

    location = published(alpha, location_payload(alpha, "MIXED"))
    services.evse_upsert(location=location, data={
        "uid": "MIXED-NEW", "status": "AVAILABLE", "last_updated": "2024-06-01T10:00:00Z",
        "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                        "max_voltage": 230, "max_amperage": 16, "last_updated": "2024-06-01T10:00:00Z"}]})
    assert Evse.objects.get(uid="MIXED-NEW").moderation == "PENDING"
    listed = ok(client.get("/ocpi/2.2.1/cpo/locations", **as_token_c(client, alpha)))["data"][0]
    single = ok(client.get("/ocpi/2.2.1/cpo/locations/MIXED", **as_token_c(client, alpha)))["data"]
    for found in (listed, single):
        assert {evse["uid"] for evse in found["evses"]} == {"MIXED-E1", "MIXED-NEW"}
    evse = ok(client.get("/ocpi/2.2.1/cpo/locations/MIXED/MIXED-NEW", **as_token_c(client, alpha)))["data"]
    assert evse["uid"] == "MIXED-NEW"

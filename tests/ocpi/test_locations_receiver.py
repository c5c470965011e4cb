"""Our eMSP role: a connected CPO pushes its Locations, EVSEs and Connectors (mod_locations, Receiver)."""

import copy

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from locations.models import Connector, Evse, Location
from ocpi.models import OutboxEntry, Peer, PeerParty
from tests.conftest import location_payload
from tests.ocpi.locations_fixtures import (  # noqa: F401  (fixtures)
    V211,
    Caller,
    alpha_peer,
    bravo_peer,
    emsp_peer,
    ok,
    refused,
)

pytestmark = pytest.mark.django_db

BASE = "/ocpi/2.2.1/emsp/locations"
ALPHA = f"{BASE}/DE/ALP"
BRAVO = f"{BASE}/DE/BRV"


def evse_payload(uid: str = "LOC1-E2", stamp: str = "2024-06-01T10:00:00Z", status: str = "AVAILABLE") -> dict:
    return {"uid": uid, "evse_id": "DE*ALP*E2", "status": status, "last_updated": stamp, "connectors": [
        {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE", "max_voltage": 230,
         "max_amperage": 16, "last_updated": stamp}]}


@pytest.fixture
def loc1(alpha, alpha_peer):
    ok(alpha_peer.put(f"{ALPHA}/LOC1", location_payload(alpha)), 201)
    return Location.objects.get(cpo=alpha, ocpi_id="LOC1")


# --- PUT: created vs replaced, and what is stored ------------------------------------------------------

def test_put_location_creates_201_then_replaces_200(alpha, alpha_peer):
    ok(alpha_peer.put(f"{ALPHA}/LOC1", location_payload(alpha)), 201)
    body = ok(alpha_peer.put(f"{ALPHA}/LOC1", location_payload(alpha)), 200)
    assert body["status_message"] == "Success: unchanged"
    ok(alpha_peer.put(f"{ALPHA}/LOC1", location_payload(alpha, name="Neuer Name",
                                                        last_updated="2024-05-02T10:00:00Z")), 200)
    location = Location.objects.get(cpo=alpha, ocpi_id="LOC1")
    assert location.name == "Neuer Name"
    assert location.evses.get().connectors.count() == 2


def test_put_older_than_stored_is_ignored_with_success(alpha, alpha_peer, loc1):
    older = location_payload(alpha, name="Old", last_updated="2020-01-01T00:00:00Z")
    for evse in older["evses"]:
        evse["last_updated"] = "2020-01-01T00:00:00Z"
        for connector in evse["connectors"]:
            connector["last_updated"] = "2020-01-01T00:00:00Z"
    body = ok(alpha_peer.put(f"{ALPHA}/LOC1", older), 200)
    assert "not applied" in body["status_message"]
    assert Location.objects.get(pk=loc1.pk).name == "Marktplatz"


def test_put_evse_201_then_200_and_parent_last_updated_follows(alpha, alpha_peer, loc1):
    ok(alpha_peer.put(f"{ALPHA}/LOC1/LOC1-E2", evse_payload()), 201)
    ok(alpha_peer.put(f"{ALPHA}/LOC1/LOC1-E2", evse_payload(status="CHARGING")), 200)
    evse = Evse.objects.get(location=loc1, uid="LOC1-E2")
    assert evse.status == "CHARGING"
    assert Location.objects.get(pk=loc1.pk).last_updated.isoformat() == "2024-06-01T10:00:00+00:00"


def test_put_connector_201_then_200(alpha, alpha_peer, loc1):
    connector = {"id": "3", "standard": "CHADEMO", "format": "CABLE", "power_type": "DC", "max_voltage": 500,
                 "max_amperage": 125, "last_updated": "2024-06-02T10:00:00Z"}
    ok(alpha_peer.put(f"{ALPHA}/LOC1/LOC1-E1/3", connector), 201)
    ok(alpha_peer.put(f"{ALPHA}/LOC1/LOC1-E1/3", {**connector, "max_amperage": 100}), 200)
    assert Connector.objects.get(evse__location=loc1, connector_id="3").max_amperage == 100
    assert Evse.objects.get(location=loc1, uid="LOC1-E1").last_updated.isoformat() == "2024-06-02T10:00:00+00:00"


def test_put_child_of_unknown_parent_is_2003(alpha, alpha_peer, loc1):
    refused(alpha_peer.put(f"{ALPHA}/NOPE/E1", evse_payload("E1")), 404, 2003)
    refused(alpha_peer.put(f"{ALPHA}/LOC1/NOPE/1", evse_payload()["connectors"][0]), 404, 2003)


# --- PATCH --------------------------------------------------------------------------------------------

def test_patch_evse_status_location_name_connector_tariff(alpha, alpha_peer, loc1):
    ok(alpha_peer.patch(f"{ALPHA}/LOC1/LOC1-E1", {"status": "CHARGING", "last_updated": "2024-06-01T00:00:00Z"}))
    ok(alpha_peer.patch(f"{ALPHA}/LOC1", {"name": "Interparking", "last_updated": "2024-06-01T00:00:01Z"}))
    ok(alpha_peer.patch(f"{ALPHA}/LOC1/LOC1-E1/2", {"tariff_ids": ["15"], "last_updated": "2024-06-01T00:00:02Z"}))
    location = Location.objects.get(pk=loc1.pk)
    assert location.name == "Interparking"
    assert location.evses.get().status == "CHARGING"
    assert Connector.objects.get(evse__location=loc1, connector_id="2").tariff_ids == ["15"]
    assert location.last_updated.isoformat() == "2024-06-01T00:00:02+00:00"  # propagated from the connector


def test_patch_without_last_updated_is_2001(alpha_peer, loc1):
    body = refused(alpha_peer.patch(f"{ALPHA}/LOC1/LOC1-E1", {"status": "CHARGING"}), 400, 2001)
    assert "last_updated" in body["status_message"]


def test_patch_of_unknown_objects_is_2003(alpha_peer, loc1):
    stamp = {"status": "CHARGING", "last_updated": "2024-06-01T00:00:00Z"}
    refused(alpha_peer.patch(f"{ALPHA}/NOPE", stamp), 404, 2003)
    refused(alpha_peer.patch(f"{ALPHA}/LOC1/NOPE", stamp), 404, 2003)
    refused(alpha_peer.patch(f"{ALPHA}/LOC1/LOC1-E1/9", stamp), 404, 2003)


# --- ids and parties of the body must be the URL's ---------------------------------------------------------

@pytest.mark.parametrize("url, body", [
    (f"{ALPHA}/OTHER", {"id": "LOC1"}),
    (f"{ALPHA}/LOC1", {"party_id": "BRV"}),
    (f"{ALPHA}/LOC1", {"country_code": "NL"}),
])
def test_put_location_whose_body_names_another_object_is_2001(alpha, alpha_peer, url, body):
    response = alpha_peer.put(url, location_payload(alpha, **body) if "id" not in body else
                              location_payload(alpha, body["id"]))
    assert "does not match" in refused(response, 400, 2001)["status_message"]
    assert not Location.objects.exists()


def test_put_and_patch_children_whose_body_names_another_object_are_2001(alpha_peer, loc1):
    refused(alpha_peer.put(f"{ALPHA}/LOC1/OTHER", evse_payload("LOC1-E2")), 400, 2001)
    connector = evse_payload()["connectors"][0]
    refused(alpha_peer.put(f"{ALPHA}/LOC1/LOC1-E1/7", connector), 400, 2001)
    refused(alpha_peer.patch(f"{ALPHA}/LOC1", {"id": "LOC2", "last_updated": "2024-06-01T00:00:00Z"}), 400, 2001)
    refused(alpha_peer.patch(f"{ALPHA}/LOC1/LOC1-E1", {"uid": "X", "last_updated": "2024-06-01T00:00:00Z"}),
            400, 2001)


# --- validation errors: 2001 with the field's path --------------------------------------------------------

def test_invalid_location_is_2001_with_the_field_paths(alpha, alpha_peer):
    payload = location_payload(alpha)
    del payload["city"]
    payload["evses"][0]["connectors"][1]["max_voltage"] = "lots"
    message = refused(alpha_peer.put(f"{ALPHA}/LOC1", payload), 400, 2001)["status_message"]
    assert "city: is required" in message
    assert "evses[0].connectors[1].max_voltage" in message
    assert not Location.objects.exists()


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", ""])
def test_a_body_that_is_no_json_object_is_2001(alpha_peer, body):
    refused(alpha_peer.put(f"{ALPHA}/LOC1", body), 400, 2001)


def test_url_ids_that_are_no_cistring_are_2001(alpha_peer):
    refused(alpha_peer.get(f"{ALPHA}/{'X' * 37}"), 400, 2001)
    refused(alpha_peer.get(f"{ALPHA}/L%C3%96C"), 400, 2001)  # non-ASCII
    refused(alpha_peer.get(f"{ALPHA}/L%00C"), 400, 2001)  # NUL never reaches PostgreSQL


# --- GET: the CPO checks what we store ------------------------------------------------------------------

def test_get_location_evse_connector_as_stored(alpha, alpha_peer, loc1):
    location = ok(alpha_peer.get(f"{ALPHA}/LOC1"))["data"]
    assert (location["country_code"], location["party_id"], location["id"]) == ("DE", "ALP", "LOC1")
    assert location["evses"][0]["uid"] == "LOC1-E1"  # pending (not yet published by the hub), yet shown to its CPO
    evse = ok(alpha_peer.get(f"{ALPHA}/LOC1/LOC1-E1"))["data"]
    assert [c["id"] for c in evse["connectors"]] == ["1", "2"]
    connector = ok(alpha_peer.get(f"{ALPHA}/LOC1/LOC1-E1/2"))["data"]
    assert connector["standard"] == "IEC_62196_T2_COMBO" and connector["max_electric_power"] == 150000


def test_get_of_unknown_objects_is_2003_404(alpha_peer, loc1):
    refused(alpha_peer.get(f"{ALPHA}/NOPE"), 404, 2003)
    refused(alpha_peer.get(f"{ALPHA}/LOC1/NOPE"), 404, 2003)
    refused(alpha_peer.get(f"{ALPHA}/LOC1/LOC1-E1/9"), 404, 2003)


# --- scope: only the caller's own CPO parties ------------------------------------------------------------

def test_bravo_cannot_read_or_change_alphas_objects(alpha, bravo, alpha_peer, bravo_peer, loc1):
    stamp = "2030-01-01T00:00:00Z"
    for response in (
        bravo_peer.get(f"{ALPHA}/LOC1"),
        bravo_peer.get(f"{ALPHA}/LOC1/LOC1-E1/1"),
        bravo_peer.put(f"{ALPHA}/LOC1", location_payload(alpha, name="Hijacked", last_updated=stamp)),
        bravo_peer.put(f"{ALPHA}/LOC1/LOC1-E9", evse_payload("LOC1-E9", stamp)),
        bravo_peer.patch(f"{ALPHA}/LOC1", {"name": "Hijacked", "last_updated": stamp}),
        bravo_peer.patch(f"{ALPHA}/LOC1/LOC1-E1", {"status": "REMOVED", "last_updated": stamp}),
    ):
        message = refused(response, 404, 2000)["status_message"]
        assert "DE/ALP is not a CPO party of your credentials (yours: DE/BRV)" in message
    # Under its own party, bravo finds nothing of alpha's.
    refused(bravo_peer.get(f"{BRAVO}/LOC1"), 404, 2003)
    refused(bravo_peer.patch(f"{BRAVO}/LOC1", {"name": "Hijacked", "last_updated": stamp}), 404, 2003)
    location = Location.objects.get(pk=loc1.pk)
    assert (location.name, location.evses.count(), location.evses.get().status) == ("Marktplatz", 1, "AVAILABLE")


def test_bravo_puts_the_same_location_id_under_its_own_party(alpha, bravo, bravo_peer, loc1):
    ok(bravo_peer.put(f"{BRAVO}/LOC1", location_payload(bravo)), 201)
    assert {loc.cpo_id for loc in Location.objects.filter(ocpi_id="LOC1")} == {alpha.pk, bravo.pk}


def test_an_emsp_without_cpo_parties_pushes_nothing(alpha, emsp_peer):
    message = refused(emsp_peer.put(f"{ALPHA}/LOC1", location_payload(alpha)), 404, 2000)["status_message"]
    assert "(yours: none)" in message


def test_party_in_the_url_is_case_insensitive(alpha, alpha_peer):
    ok(alpha_peer.put(f"{BASE}/de/alp/LOC1", location_payload(alpha)), 201)


def test_a_cpo_of_ours_pushes_with_its_token_c(alpha, bravo, client):
    own = Caller(client, alpha.token_c)
    ok(own.put(f"{ALPHA}/LOC1", location_payload(alpha)), 201)
    refused(own.put(f"{BRAVO}/LOC1", location_payload(bravo)), 404, 2000)


def test_bad_or_suspended_tokens_are_401(alpha, alpha_peer, client):
    assert Caller(client, "nobody").put(f"{ALPHA}/LOC1", location_payload(alpha)).status_code == 401
    assert client.put(f"{ALPHA}/LOC1", "{}", content_type="application/json").status_code == 401
    Peer.objects.filter(pk=alpha_peer.peer.pk).update(state=Peer.State.SUSPENDED)
    assert alpha_peer.put(f"{ALPHA}/LOC1", location_payload(alpha)).status_code == 401


def test_urls_naming_no_object_answer_in_the_envelope(alpha_peer):
    for url in (BASE, f"{BASE}/", f"{BASE}/DE", f"{ALPHA}"):
        assert "has no list" in refused(alpha_peer.get(url), 405, 2001)["status_message"]
    refused(alpha_peer.put(BASE, {}), 405, 2001)


def test_trailing_slash_is_the_same_object(alpha, alpha_peer, loc1):
    assert ok(alpha_peer.get(f"{ALPHA}/LOC1/"))["data"]["id"] == "LOC1"


# --- 2.1.1: the token sent plain, the objects in 2.1.1's shape ----------------------------------------------

def location_211(ocpi_id: str = "L211") -> dict:
    return {
        "id": ocpi_id, "type": "PARKING_GARAGE", "name": "Garage", "address": "Hauptstraße 5", "city": "Köln",
        "postal_code": "50667", "country": "DEU", "coordinates": {"latitude": "50.937531", "longitude": "6.960279"},
        "last_updated": "2024-05-01T10:00:00Z",
        "evses": [{"uid": "E1", "status": "AVAILABLE", "capabilities": ["RFID_READER"],
                   "last_updated": "2024-05-01T10:00:00Z",
                   "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                                   "power_type": "AC_3_PHASE", "voltage": 230, "amperage": 32, "tariff_id": "T1",
                                   "last_updated": "2024-05-01T10:00:00Z"}]}],
    }


def test_211_cpo_pushes_with_its_plain_token_and_reads_211_json(alpha, alpha_peer):
    old = alpha_peer.as_version(V211)
    base = "/ocpi/2.1.1/emsp/locations/DE/ALP"
    ok(old.put(f"{base}/L211", location_211()), 201)
    ok(old.patch(f"{base}/L211/E1", {"status": "CHARGING", "last_updated": "2024-05-02T10:00:00Z"}))
    data = ok(old.get(f"{base}/L211"))["data"]
    assert "country_code" not in data and "publish" not in data and "parking_type" not in data
    assert data["type"] == "PARKING_GARAGE"
    assert data["coordinates"] == {"latitude": "50.937531", "longitude": "6.960279"}
    assert data["evses"][0]["status"] == "CHARGING"
    connector = data["evses"][0]["connectors"][0]
    assert (connector["voltage"], connector["amperage"], connector["tariff_id"]) == (230, 32, "T1")
    assert "max_voltage" not in connector
    stored = Connector.objects.get(evse__location__ocpi_id="L211")
    assert (stored.max_voltage, stored.max_amperage, stored.tariff_ids) == (230, 32, ["T1"])


def test_211_receiver_is_scoped_too(alpha, bravo_peer):
    refused(bravo_peer.as_version(V211).put("/ocpi/2.1.1/emsp/locations/DE/ALP/L211", location_211()), 404, 2000)


def test_the_same_payload_in_either_receiver_never_500s(alpha, alpha_peer):
    # A 2.2.1 object sent to the 2.1.1 receiver lacks `type`, `voltage`, ...: refused, not crashed.
    response = alpha_peer.as_version(V211).put("/ocpi/2.1.1/emsp/locations/DE/ALP/LOC1",
                                              copy.deepcopy(location_payload(alpha)))
    assert "voltage" in refused(response, 400, 2001)["status_message"]


# --- cost: what a PUT asks the database --------------------------------------------------------------

@pytest.mark.skipif(connection.vendor != "postgresql", reason="counts PostgreSQL's round trips (SQLite has none)")
def test_a_location_put_asks_the_database_a_fixed_few_things(alpha, alpha_peer, django_capture_on_commit_callbacks):
    """A CPO pushes each change of each location: the OCPI layer adds to the write one authentication and,
    inside its transaction, one look for peers to push to (none here); the write itself is the service's."""
    payload = location_payload(alpha)
    payload["evses"].append({**copy.deepcopy(payload["evses"][0]), "uid": "LOC1-E2", "evse_id": "DE*ALP*E2"})
    for status, stamp in ((201, "2024-05-01T10:00:00Z"), (200, "2024-05-02T10:00:00Z")):
        payload["last_updated"] = stamp
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
            ok(alpha_peer.put(f"{ALPHA}/LOC1", payload), status)
        ours = [query["sql"] for query in queries.captured_queries
                if any(f'"{model._meta.db_table}"' in query["sql"] for model in (Peer, PeerParty, OutboxEntry))]
        assert len(ours) == 2, ours  # the caller (peer, parties, CPOs) in one batch; the receiving peers
        # The whole PUT, savepoint included (BEGIN/COMMIT when served): no query per EVSE or connector
        # (9 to create, 10 to replace when this was written).
        assert len(queries.captured_queries) <= 10, [query["sql"][:80] for query in queries.captured_queries]

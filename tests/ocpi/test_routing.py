"""Message routing by the OCPI-to/from-* headers (transport_and_format "Message Routing", status_codes 4xxx).

The cast: `emsp_peer` (NL*EMS) asks; alpha and bravo are CPO tenants of our catalogue; a peer platform
(NL*FWD: a fake platform on loopback, or the real evhub `peer_server`, DE*DMO) is connected beside them.
"""

import base64
import re
import socket
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from locations.tokens import secret_encrypt, token_new
from ocpi.models import Peer, PeerParty
from tests.conftest import location_payload
from tests.ocpi.locations_fixtures import (  # noqa: F401  (fixtures)
    V211,
    V221,
    alpha_peer,
    emsp_peer,
    ok,
    published,
    refused,
)
from tests.ocpi.peer_server import peer_connected_here

pytestmark = pytest.mark.django_db

URL = "/ocpi/2.2.1/cpo/locations"
RECEIVER = "/ocpi/2.2.1/emsp/locations"
PEER_TOKEN = "token-the-hub-calls-the-peer-with"


def routed(caller, method: str, url: str, *, to=None, frm=None, body=None, **headers):
    """A call of `caller` with routing headers (`to`, `frm`: (country_code, party_id))."""
    if to:
        headers.update(HTTP_OCPI_TO_COUNTRY_CODE=to[0], HTTP_OCPI_TO_PARTY_ID=to[1])
    if frm:
        headers.update(HTTP_OCPI_FROM_COUNTRY_CODE=frm[0], HTTP_OCPI_FROM_PARTY_ID=frm[1])
    kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}
    return getattr(caller.client, method)(url, **kwargs, **caller.headers(), **headers)


def answered_by(response) -> tuple:
    return response["OCPI-from-country-code"], response["OCPI-from-party-id"]


def answered_to(response) -> tuple | None:
    if not response.has_header("OCPI-to-party-id"):
        return None
    return response["OCPI-to-country-code"], response["OCPI-to-party-id"]


def ids(response) -> list[str]:
    return sorted(location["id"] for location in ok(response)["data"])


@pytest.fixture
def catalogue(alpha, bravo):
    published(alpha, location_payload(alpha, "A1"))
    published(bravo, location_payload(bravo, "B1"))


def forwarding_peer(url: str, *, party=("NL", "FWD"), version=V221, endpoints=None) -> Peer:
    """A connected peer platform of ours (party NL*FWD, CPO and eMSP) at `url`, called with PEER_TOKEN."""
    if endpoints is None:
        endpoints = {"locations": {"SENDER": f"{url}/sender/locations", "RECEIVER": f"{url}/receiver/locations"}}
    peer = Peer.objects.create(name="Forwarding peer", state=Peer.State.CONNECTED, version=version,
                               token_out=secret_encrypt(PEER_TOKEN), endpoints=endpoints)
    for role in ("CPO", "EMSP"):
        PeerParty.objects.create(peer=peer, role=role, country_code=party[0], party_id=party[1])
    return peer


def envelope(data=None, status_code=1000):
    return {"data": data, "status_code": status_code, "status_message": "Success" if status_code == 1000 else "No",
            "timestamp": "2024-05-01T10:00:00Z"}


# --- OCPI-from: the caller speaks for its own parties only ------------------------------------------------

def test_an_ocpi_from_of_someone_else_is_refused(catalogue, emsp_peer, alpha):
    for url in (URL, f"{URL}/A1"):
        body = refused(routed(emsp_peer, "get", url, frm=("DE", "ALP")), 400, 2001)
        assert "DE/ALP" in body["status_message"] and "NL/EMS" in body["status_message"]
    # The same party in another case is the caller's own (CiString).
    response = routed(emsp_peer, "get", URL, frm=("nl", "ems"))
    assert ids(response) == ["A1", "B1"] and answered_to(response) == ("NL", "EMS")


@pytest.mark.parametrize("headers", [
    {"HTTP_OCPI_FROM_COUNTRY_CODE": "NL"}, {"HTTP_OCPI_FROM_PARTY_ID": "EMS"},
    {"HTTP_OCPI_TO_COUNTRY_CODE": "DE"}, {"HTTP_OCPI_TO_PARTY_ID": "BRV"},
    {"HTTP_OCPI_TO_COUNTRY_CODE": "DEU", "HTTP_OCPI_TO_PARTY_ID": "BRV"},
], ids=["from-country-only", "from-party-only", "to-country-only", "to-party-only", "to-malformed"])
def test_half_a_pair_or_a_malformed_one_is_2001(catalogue, emsp_peer, headers):
    for url in (URL, f"{URL}/A1"):
        response = routed(emsp_peer, "get", url, **headers)
        refused(response, 400, 2001)
        assert answered_to(response) == ("NL", "EMS")  # its only party, not what it sent


def test_a_portal_cpos_token_c_speaks_for_its_own_party(catalogue, alpha):
    from tests.ocpi.locations_fixtures import Caller

    portal = Caller(Client(), alpha.token_c)
    response = routed(portal, "get", URL, frm=("DE", "ALP"))
    assert ids(response) == ["A1"] and answered_to(response) == ("DE", "ALP")
    refused(routed(portal, "get", URL, frm=("DE", "BRV")), 400, 2001)
    # Naming another tenant gives it nothing of that tenant's (its token reads its own objects only).
    response = routed(portal, "get", URL, to=("DE", "BRV"))
    assert ids(response) == [] and answered_by(response) == ("DE", "BRV")
    refused(routed(portal, "get", f"{URL}/B1", to=("DE", "BRV")), 404, 2003)


# --- OCPI-to: who answers -------------------------------------------------------------------------------

def test_our_own_party_or_none_is_the_whole_catalogue(catalogue, emsp_peer, settings):
    ours = (settings.EVHUB_COUNTRY_CODE, settings.EVHUB_PARTY_ID)
    for to in (None, ours, (ours[0].lower(), ours[1].lower())):
        response = routed(emsp_peer, "get", URL, to=to, frm=("NL", "EMS"))
        assert ids(response) == ["A1", "B1"]
        assert answered_by(response) == ours and answered_to(response) == ("NL", "EMS")


def test_a_tenant_of_ours_answers_for_itself_only(catalogue, emsp_peer):
    response = routed(emsp_peer, "get", URL, to=("DE", "BRV"))
    assert ids(response) == ["B1"]
    assert answered_by(response) == ("DE", "BRV") and answered_to(response) == ("NL", "EMS")
    assert ok(routed(emsp_peer, "get", f"{URL}/B1", to=("de", "brv")))["data"]["id"] == "B1"
    refused(routed(emsp_peer, "get", f"{URL}/A1", to=("DE", "BRV")), 404, 2003)  # alpha's, not bravo's


@pytest.mark.parametrize("hub", [True, False], ids=["hub", "plain"])
def test_an_unknown_party_is_4001_unknown_receiver(catalogue, emsp_peer, alpha_peer, settings, hub):
    settings.EVHUB_OCPI_HUB = hub
    for url in (URL, f"{URL}/A1", f"{URL}/A1/A1-E1"):
        body = refused(routed(emsp_peer, "get", url, to=("XX", "ZZZ")), 404, 4001)
        assert "XX/ZZZ" in body["status_message"]
    location = location_payload(alpha_peer.peer.parties.get().cpo, "A2")
    put = routed(alpha_peer, "put", f"{RECEIVER}/DE/ALP/A2", to=("XX", "ZZZ"), body=location)
    refused(put, 404, 4001)
    assert answered_by(put) == (settings.EVHUB_COUNTRY_CODE, settings.EVHUB_PARTY_ID)


def test_plain_mode_forwards_nothing(catalogue, emsp_peer, fake_platform, settings):
    settings.EVHUB_OCPI_HUB = False
    forwarding_peer(fake_platform.url)
    refused(routed(emsp_peer, "get", URL, to=("NL", "FWD")), 404, 4001)
    refused(routed(emsp_peer, "get", f"{URL}/A1", to=("NL", "FWD")), 404, 4001)
    assert fake_platform.seen == []


def test_a_peer_without_that_endpoint_is_3003_or_answered_from_its_pushed_copy(catalogue, emsp_peer, alpha,
                                                                                fake_platform):
    forwarding_peer(fake_platform.url, endpoints={"credentials": {"ANY": f"{fake_platform.url}/credentials"}})
    body = refused(routed(emsp_peer, "get", URL, to=("NL", "FWD")), 200, 3003)
    assert "locations" in body["status_message"]
    # alpha's back end pushes to our receiver and serves no sender: our copy of what it pushed answers.
    pusher = forwarding_peer(fake_platform.url, party=("DE", "ALP"), endpoints={})
    PeerParty.objects.filter(peer=pusher, role="CPO").update(cpo=alpha)
    response = routed(emsp_peer, "get", URL, to=("DE", "ALP"))
    assert ids(response) == ["A1"] and answered_by(response) == ("DE", "ALP")
    assert fake_platform.seen == []


# --- forwarding to a peer ---------------------------------------------------------------------------------

def test_a_list_get_is_forwarded_and_the_answer_returned(emsp_peer, fake_platform, settings):
    forwarding_peer(fake_platform.url)
    next_page = f"{fake_platform.url}/sender/locations?offset=2&limit=2&date_from=2024-01-01T00:00:00Z"
    fake_platform.routes[("GET", "/sender/locations")] = (
        200, envelope([{"id": "F1"}, {"id": "F2"}]),
        {"X-Total-Count": "3", "X-Limit": "2", "Link": f'<{next_page}>; rel="next"'})
    response = routed(emsp_peer, "get", f"{URL}?limit=2&date_from=2024-01-01T00:00:00Z", to=("NL", "FWD"),
                      frm=("NL", "EMS"), HTTP_X_CORRELATION_ID="corr-123", HTTP_X_REQUEST_ID="req-123")
    assert ids(response) == ["F1", "F2"]
    assert (response["X-Total-Count"], response["X-Limit"]) == ("3", "2")
    link = re.fullmatch(r'<([^>]+)>; rel="next"', response["Link"]).group(1)
    assert link.startswith(settings.PUBLIC_BASE_URL.rstrip("/") + URL + "?")
    assert parse_qs(urlsplit(link).query) == {"offset": ["2"], "limit": ["2"], "date_from": ["2024-01-01T00:00:00Z"]}
    assert answered_by(response) == ("NL", "FWD") and answered_to(response) == ("NL", "EMS")
    (seen,) = fake_platform.requests("GET", "/sender/locations")
    assert seen.headers["Authorization"] == f"Token {base64.b64encode(PEER_TOKEN.encode()).decode()}"
    assert (seen.headers["OCPI-from-country-code"], seen.headers["OCPI-from-party-id"]) == ("NL", "EMS")
    assert (seen.headers["OCPI-to-country-code"], seen.headers["OCPI-to-party-id"]) == ("NL", "FWD")
    assert seen.headers["X-Correlation-ID"] == "corr-123" and seen.headers["X-Request-ID"] != "req-123"


def test_a_link_elsewhere_is_dropped_and_errors_of_the_peer_are_passed_on(emsp_peer, fake_platform):
    forwarding_peer(fake_platform.url)
    fake_platform.routes[("GET", "/sender/locations")] = (
        200, envelope([]), {"Link": '<http://169.254.169.254/latest/meta-data>; rel="next"'})
    assert not routed(emsp_peer, "get", URL, to=("NL", "FWD")).has_header("Link")
    fake_platform.routes[("GET", "/sender/locations/NOPE/E%201")] = (404, envelope(status_code=2003))
    response = routed(emsp_peer, "get", f"{URL}/NOPE/E 1", to=("NL", "FWD"))
    refused(response, 404, 2003)
    assert answered_by(response) == ("NL", "FWD")


def test_a_put_is_forwarded_with_its_body_for_the_callers_own_party_only(alpha, alpha_peer, fake_platform):
    forwarding_peer(fake_platform.url)
    fake_platform.routes[("PUT", "/receiver/locations/DE/ALP/A9")] = (201, envelope())
    location = location_payload(alpha, "A9")
    response = routed(alpha_peer, "put", f"{RECEIVER}/DE/ALP/A9", to=("NL", "FWD"), body=location)
    assert response.status_code == 201 and response.json()["status_code"] == 1000
    (seen,) = fake_platform.requests("PUT", "/receiver/locations/DE/ALP/A9")
    assert seen.body == location and seen.headers["OCPI-from-party-id"] == "ALP"
    assert not alpha.locations.filter(ocpi_id="A9").exists()  # not ours to store: it went to NL*FWD
    # Another party's object is not the caller's to address, through us or not.
    refused(routed(alpha_peer, "put", f"{RECEIVER}/DE/BRV/A9", to=("NL", "FWD"), body=location), 404, 2000)
    assert len(fake_platform.seen) == 1


def test_a_slow_peer_is_4002(emsp_peer, fake_platform, settings):
    settings.OCPI_READ_TIMEOUT = 0.5

    def slow(seen):
        time.sleep(2)
        return 200, envelope([])

    fake_platform.routes[("GET", "/sender/locations")] = slow
    forwarding_peer(fake_platform.url)
    started = time.monotonic()
    body = refused(routed(emsp_peer, "get", URL, to=("NL", "FWD")), 200, 4002)
    assert time.monotonic() - started < 1.9 and "NL/FWD" in body["status_message"]


def test_a_peer_down_or_out_of_bounds_is_4003(emsp_peer, loopback, fake_platform):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there any more: a server that is down
    forwarding_peer(f"http://127.0.0.1:{port}")
    refused(routed(emsp_peer, "get", URL, to=("NL", "FWD")), 200, 4003)
    Peer.objects.filter(name="Forwarding peer").delete()
    forwarding_peer("http://10.0.0.1:8000", party=("NL", "INT"))  # the outbound guard refuses it, no packet sent
    refused(routed(emsp_peer, "get", URL, to=("NL", "INT")), 200, 4003)
    forwarding_peer(fake_platform.url, party=("NL", "TOK"))
    fake_platform.routes[("GET", "/sender/locations/X")] = (401, envelope(status_code=2000))
    response = routed(emsp_peer, "get", f"{URL}/X", to=("NL", "TOK"))  # 401 is the hub's, not the caller's
    refused(response, 200, 4003)
    fake_platform.routes[("GET", "/sender/locations/X")] = (502, b"<html>Bad gateway</html>")
    refused(routed(emsp_peer, "get", f"{URL}/X", to=("NL", "TOK")), 200, 4003)


def test_a_peer_on_another_version_is_3002(emsp_peer, fake_platform):
    forwarding_peer(fake_platform.url, version=V211)
    refused(routed(emsp_peer, "get", URL, to=("NL", "FWD")), 200, 3002)
    assert fake_platform.seen == []


# --- a real evhub peer answers a forwarded request ------------------------------------------------------

@pytest.mark.e2e
def test_a_real_peer_answers_list_and_single_gets_through_us(peer_server, emsp_peer, settings):
    settings.OCPI_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    token = token_new()
    # On its side we are a hub with the eMSP NL*EMS behind us; on ours it is the CPO DE*DMO.
    peer_server.admit(name=f"route-{token[:6]}", token=token, parties=[("HUB", "DE", "EVH"), ("EMSP", "NL", "EMS")])
    peer_connected_here(peer_server, token=token, parties=[("CPO", "DE", "DMO")])
    response = routed(emsp_peer, "get", f"{URL}?limit=3", to=("DE", "DMO"))
    page = ok(response)["data"]
    assert len(page) == 3 and {(loc["country_code"], loc["party_id"]) for loc in page} == {("DE", "DMO")}
    assert int(response["X-Total-Count"]) > 3 and answered_by(response) == ("DE", "DMO")
    link = re.fullmatch(r'<([^>]+)>; rel="next"', response["Link"]).group(1)
    assert link.startswith(settings.PUBLIC_BASE_URL.rstrip("/") + URL)
    # The next page, through us again, continues where the first ended.
    target = urlsplit(link)
    following = routed(emsp_peer, "get", f"{target.path}?{target.query}", to=("DE", "DMO"))
    assert {loc["id"] for loc in ok(following)["data"]}.isdisjoint(loc["id"] for loc in page)
    single = routed(emsp_peer, "get", f"{URL}/{page[0]['id']}", to=("DE", "DMO"), frm=("NL", "EMS"))
    assert ok(single)["data"]["id"] == page[0]["id"] and answered_to(single) == ("NL", "EMS")
    refused(routed(emsp_peer, "get", f"{URL}/NO-SUCH-LOCATION", to=("DE", "DMO")), 404, 2003)

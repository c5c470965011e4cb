"""OCPI transport rules (transport_and_format.asciidoc, status_codes.asciidoc), one test per rule.

Routed behaviour is tested on a tiny functional view mounted beside the real URLs (this module is the
URL configuration of the tests marked `tiny`), so that it does not depend on any one module.
"""

import base64
import json
import re
import uuid

import pytest
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import path

from config.errors import json_not_found, json_server_error
from config.urls import urlpatterns as config_urlpatterns
from locations.models import Cpo
from locations.tokens import token_digest
from ocpi.models import Peer, PeerParty
from ocpi.transport import OcpiView, caller_authenticate, envelope, json_body
from tests.ocpi.conftest import V211, ocpi_auth, ocpi_get, ocpi_patch, ocpi_post

pytestmark = pytest.mark.django_db

VERSIONS, CREDENTIALS = "/ocpi/versions", "/ocpi/2.2.1/credentials"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class TinyView(OcpiView):
    """A functional module in miniature: routed, token A not allowed, GET echoes the caller, PUT its body."""

    module = "tiny"

    def get(self, request):
        return envelope({"kind": self.caller.kind})

    def put(self, request):
        return envelope(json_body(request))


urlpatterns = [path("ocpi/2.2.1/tiny", TinyView.as_view(), name="tiny"), *config_urlpatterns]
handler404, handler500 = json_not_found, json_server_error
tiny = pytest.mark.urls(__name__)


def assert_envelope(response, http_status: int, status_code: int) -> dict:
    assert response.status_code == http_status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status_code"] == status_code and isinstance(body["status_message"], str)
    assert TIMESTAMP.match(body["timestamp"])
    return body


# --- authorization -----------------------------------------------------------------------------------------

@pytest.mark.smoke
@pytest.mark.parametrize("header", [None, "", "Token", "Token ", "Bearer abc", "Basic dXNlcjpwYXNz", "abc"])
def test_a_missing_token_is_401_in_the_envelope(client, header):
    headers = {} if header is None else {"HTTP_AUTHORIZATION": header}
    body = assert_envelope(client.get(VERSIONS, **headers), 401, 2000)
    assert "data" not in body or body["data"] is None


@pytest.mark.smoke
def test_an_unknown_token_is_401(client, connected_peer):
    assert_envelope(ocpi_get(client, VERSIONS, "not-a-token-of-anyone"), 401, 2000)
    assert_envelope(ocpi_get(client, CREDENTIALS, "not-a-token-of-anyone"), 401, 2000)


@pytest.mark.smoke
def test_base64_and_plain_tokens_are_both_accepted(client, connected_peer):
    assert_envelope(ocpi_get(client, VERSIONS, connected_peer.token), 200, 1000)  # base64 (2.2.1)
    assert_envelope(ocpi_get(client, VERSIONS, connected_peer.token, version=V211), 200, 1000)  # plain (2.1.1)


def test_a_suspended_peers_tokens_are_401(client, connected_peer, invited_peer):
    Peer.objects.filter(pk__in=[connected_peer.pk, invited_peer.pk]).update(state=Peer.State.SUSPENDED)
    assert_envelope(ocpi_get(client, VERSIONS, connected_peer.token), 401, 2000)
    assert_envelope(ocpi_get(client, VERSIONS, invited_peer.token_a), 401, 2000)


def test_token_a_opens_versions_and_credentials(client, invited_peer):
    assert_envelope(ocpi_get(client, VERSIONS, invited_peer.token_a), 200, 1000)
    assert_envelope(ocpi_get(client, "/ocpi/2.2.1", invited_peer.token_a), 200, 1000)
    assert_envelope(ocpi_get(client, "/ocpi/2.1.1", invited_peer.token_a, version=V211), 200, 1000)
    assert_envelope(ocpi_get(client, CREDENTIALS, invited_peer.token_a), 200, 1000)


@tiny
def test_token_a_is_refused_on_functional_modules(client, invited_peer, connected_peer):
    body = assert_envelope(ocpi_get(client, "/ocpi/2.2.1/tiny", invited_peer.token_a), 401, 2000)
    assert "Token A" in body["status_message"]
    assert ocpi_get(client, "/ocpi/2.2.1/tiny", connected_peer.token).json()["data"] == {"kind": "PEER"}


@tiny
def test_a_cpo_of_ours_is_recognised_by_its_token_c(client, alpha):
    assert ocpi_get(client, "/ocpi/2.2.1/tiny", alpha.token_c).json()["data"] == {"kind": "CPO"}


def _authenticate(token: str, *, allow_token_a: bool = False, plain: bool = False):
    header = f"Token {token if plain else base64.b64encode(token.encode()).decode()}"
    return caller_authenticate(RequestFactory().get("/", HTTP_AUTHORIZATION=header), allow_token_a=allow_token_a)


def _same_row(instance, model) -> bool:
    stored = model.objects.get(pk=instance.pk)
    return all(getattr(instance, f.attname) == getattr(stored, f.attname) for f in model._meta.concrete_fields)


def test_authentication_is_one_round_trip_whoever_calls(connected_peer, invited_peer, alpha):
    """On every request: a peer with its parties and their CPOs, a CPO by token C, a peer by token A."""
    lonely = Peer.objects.create(name="No parties", state=Peer.State.CONNECTED, token_in_digest=token_digest("lonely"),
                                 endpoints={"locations": {"RECEIVER": "https://x.example/r"}}, roles=[{"role": "EMSP"}])
    per_call = 1 if connection.vendor == "postgresql" else 3  # PostgreSQL gets the three lookups as one batch
    for token, kind, allow_token_a in ((connected_peer.token, "PEER", False), ("lonely", "PEER", False),
                                       (alpha.token_c, "CPO", False), (invited_peer.token_a, "A", True)):
        with CaptureQueriesContext(connection) as queries:
            caller = _authenticate(token, allow_token_a=allow_token_a)
            if kind != "A":  # token A opens credentials only, which need no parties
                caller.cpo_parties()  # read with the caller, no query of its own
        assert (caller.kind, caller.token, len(queries)) == (kind, token, per_call)
    # What is read is what the ORM reads (JSON decoded, aware datetimes), with the relations in place.
    caller = _authenticate(connected_peer.token)
    assert caller.peer == connected_peer and caller.cpo_parties() == [alpha]
    assert _same_row(caller.peer, Peer) and _same_row(caller.parties[0], PeerParty)
    assert _same_row(caller.cpo_parties()[0], Cpo) and caller.parties[0].peer is caller.peer
    caller = _authenticate("lonely")
    assert (caller.peer, caller.parties) == (lonely, []) and _same_row(caller.peer, Peer)
    assert caller.peer.endpoints == {"locations": {"RECEIVER": "https://x.example/r"}}
    cpo = _authenticate(alpha.token_c).cpo
    assert cpo == alpha and _same_row(cpo, Cpo)
    assert _authenticate(invited_peer.token_a, allow_token_a=True).peer == invited_peer


def test_a_peer_disconnected_or_rotated_elsewhere_is_refused_at_once(client, connected_peer):
    """Nothing of a caller is kept between requests: another process's change counts for the next one."""
    assert _authenticate(connected_peer.token).peer == connected_peer
    Peer.objects.filter(pk=connected_peer.pk).update(token_in_digest=token_digest("rotated"))
    assert_envelope(ocpi_get(client, VERSIONS, connected_peer.token), 401, 2000)
    assert _authenticate("rotated").peer == connected_peer
    Peer.objects.filter(pk=connected_peer.pk).update(state=Peer.State.SUSPENDED)
    assert_envelope(ocpi_get(client, VERSIONS, "rotated"), 401, 2000)


def test_the_first_token_candidate_that_names_a_caller_decides(alpha, connected_peer):
    """base64 of a peer's token that is, as sent, a CPO's token C: the decoded (2.2.1) reading wins."""
    sent = base64.b64encode(connected_peer.token.encode()).decode()
    Cpo.objects.filter(pk=alpha.pk).update(token_c_digest=token_digest(sent))
    assert _authenticate(sent, plain=True).kind == "PEER"
    Peer.objects.filter(pk=connected_peer.pk).update(state=Peer.State.SUSPENDED)
    assert _authenticate(sent, plain=True).kind == "CPO"


# --- the envelope and the headers --------------------------------------------------------------------------

@pytest.mark.smoke
def test_the_envelope_has_data_status_code_message_and_a_utc_timestamp(client, connected_peer, settings):
    body = assert_envelope(ocpi_get(client, VERSIONS, connected_peer.token), 200, 1000)
    assert body["status_message"] == "Success"
    assert body["data"] == [{"version": v, "url": f"{settings.PUBLIC_BASE_URL}/ocpi/{v}"} for v in ("2.2.1", "2.1.1")]


def test_version_details_list_our_endpoints_with_roles(client, connected_peer, settings):
    data = ocpi_get(client, "/ocpi/2.2.1", connected_peer.token).json()["data"]
    assert data["version"] == "2.2.1"
    assert {"identifier": "credentials", "role": "SENDER",
            "url": f"{settings.PUBLIC_BASE_URL}/ocpi/2.2.1/credentials"} in data["endpoints"]
    old = ocpi_get(client, "/ocpi/2.1.1", connected_peer.token, version=V211).json()["data"]
    assert {"identifier": "credentials", "url": f"{settings.PUBLIC_BASE_URL}/ocpi/2.1.1/credentials"} in old["endpoints"]
    assert all("role" not in endpoint for endpoint in old["endpoints"])


@pytest.mark.smoke
def test_request_and_correlation_ids_are_echoed(client, connected_peer):
    request_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    response = ocpi_get(client, VERSIONS, connected_peer.token, HTTP_X_REQUEST_ID=request_id,
                        HTTP_X_CORRELATION_ID=correlation_id)
    assert (response["X-Request-ID"], response["X-Correlation-ID"]) == (request_id, correlation_id)


@pytest.mark.smoke
def test_ids_are_echoed_on_errors_too_and_made_when_missing(client):
    request_id = str(uuid.uuid4())
    response = client.get(VERSIONS, HTTP_X_REQUEST_ID=request_id)
    assert response.status_code == 401 and response["X-Request-ID"] == request_id
    response = client.get(VERSIONS)
    assert response["X-Request-ID"] and response["X-Correlation-ID"]


@tiny
def test_routing_headers_answer_whoever_asked(client, connected_peer, settings):
    ours = (settings.EVHUB_COUNTRY_CODE, settings.EVHUB_PARTY_ID)
    response = ocpi_get(client, "/ocpi/2.2.1/tiny", connected_peer.token,
                        HTTP_OCPI_FROM_COUNTRY_CODE="de", HTTP_OCPI_FROM_PARTY_ID="alp",
                        HTTP_OCPI_TO_COUNTRY_CODE=ours[0], HTTP_OCPI_TO_PARTY_ID=ours[1])
    assert_envelope(response, 200, 1000)
    assert (response["OCPI-from-country-code"], response["OCPI-from-party-id"]) == ours
    assert (response["OCPI-to-country-code"], response["OCPI-to-party-id"]) == ("DE", "ALP")
    # No OCPI-from: the caller's only party is whom we answer.
    response = ocpi_get(client, "/ocpi/2.2.1/tiny", connected_peer.token)
    assert (response["OCPI-from-country-code"], response["OCPI-from-party-id"]) == ours
    assert (response["OCPI-to-country-code"], response["OCPI-to-party-id"]) == ("DE", "ALP")
    # Two parties and no OCPI-from: we cannot tell which one asks, and say none.
    PeerParty.objects.create(peer=connected_peer, role="EMSP", country_code="NL", party_id="EXA")
    response = ocpi_get(client, "/ocpi/2.2.1/tiny", connected_peer.token)
    assert response.status_code == 200 and not response.has_header("OCPI-to-party-id")


@tiny
def test_routing_headers_are_on_errors_but_not_on_configuration_modules(client, connected_peer, settings):
    # Before the token is known nothing the caller says about itself is checked, so nothing is echoed.
    response = client.get("/ocpi/2.2.1/tiny", HTTP_OCPI_FROM_COUNTRY_CODE="NL", HTTP_OCPI_FROM_PARTY_ID="EXA")
    assert response.status_code == 401 and not response.has_header("OCPI-to-party-id")
    assert response["OCPI-from-party-id"] == settings.EVHUB_PARTY_ID
    for url in (VERSIONS, "/ocpi/2.2.1", CREDENTIALS):
        response = ocpi_get(client, url, connected_peer.token, HTTP_OCPI_FROM_COUNTRY_CODE="NL",
                            HTTP_OCPI_FROM_PARTY_ID="EXA")
        assert not response.has_header("OCPI-from-party-id") and not response.has_header("OCPI-to-party-id")


# --- errors: always the envelope, never a 500 ----------------------------------------------------------------

@pytest.mark.smoke
@pytest.mark.parametrize("url", ["/ocpi/2.2.1/nothing-here", "/ocpi/2.1.1/x/y", "/ocpi/versions/", "/ocpi/2.3"])
def test_unknown_ocpi_paths_are_404_in_the_envelope(client, connected_peer, url):
    body = assert_envelope(ocpi_get(client, url, connected_peer.token), 404, 2000)
    assert url in body["status_message"]


@pytest.mark.smoke
def test_a_method_the_endpoint_has_not_is_405(client, connected_peer):
    assert_envelope(ocpi_patch(client, CREDENTIALS, connected_peer.token, {}), 405, 2000)
    assert_envelope(ocpi_post(client, VERSIONS, connected_peer.token, {}), 405, 2000)
    assert_envelope(client.generic("TRACE", VERSIONS), 405, 2000)


@tiny
@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"', "null", "", "\udcff".encode("utf-8", "surrogatepass"),
                                  "[" * 100_000 + "]" * 100_000])
def test_a_body_that_is_not_a_json_object_is_2001(client, connected_peer, body):
    response = client.put("/ocpi/2.2.1/tiny", body, content_type="application/json",
                          HTTP_AUTHORIZATION=ocpi_auth(connected_peer.token))
    assert_envelope(response, 400, 2001)


@tiny
def test_a_body_too_large_is_413(client, connected_peer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"x": "y" * 2000})
    response = client.put("/ocpi/2.2.1/tiny", body, content_type="application/json",
                          HTTP_AUTHORIZATION=ocpi_auth(connected_peer.token))
    assert_envelope(response, 413, 2000)


@pytest.mark.smoke
@pytest.mark.parametrize("headers", [
    {"HTTP_AUTHORIZATION": "Token \xff\xfe\x00"},
    {"HTTP_AUTHORIZATION": "Token " + base64.b64encode(b"\xff\xfe").decode()},
    {"HTTP_AUTHORIZATION": "Token " + base64.b64encode("tok\x00en".encode()).decode()},
    {"HTTP_AUTHORIZATION": "Token " + "A" * 100_000},
    {"HTTP_AUTHORIZATION": "Token a b c"},
    {"HTTP_X_REQUEST_ID": "\xff" * 300, "HTTP_X_CORRELATION_ID": "bad\r\nSet-Cookie: x=1"},
    {"HTTP_OCPI_FROM_COUNTRY_CODE": "\xff\r\n", "HTTP_OCPI_FROM_PARTY_ID": "x" * 1000,
     "HTTP_OCPI_TO_COUNTRY_CODE": "\x00", "HTTP_OCPI_TO_PARTY_ID": "é"},
], ids=["latin1-token", "base64-of-bytes", "base64-with-nul", "huge-token", "spaces", "bad-ids", "bad-routing"])
def test_garbage_headers_never_500(client, connected_peer, headers):
    response = client.get(VERSIONS, **{"HTTP_AUTHORIZATION": ocpi_auth(connected_peer.token), **headers})
    assert response.status_code in (200, 401)
    assert response.json()["status_code"] in (1000, 2000)
    assert "\n" not in response["X-Correlation-ID"] and "\n" not in response["X-Request-ID"]


@tiny
def test_garbage_routing_headers_are_refused_not_echoed(client, connected_peer, settings):
    response = ocpi_get(client, "/ocpi/2.2.1/tiny", connected_peer.token, HTTP_OCPI_FROM_COUNTRY_CODE="\xff\r\n",
                        HTTP_OCPI_FROM_PARTY_ID="x" * 1000, HTTP_OCPI_TO_COUNTRY_CODE="D E", HTTP_OCPI_TO_PARTY_ID="é")
    assert_envelope(response, 400, 2001)
    # Answered to the caller's only party, as we know it, never to what it sent.
    assert (response["OCPI-to-country-code"], response["OCPI-to-party-id"]) == ("DE", "ALP")
    assert response["OCPI-from-party-id"] == settings.EVHUB_PARTY_ID


def test_posts_need_no_csrf_token(connected_peer):
    """Peers send a token, never a cookie: CSRF must not turn their POST/PUT/DELETE into a 403."""
    client = Client(enforce_csrf_checks=True)
    response = ocpi_post(client, CREDENTIALS, connected_peer.token, {})
    assert_envelope(response, 405, 2000)  # the view answered (already registered), not the CSRF middleware

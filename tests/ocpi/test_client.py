"""The one outbound client: the address guard, timeouts, retries, and answers that are not OCPI.

The other side is a real HTTP server on loopback (`fake_platform`); the guard is tested with
OCPI_ALLOWED_NETWORKS empty (production) or allowing only what the test needs.
"""

import base64
import time

import pytest

from ocpi.client import AddressRefused, OcpiClient, PeerError, address_allowed
from tests.ocpi.conftest import V211, V221

pytestmark = pytest.mark.django_db


@pytest.mark.smoke
@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "fe80::1",
    "fc00::1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
])
def test_private_loopback_link_local_addresses_are_refused(address, settings):
    settings.OCPI_ALLOWED_NETWORKS = []
    assert not address_allowed(address)


@pytest.mark.smoke
@pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address, settings):
    settings.OCPI_ALLOWED_NETWORKS = []
    assert address_allowed(address)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/versions", "http://[::1]:{port}/versions", "http://10.1.2.3/versions",
    "http://169.254.169.254/latest/meta-data/", "http://localhost:{port}/versions",
])
def test_the_client_refuses_them_before_sending_anything(fake_platform, settings, url):
    settings.OCPI_ALLOWED_NETWORKS = []
    fake_platform.answer("GET", "/versions", [])
    port = fake_platform.url.rsplit(":", 1)[1]
    started = time.monotonic()
    with pytest.raises(AddressRefused, match="refused"):
        OcpiClient(token="t", version=V221).get(url.format(port=port))
    assert time.monotonic() - started < 1.5  # unroutable literals are refused without a connect timeout
    assert fake_platform.seen == []


def test_a_redirect_to_a_refused_address_is_refused(platform_factory, settings):
    inside = platform_factory("127.0.0.2")
    inside.answer("GET", "/secret", {"secret": True})
    outside = platform_factory("127.0.0.1")
    outside.routes[("GET", "/versions")] = (302, b"", {"Location": f"{inside.url}/secret"})
    settings.OCPI_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # the first host is "public" for this test, the second not
    with pytest.raises(AddressRefused):
        OcpiClient(token="t", version=V221).get(f"{outside.url}/versions")
    assert outside.requests("GET", "/versions") and inside.seen == []


def test_loopback_is_allowed_when_the_settings_allow_it(fake_platform):
    fake_platform.answer("GET", "/versions", [{"version": "2.2.1", "url": "x"}])
    reply = OcpiClient(token="t", version=V221).get(f"{fake_platform.url}/versions")
    assert reply.ok and reply.data == [{"version": "2.2.1", "url": "x"}] and reply.status_code == 1000


def test_a_slow_peer_times_out(fake_platform, settings):
    settings.OCPI_READ_TIMEOUT = 0.3

    def slow(seen):
        time.sleep(1.5)
        return 200, {"status_code": 1000}

    fake_platform.routes[("GET", "/slow")] = slow
    started = time.monotonic()
    with pytest.raises(PeerError, match="Timeout"):
        OcpiClient(token="t", version=V221).get(f"{fake_platform.url}/slow")
    assert time.monotonic() - started < 1.2


@pytest.mark.parametrize("answer", [b"<html>oops</html>", b"[1, 2]", b""], ids=["html", "list", "empty"])
def test_an_answer_that_is_no_envelope_is_a_peer_error(fake_platform, answer):
    fake_platform.routes[("GET", "/x")] = (200, answer)
    with pytest.raises(PeerError):
        OcpiClient(token="t", version=V221).get(f"{fake_platform.url}/x")


def test_nothing_listening_is_a_peer_error(loopback):
    with pytest.raises(PeerError):
        OcpiClient(token="t", version=V221).get("http://127.0.0.1:9/versions")


@pytest.mark.smoke
def test_only_http_urls(settings):
    for url in ("file:///etc/passwd", "gopher://example.com/", "ftp://example.com/x", "/relative"):
        with pytest.raises(PeerError, match="Not an http"):
            OcpiClient(token="t", version=V221).get(url)


def test_idempotent_calls_are_retried_posts_are_not(fake_platform, settings):
    settings.OCPI_RETRIES = 1
    answers = iter([(503, {"status_code": 3000}), (200, {"status_code": 1000, "data": []})])
    fake_platform.routes[("GET", "/flaky")] = lambda seen: next(answers)
    assert OcpiClient(token="t", version=V221).get(f"{fake_platform.url}/flaky").ok
    assert len(fake_platform.requests("GET", "/flaky")) == 2
    fake_platform.routes[("POST", "/flaky")] = (503, {"status_code": 3000})
    reply = OcpiClient(token="t", version=V221).post(f"{fake_platform.url}/flaky", {})
    assert reply.http_status == 503 and not reply.ok
    assert len(fake_platform.requests("POST", "/flaky")) == 1


def test_headers_token_forms_routing_and_request_ids(fake_platform, settings):
    fake_platform.answer("GET", "/x", [])
    OcpiClient(token="secret-t", version=V221, to_party=("NL", "EXA")).get(f"{fake_platform.url}/x")
    OcpiClient(token="secret-t", version=V211).get(f"{fake_platform.url}/x")
    OcpiClient(token="secret-t", version=V221).get(f"{fake_platform.url}/x", routed=False)
    routed, old, unrouted = (seen.headers for seen in fake_platform.seen)
    assert routed["Authorization"] == "Token " + base64.b64encode(b"secret-t").decode()
    assert (routed["OCPI-from-country-code"], routed["OCPI-from-party-id"]) == (settings.EVHUB_COUNTRY_CODE,
                                                                                settings.EVHUB_PARTY_ID)
    assert (routed["OCPI-to-country-code"], routed["OCPI-to-party-id"]) == ("NL", "EXA")
    assert routed["X-Request-ID"] and routed["X-Correlation-ID"]
    assert old["Authorization"] == "Token secret-t" and "OCPI-from-party-id" not in old
    assert "OCPI-from-party-id" not in unrouted

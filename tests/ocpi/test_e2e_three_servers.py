"""Three real evhub servers on loopback: a CPO platform and an eMSP platform (both plain, EVHUB_OCPI_HUB off)
connected only to the hub between them (hub mode, the default). Each registered with the hub through the
credentials handshake (ocpi_invite on the hub, ocpi_register on the platform); nothing connects the CPO
to the eMSP directly.

- a location the CPO's back end publishes by webhook reaches the eMSP only through the hub (CPO -> hub
  push, hub -> eMSP push), stored there under the CPO's party, learnt from the hub;
- a GET the eMSP addresses to the CPO's party is forwarded by the hub, with the routing headers set at
  each hop (the answer comes from the CPO's party, to the eMSP's);
- the hub's HubClientInfo tells the eMSP when the CPO goes offline, and when it is back;
- a request for a party nobody knows gets 4001.
"""

import re

import pytest
import requests

from tests.ocpi.test_e2e_two_servers import WEBHOOK, wait_for, webhook

pytestmark = [pytest.mark.e2e]

PLAIN = {"EVHUB_OCPI_HUB": "False"}


def _invite(hub, name: str) -> tuple[str, str]:
    out = hub.manage("ocpi_invite", name)
    url = re.search(r"versions URL:\s*(\S+)", out).group(1)
    token = re.search(r"token A:\s*(\S+)", out).group(1)
    return url, token


def _register(platform, hub, name: str) -> None:
    url, token = _invite(hub, name)
    assert url == hub.url("/ocpi/versions"), out_of(hub)
    out = platform.manage("ocpi_register", "--name", "hub", "--", url, token)
    assert "Registered" in out, out


def out_of(server) -> str:
    return server.log_tail()


@pytest.fixture(scope="module")
def triangle(evhub_servers):
    hub = evhub_servers.create("tri-hub", party=("DE", "HUB"))
    hub.start_worker()
    cpo = evhub_servers.create("tri-cpo", party=("DE", "DMO"), extra_env=PLAIN)
    cpo.manage("demo_load")
    cpo.start_worker()
    emsp = evhub_servers.create("tri-emsp", party=("NL", "EMS"), extra_env=PLAIN)
    emsp.start_worker()
    try:
        _register(cpo, hub, "cpo platform")
        _register(emsp, hub, "emsp platform")
        # The hub's operator publishes what the CPO party sends (a hub moderates new tenants by default).
        hub.shell("from locations.models import Cpo\n"
                  "print(json.dumps(Cpo.objects.filter(country_code='DE', party_id='DMO').update(auto_publish=True)))")
        yield hub, cpo, emsp
    finally:
        for server in (emsp, cpo, hub):
            evhub_servers.discard(server)


def _token_out(platform) -> str:
    """The token the platform calls the hub with (its side of the handshake), for requests the test makes
    as that platform."""
    return platform.shell("from locations.tokens import secret_decrypt\nfrom ocpi.models import Peer\n"
                          "print(json.dumps(secret_decrypt(Peer.objects.get(name='hub').token_out)))")


def _ocpi_get(hub, path: str, token: str, **headers) -> requests.Response:
    import base64

    auth = base64.b64encode(token.encode()).decode()
    return requests.get(hub.url(path), headers={"Authorization": f"Token {auth}", **headers}, timeout=60)


def _emsp_location(emsp, name: str):
    return emsp.shell(
        "from locations.models import Location\n"
        f"loc = Location.objects.filter(name={name!r}).select_related('cpo').first()\n"
        "print(json.dumps(loc and {'party': [loc.cpo.country_code, loc.cpo.party_id], "
        "'via': sorted((p.peer.name, p.via_hub) for p in loc.cpo.ocpi_parties.all()), "
        "'evses': sorted((e.uid, e.status) for e in loc.evses.all())}))")


def test_each_platform_knows_only_the_hub(triangle):
    hub, cpo, emsp = triangle
    for platform in (cpo, emsp):
        roles = platform.shell("from ocpi.models import Peer\n"
                               "print(json.dumps([[p.name, p.state, [r['role'] for r in p.roles]] "
                               "for p in Peer.objects.filter(state='CONNECTED').order_by('pk')]))")
        assert roles == [["hub", "CONNECTED", ["HUB"]]]
    assert hub.shell("from ocpi.models import Peer\nprint(json.dumps(sorted(Peer.objects.filter("
                     "state='CONNECTED').values_list('name', flat=True))))") == ["cpo platform", "emsp platform"]


def test_a_cpo_location_reaches_the_emsp_only_through_the_hub(triangle):
    hub, cpo, emsp = triangle
    demo = cpo.demo_credentials()
    response = webhook(cpo, demo, "locations", {"locations": [WEBHOOK]})
    assert response.status_code == 200, response.text
    arrived = wait_for(lambda: _emsp_location(emsp, "E2E Ladepark"), what="the location on the eMSP",
                       timeout=120)
    # Stored under the CPO's own party, which the eMSP knows only as a party behind the hub.
    assert arrived == {"party": ["DE", "DMO"], "via": [["hub", True]], "evses": [["E2E-1", "AVAILABLE"]]}

    location_id = response.json()["data"][0]["location_id"]
    evse = {"location_id": location_id, **WEBHOOK["evses"][0], "status": "CHARGING"}
    assert webhook(cpo, demo, "evse", evse).status_code == 200
    wait_for(lambda: _emsp_location(emsp, "E2E Ladepark")["evses"] == [["E2E-1", "CHARGING"]],
             what="the EVSE status on the eMSP", timeout=120)
    # Nothing is left waiting or parked anywhere on the way (an entry is marked delivered once the answer to
    # its PUT is back, which may come after the next hop has stored the location: waited for, not assumed).
    def left(server):
        return server.shell("from ocpi.models import OutboxEntry\nprint(json.dumps(list(OutboxEntry.objects.filter("
                            "module='locations', delivered_at__isnull=True).values_list('object_id', 'parked_at', "
                            "'last_error')[:5]), default=str))")

    for server in (cpo, hub):
        wait_for(lambda server=server: left(server) == [], what=f"the outbox of {server.name} to be empty", timeout=60)


def test_a_get_for_the_cpo_party_is_forwarded_with_routing_headers_at_each_hop(triangle):
    hub, cpo, emsp = triangle
    token = _token_out(emsp)
    location = cpo.shell("from locations.models import Location\n"
                         "print(json.dumps(Location.objects.filter(cpo__party_id='DMO', moderation='PUBLISHED')"
                         ".order_by('pk').values_list('ocpi_id', flat=True).first()))")
    hub_sender = "/ocpi/2.2.1/cpo/locations"
    response = _ocpi_get(hub, f"{hub_sender}/{location}", token, **{
        "OCPI-from-country-code": "NL", "OCPI-from-party-id": "EMS",
        "OCPI-to-country-code": "DE", "OCPI-to-party-id": "DMO"})
    body = response.json()
    assert response.status_code == 200 and body["status_code"] == 1000, body
    assert body["data"]["id"] == location
    # The answer is the CPO party's, to the eMSP's party: what the CPO platform answered the hub.
    assert (response.headers["OCPI-from-country-code"], response.headers["OCPI-from-party-id"]) == ("DE", "DMO")
    assert (response.headers["OCPI-to-country-code"], response.headers["OCPI-to-party-id"]) == ("NL", "EMS")

    # A party the eMSP is not: refused before anything is forwarded.
    forged = _ocpi_get(hub, f"{hub_sender}/{location}", token, **{
        "OCPI-from-country-code": "DE", "OCPI-from-party-id": "DMO",
        "OCPI-to-country-code": "DE", "OCPI-to-party-id": "DMO"})
    assert forged.json()["status_code"] == 2001, forged.text


def test_a_request_for_an_unknown_party_is_4001(triangle):
    hub, _, emsp = triangle
    token = _token_out(emsp)
    headers = {"OCPI-from-country-code": "NL", "OCPI-from-party-id": "EMS",
               "OCPI-to-country-code": "FR", "OCPI-to-party-id": "ZZZ"}
    for path in ("/ocpi/2.2.1/cpo/locations", "/ocpi/2.2.1/cpo/locations/ANY-1"):
        response = _ocpi_get(hub, path, token, **headers)
        assert response.json()["status_code"] == 4001, (path, response.text)
        assert "data" not in response.json() or not response.json()["data"], response.text


def _status_on_emsp(emsp):
    return emsp.shell("from ocpi.models import PeerParty\n"
                      "print(json.dumps(sorted(PeerParty.objects.filter(via_hub=True, country_code='DE', "
                      "party_id='DMO').values_list('role', 'status'))))")


def test_hubclientinfo_tells_the_emsp_when_the_cpo_goes_offline_and_comes_back(triangle):
    hub, cpo, emsp = triangle
    check = ("from ocpi.liveness import peers_check\n"
             "print(json.dumps(str(peers_check())))")
    cpo.stop_web()
    try:
        hub.shell(check)
        wait_for(lambda: ["CPO", "OFFLINE"] in _status_on_emsp(emsp), what="OFFLINE on the eMSP", timeout=120)
    finally:
        cpo.start()
    hub.shell(check)
    wait_for(lambda: ["CPO", "CONNECTED"] in _status_on_emsp(emsp), what="CONNECTED again on the eMSP",
             timeout=120)

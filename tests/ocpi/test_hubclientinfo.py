"""The hub role (credentials.asciidoc, mod_hub_client_info): HubClientInfo as sender and receiver, the ClientInfo
pushed when a party's status changes, the still-alive check, and what a peer that is a hub may write."""

from datetime import timedelta

import pytest
from django.utils import timezone

from locations.models import Cpo, Location
from locations.tokens import token_digest, token_new
from ocpi.models import OutboxEntry, Peer, PeerParty
from tests.conftest import location_payload
from tests.ocpi.conftest import ocpi_delete, ocpi_get, ocpi_post, ocpi_put
from tests.ocpi.peer_server import peer_connected_here

URL = "/ocpi/2.2.1/hubclientinfo"
pytestmark = pytest.mark.django_db


def _peer(name: str, parties: list[tuple[str, str, str]], *, state=Peer.State.CONNECTED, roles=None, **fields) -> Peer:
    token = token_new()
    peer = Peer.objects.create(name=name, state=state, token_in_digest=token_digest(token), version="2.2.1",
                               roles=roles or [], **fields)
    for role, cc, pid in parties:
        cpo = Cpo.objects.create(country_code=cc, party_id=pid, owner_name=name) if role == "CPO" else None
        PeerParty.objects.create(peer=peer, role=role, country_code=cc, party_id=pid, cpo=cpo)
    peer.token = token
    return peer


def _hub(name: str = "Upstream hub", party=("NL", "HUB")) -> Peer:
    return _peer(name, [("HUB", *party)], roles=[{"role": "HUB", "country_code": party[0], "party_id": party[1]}])


def _info(cc="NL", pid="XYZ", role="CPO", status="CONNECTED", last_updated="2026-01-01T10:00:00Z") -> dict:
    return {"country_code": cc, "party_id": pid, "role": role, "status": status, "last_updated": last_updated}


# --- the Sender: the parties connected to us ---------------------------------------------------------------

def test_the_list_reports_every_other_party_with_its_status_paginated(client, connected_peer, settings):
    _peer("connected", [("CPO", "NL", "CON"), ("EMSP", "NL", "CON")])
    _peer("offline", [("CPO", "BE", "OFF")], offline_since=timezone.now())
    _peer("suspended", [("CPO", "FR", "SUS")], state=Peer.State.SUSPENDED)
    _peer("invited", [("EMSP", "IT", "PLA")], state=Peer.State.INVITED)
    seen, url, pages = [], URL + "?limit=2", 0
    while url:
        response = ocpi_get(client, url, connected_peer.token)
        assert response.status_code == 200 and response.json()["status_code"] == 1000
        assert response["X-Total-Count"] == "5" and response["X-Limit"] == "2"
        seen += response.json()["data"]
        pages += 1
        link = response.get("Link")
        url = link[1:link.index(">")].removeprefix(settings.PUBLIC_BASE_URL) if link else None
    assert pages == 3
    assert {(i["country_code"], i["party_id"], i["role"]): i["status"] for i in seen} == {
        ("NL", "CON", "CPO"): "CONNECTED", ("NL", "CON", "EMSP"): "CONNECTED", ("BE", "OFF", "CPO"): "OFFLINE",
        ("FR", "SUS", "CPO"): "SUSPENDED", ("IT", "PLA", "EMSP"): "PLANNED"}
    # the caller's own party (DE*ALP) is not "another party"
    assert all(set(i) == {"country_code", "party_id", "role", "status", "last_updated"} for i in seen)
    assert all(i["last_updated"].endswith("Z") for i in seen)


def test_the_list_filters_on_last_updated(client, connected_peer):
    old, new = _peer("old", [("CPO", "NL", "OLD")]), _peer("new", [("CPO", "NL", "NEW")])
    moment = timezone.now()
    PeerParty.objects.filter(peer=old).update(last_updated=moment - timedelta(hours=2))
    PeerParty.objects.filter(peer=new).update(last_updated=moment)
    stamp = (moment - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def parties(query):
        return {i["party_id"] for i in ocpi_get(client, URL + query, connected_peer.token).json()["data"]}

    assert parties(f"?date_from={stamp}") == {"NEW"}
    assert parties(f"?date_to={stamp}") == {"OLD"}
    assert parties(f"?date_to={moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}") == {"OLD"}  # exclusive


def test_a_plain_platform_sends_no_client_info(client, connected_peer, settings):
    settings.EVHUB_OCPI_HUB = False
    response = ocpi_get(client, URL, connected_peer.token)
    assert response.status_code == 404 and response.json()["status_code"] == 2000
    endpoints = ocpi_get(client, "/ocpi/2.2.1", connected_peer.token).json()["data"]["endpoints"]
    assert {(e["identifier"], e["role"]) for e in endpoints if e["identifier"] == "hubclientinfo"} == {
        ("hubclientinfo", "RECEIVER")}


def test_a_hub_lists_hubclientinfo_in_both_roles(client, connected_peer, settings):
    endpoints = ocpi_get(client, "/ocpi/2.2.1", connected_peer.token).json()["data"]["endpoints"]
    assert {e["role"]: e["url"] for e in endpoints if e["identifier"] == "hubclientinfo"} == {
        "SENDER": settings.PUBLIC_BASE_URL + URL, "RECEIVER": settings.PUBLIC_BASE_URL + URL}


def test_the_list_needs_a_token(client):
    assert ocpi_get(client, URL, None).status_code == 401


# --- the Receiver: a hub reports the parties behind it -----------------------------------------------------

def test_a_hub_puts_client_info_and_gets_it_back(client):
    hub = _hub()
    response = ocpi_put(client, f"{URL}/NL/XYZ", hub.token, _info())
    assert response.status_code == 201 and response.json()["status_code"] == 1000
    party = PeerParty.objects.get(peer=hub, via_hub=True, country_code="NL", party_id="XYZ")
    assert party.role == "CPO" and party.status == "CONNECTED" and party.cpo.country_code == "NL"

    response = ocpi_put(client, f"{URL}/nl/xyz", hub.token, _info(status="OFFLINE", last_updated="2026-01-01T11:00:00Z"))
    assert response.status_code == 200 and response.json()["status_code"] == 1000
    # an older report changes nothing
    ocpi_put(client, f"{URL}/NL/XYZ", hub.token, _info(status="SUSPENDED", last_updated="2025-12-31T00:00:00Z"))
    body = ocpi_get(client, f"{URL}/NL/XYZ", hub.token).json()
    assert body["data"] == _info(status="OFFLINE", last_updated="2026-01-01T11:00:00Z")
    assert PeerParty.objects.filter(country_code="NL", party_id="XYZ").count() == 1

    response = ocpi_get(client, f"{URL}/NL/ZZZ", hub.token)
    assert response.status_code == 404 and response.json()["status_code"] == 2000


def test_only_a_hub_may_put_client_info(client, connected_peer, alpha):
    for token in (connected_peer.token, alpha.token_c):
        response = ocpi_put(client, f"{URL}/NL/XYZ", token, _info())
        assert response.status_code == 403 and response.json()["status_code"] == 2000
    assert not PeerParty.objects.filter(party_id="XYZ").exists()


@pytest.mark.parametrize("url, body, field", [
    (f"{URL}/NL/XYZ", {k: v for k, v in _info().items() if k != "status"}, "'status'"),
    (f"{URL}/NL/XYZ", _info(status="ASLEEP"), "'status'"),
    (f"{URL}/NL/XYZ", _info(role="KING"), "'role'"),
    (f"{URL}/NL/XYZ", _info(pid="ABC"), "of the URL"),
    (f"{URL}/NL/XYZ", _info(pid="X" * 5000), "'party_id'"),
    (f"{URL}/NL/XYZ", _info(last_updated="yesterday"), "'last_updated'"),
    (f"{URL}/NL/XYZ", _info(last_updated="2" * 10000), "'last_updated'"),
    (f"{URL}/NL/XYZ", [], "JSON object"),
    (f"{URL}/NLD/XYZ", _info(cc="NLD"), "country_code"),
    (f"{URL}/NL/{'X' * 300}", _info(), "party_id"),
])
def test_a_bad_client_info_is_2001(client, url, body, field):
    hub = _hub()
    response = ocpi_put(client, url, hub.token, body)
    assert response.status_code == 400 and response.json()["status_code"] == 2001
    assert field in response.json()["status_message"]
    assert not PeerParty.objects.filter(via_hub=True).exists()


@pytest.mark.parametrize("raw", [
    '{"country_code": "NL", "party_id": "XYZ", "role": "CPO", "status": "\\ud800", "last_updated": "2026-01-01T10:00:00Z"}',
    "[" * 1000 + "]" * 1000,
    '{"country_code": "NL", "party_id": "XYZ", "role": "CPO", "status": 7, "last_updated": "2026-01-01T10:00:00Z"}',
    '{"country_code": "NL", "party_id": "XYZ", "role": "CPO", "status": "CONNECTED", "last_updated": 9223372036854775808}',
    '{"country_code": "NL", "party_id": "XYZ", "role": "CPO", "status": NaN}',
])
def test_a_hostile_client_info_body_is_2001_and_stores_nothing(client, raw):
    """Lone surrogates, deep nesting, wrong types, numbers past any column, NaN: a clear 2001, never a 500."""
    response = ocpi_put(client, f"{URL}/NL/XYZ", _hub().token, raw)
    assert response.status_code == 400 and response.json()["status_code"] == 2001, response.content[:300]
    assert not PeerParty.objects.filter(via_hub=True).exists()


def test_a_hub_never_gets_a_party_of_another_peer_or_a_portal_cpo(client, connected_peer, alpha, bravo):
    hub = _hub()
    for cc, pid in (("DE", "ALP"), ("DE", "BRV")):  # connected_peer's party; a portal CPO of ours
        response = ocpi_put(client, f"{URL}/{cc}/{pid}", hub.token, _info(cc=cc, pid=pid))
        assert response.status_code == 400 and response.json()["status_code"] == 2001
        response = ocpi_put(client, f"/ocpi/2.2.1/emsp/locations/{cc}/{pid}/HUB-1", hub.token,
                            location_payload(Cpo.objects.get(party_id=pid), "HUB-1"))
        assert response.status_code == 404 and response.json()["status_code"] == 2000
    assert not PeerParty.objects.filter(peer=hub, via_hub=True).exists()
    assert not Location.objects.filter(ocpi_id="HUB-1").exists()


# --- what a hub may write: the parties behind it ----------------------------------------------------------

def test_a_hub_writes_locations_of_a_party_behind_it_on_first_sight(client, connected_peer):
    hub, other = _hub(), _peer("not a hub", [("CPO", "NL", "NOT")])
    behind = Cpo(country_code="NL", party_id="BHD")
    response = ocpi_get(client, "/ocpi/2.2.1/emsp/locations/NL/BHD/LOC-B", hub.token)
    assert response.status_code == 404 and not Cpo.objects.filter(party_id="BHD").exists()  # a read creates nothing
    response = ocpi_put(client, "/ocpi/2.2.1/emsp/locations/NL/BHD/LOC-B", hub.token, location_payload(behind, "LOC-B"))
    assert response.status_code == 201, response.json()
    party = PeerParty.objects.get(peer=hub, country_code="NL", party_id="BHD")
    assert party.via_hub and party.role == "CPO" and Location.objects.get(ocpi_id="LOC-B").cpo == party.cpo
    # what it wrote is its own: not sent back to it, still readable by others
    listed = {loc["id"] for loc in ocpi_get(client, "/ocpi/2.2.1/cpo/locations", hub.token).json()["data"]}
    assert "LOC-B" not in listed
    # a peer that is no hub writes for the parties of its credentials only
    response = ocpi_put(client, "/ocpi/2.2.1/emsp/locations/NL/OTR/LOC-O", other.token,
                        location_payload(Cpo(country_code="NL", party_id="OTR"), "LOC-O"))
    assert response.status_code == 404 and not Cpo.objects.filter(party_id="OTR").exists()


def test_a_pull_from_a_hub_takes_the_parties_behind_it(alpha):
    from ocpi.modules.locations.push import pull_writer

    hub = _hub()
    writer = pull_writer(hub)
    writer.start()
    writer.add([location_payload(Cpo(country_code="NL", party_id="PUL"), "PULLED-1"),
                location_payload(alpha, "NOT-YOURS")])
    writer.flush()
    writer.close()
    assert Location.objects.get(ocpi_id="PULLED-1").cpo.ocpi_parties.get().peer == hub
    assert not Location.objects.filter(ocpi_id="NOT-YOURS").exists()
    assert writer.tally.created == 1 and sum(writer.tally.reasons.values()) == 1


# --- ClientInfo announced on a status change ----------------------------------------------------------------

def _receiver(name="listening eMSP") -> Peer:
    return _peer(name, [("EMSP", "NL", "LIS")],
                 endpoints={"hubclientinfo": {"RECEIVER": "https://listener.example/ocpi/2.2.1/hubclientinfo"}})


def _announced(peer: Peer) -> set:
    return set(OutboxEntry.objects.filter(peer=peer, module="hubclientinfo")
               .values_list("country_code", "party_id", "object_id"))


def test_registration_and_unregistration_are_announced_to_the_others(client, invited_peer, fake_platform, settings):
    listener = _receiver()
    fake_platform.serve_versions(token="their-token-B")
    body = {"token": "their-token-B", "url": f"{fake_platform.url}/versions", "roles": [
        {"role": role, "country_code": "NL", "party_id": "REG", "business_details": {"name": "Reg"}}
        for role in ("CPO", "EMSP")]}
    response = ocpi_post(client, "/ocpi/2.2.1/credentials", invited_peer.token_a, body)
    assert response.json()["status_code"] == 1000
    assert _announced(listener) == {("NL", "REG", "CPO"), ("NL", "REG", "EMSP")}
    assert not _announced(Peer.objects.get(pk=invited_peer.pk))  # not told about itself
    registered = Peer.objects.get(pk=invited_peer.pk)
    assert registered.status_changed_at is not None

    OutboxEntry.objects.all().delete()
    token_c = response.json()["data"]["token"]
    assert ocpi_delete(client, "/ocpi/2.2.1/credentials", token_c).json()["status_code"] == 1000
    assert _announced(listener) == {("NL", "REG", "CPO"), ("NL", "REG", "EMSP")}
    from ocpi.modules.hubclientinfo.objects import clientinfo_json

    party = PeerParty.objects.select_related("peer").get(party_id="REG", role="CPO")
    assert clientinfo_json(party)["status"] == "SUSPENDED"


def test_a_plain_platform_announces_nothing(fake_platform, settings):
    from ocpi.liveness import peer_online_set

    settings.EVHUB_OCPI_HUB = False
    listener, watched = _receiver(), _peer("watched", [("CPO", "NL", "WAT")])
    assert peer_online_set(peer=watched, online=False)
    assert not _announced(listener)


# --- liveness and the push, with real evhubs --------------------------------------------------------------

def _admit_hub(server, token: str) -> None:
    """On `server`: we (DE*EVH, a hub) are a connected peer calling with `token`, our credentials role HUB."""
    server.admit(name="the hub", token=token, parties=[("HUB", "DE", "EVH")])
    server.shell("from locations.tokens import token_digest\nfrom ocpi.models import Peer\n"
                 f"Peer.objects.filter(token_in_digest=token_digest({token!r})).update("
                 "roles=[{'role': 'HUB', 'country_code': 'DE', 'party_id': 'EVH'}])\nprint('null')")


def _parties_from_hub(server) -> dict:
    return {tuple(key.split("*")): status for key, status in (server.shell(
        "from ocpi.models import PeerParty\n"
        "print(json.dumps({f'{p.country_code}*{p.party_id}*{p.role}': [p.status, p.cpo_id is not None] "
        "for p in PeerParty.objects.filter(via_hub=True)}))") or {}).items()}


def test_a_stopped_peer_goes_offline_and_back_and_the_others_hear_of_it(evhub_servers, loopback):
    from ocpi import outbox
    from ocpi.liveness import peers_check

    listener = evhub_servers.create("cinfo-emsp", party=("NL", "LIS"), extra_env={"EVHUB_OCPI_HUB": "False"})
    watched = evhub_servers.create("cinfo-cpo", party=("NL", "WAT"), extra_env={"EVHUB_OCPI_HUB": "False"})
    try:
        listener_token, watched_token = token_new(), token_new()
        _admit_hub(listener, listener_token)
        watched.admit(name="the hub", token=watched_token, parties=[("EMSP", "DE", "EVH")])
        to_listener = peer_connected_here(listener, token=listener_token, parties=[("EMSP", "NL", "LIS")])
        to_watched = peer_connected_here(watched, token=watched_token, parties=[("CPO", "NL", "WAT")])
        assert to_listener.endpoint("hubclientinfo", "RECEIVER")

        assert peers_check() == {"offline": [], "online": []}
        watched.stop_web()
        assert peers_check() == {"offline": [to_watched.pk], "online": []}
        assert Peer.objects.get(pk=to_watched.pk).offline_since is not None
        assert peers_check() == {"offline": [], "online": []}  # told once
        assert outbox.peer_push(peer=to_listener).sent == 1
        assert _parties_from_hub(listener) == {("NL", "WAT", "CPO"): ["OFFLINE", True]}

        watched.start()
        assert peers_check() == {"offline": [], "online": [to_watched.pk]}
        assert Peer.objects.get(pk=to_watched.pk).offline_since is None
        assert outbox.peer_push(peer=to_listener).sent == 1
        # the listener stored the party behind us with a tenant, and heard nothing about itself
        assert _parties_from_hub(listener) == {("NL", "WAT", "CPO"): ["CONNECTED", True]}
    finally:
        evhub_servers.discard(listener)
        evhub_servers.discard(watched)


# --- a plain platform connected to a hub (both real evhubs) --------------------------------------------------

@pytest.mark.e2e
def test_a_plain_platform_registers_with_a_hub_and_takes_its_pushes(evhub_servers):
    """The hub (DE*DMO, demo data, a worker) names only itself; the plain eMSP still takes the locations it
    pushes for the party behind it, and hears from it when another party goes offline."""
    from tests.ocpi.peer_server import demo_peer
    from tests.ocpi.test_e2e_two_servers import WEBHOOK, wait_for, webhook

    hub = demo_peer(evhub_servers, "cinfo-hub")
    plain = evhub_servers.create("cinfo-plain", party=("NL", "PLN"), extra_env={"EVHUB_OCPI_HUB": "False"})
    try:
        demo = hub.demo_credentials()
        out = plain.manage("ocpi_register", "--name", "hub", "--", demo["ocpi_peer"]["versions_url"],
                           demo["ocpi_peer"]["token_a"])
        assert "Registered" in out, out
        assert plain.shell("from ocpi.models import Peer\n"
                           "print(json.dumps([r['role'] for r in Peer.objects.get(name='hub').roles]))") == ["HUB"]
        assert sorted(hub.shell("from ocpi.models import PeerParty\nprint(json.dumps([p.role for p in "
                                "PeerParty.objects.filter(country_code='NL', party_id='PLN')]))")) == ["CPO", "EMSP"]

        assert webhook(hub, demo, "locations", {"locations": [WEBHOOK]}).status_code == 200
        arrived = wait_for(lambda: plain.shell(
            "from locations.models import Location\n"
            "loc = Location.objects.filter(name='E2E Ladepark').select_related('cpo').first()\n"
            "print(json.dumps(loc and [loc.cpo.country_code, loc.cpo.party_id, "
            "[(p.peer.name, p.via_hub) for p in loc.cpo.ocpi_parties.all()]]))"), what="the location the hub pushed")
        assert arrived == ["DE", "DMO", [["hub", True]]]

        hub.admit(name="other", token=token_new(), parties=[("CPO", "FR", "OTH")])
        hub.shell("from ocpi.liveness import peer_online_set\nfrom ocpi.models import Peer\n"
                  "print(json.dumps(peer_online_set(peer=Peer.objects.get(name='other'), online=False)))")
        reported = wait_for(lambda: _parties_from_hub(plain).get(("FR", "OTH", "CPO")), what="the ClientInfo")
        assert reported == ["OFFLINE", True]
    finally:
        evhub_servers.discard(hub)
        evhub_servers.discard(plain)


# --- a configuration module: no routing headers either way (transport_and_format, Message Routing) ----------

def test_client_info_carries_no_routing_headers(client, fake_platform, settings):
    from locations.tokens import secret_encrypt
    from ocpi.liveness import peer_online_set
    from ocpi.outbox import peer_push

    listener = _peer("routing-free listener", [("EMSP", "NL", "LIS")], token_out=secret_encrypt("listener-token"),
                     endpoints={"hubclientinfo": {"RECEIVER": f"{fake_platform.url}/hubclientinfo"}})
    watched = _peer("watched", [("CPO", "NL", "WAT")])
    fake_platform.answer("PUT", "/hubclientinfo/NL/WAT", {})
    assert peer_online_set(peer=watched, online=False)
    result = peer_push(peer=Peer.objects.get(pk=listener.pk))
    assert result.sent == 1 and not result.failed, result
    [put] = fake_platform.requests("PUT", "/hubclientinfo/NL/WAT")
    assert put.body["status"] == "OFFLINE"
    assert not [name for name in put.headers if name.lower().startswith("ocpi-")], put.headers

    response = ocpi_get(client, URL, listener.token)
    assert response.json()["status_code"] == 1000
    assert not [name for name in response.headers if name.lower().startswith("ocpi-")], dict(response.headers)

"""Two real evhub servers on loopback, each with its own database, Celery and cache: the credentials
handshake, a full pull with equal counts, and a change pushed by a worker (also after the receiver was
down). `hub` (DE*EVH) registers with a demo peer of this module's own (DE*DMO, the demo data: the session's
`peer_server` has been stopped, restarted and connected by other tests), whose demo CPO's back end then
calls the peer's webhooks."""

import time

import pytest
import requests

from tests.ocpi.peer_server import demo_peer

pytestmark = [pytest.mark.e2e]

WEBHOOK = {"name": "E2E Ladepark", "address": "Hafenstraße 1, Hamburg", "lat": "53.541000", "lng": "9.984000",
           "facilities": ["PARKING_LOT"], "parking_types": ["OUTDOOR"], "parking_restrictions": [],
           "evses": [{"uid": "E2E-1", "status": "AVAILABLE", "meter_type": "DC", "kwh": 150,
                      "capabilities": [], "payment_types": [],
                      "connectors": [{"standard": "IEC_62196_T2_COMBO", "format": "CABLE", "power_type": "DC",
                                      "max_voltage": 920, "max_amperage": 200, "max_electric_power": 150000}]}]}


@pytest.fixture(scope="module")
def connected(evhub_servers):
    """The hub registered with the peer (ocpi_register with the peer's demo token A); both are stopped and
    their databases dropped after the module."""
    peer = demo_peer(evhub_servers, "e2e-peer")
    hub = evhub_servers.create("e2e-hub", party=("DE", "EVH"))
    try:
        demo = peer.demo_credentials()
        out = hub.manage("ocpi_register", "--name", "peer", "--", demo["ocpi_peer"]["versions_url"],
                         demo["ocpi_peer"]["token_a"])
        assert "Registered" in out, out
        yield hub, peer, demo
    finally:
        for server in (hub, peer):
            evhub_servers.discard(server)


def count(server, party: str, published: bool = True) -> int:
    extra = ", moderation='PUBLISHED'" if published else ""
    return server.shell("from locations.models import Location\n"
                        f"print(json.dumps(Location.objects.filter(cpo__party_id={party!r}{extra}).count()))")


def wait_for(probe, *, timeout: float = 90, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def hub_location(hub, name: str):
    return hub.shell("from locations.models import Location\n"
                     f"loc = Location.objects.filter(cpo__party_id='DMO', name={name!r}).first()\n"
                     "print(json.dumps(loc and {'id': loc.ocpi_id, "
                     "'evses': sorted((e.uid, e.status) for e in loc.evses.all())}))")


def webhook(peer, demo, path: str, body: dict) -> requests.Response:
    cpo = demo["cpo"]
    return requests.post(peer.url(f"/ocpi/cpo/api/v1/webhook/{path}/{cpo['country_code']}/{cpo['party_id']}"),
                         json=body, headers={"Authorization": f"Bearer {cpo['token_c']}"}, timeout=30)


def test_the_handshake_connects_both_sides(connected):
    hub, peer, _ = connected
    states = [hub.shell("from ocpi.models import Peer\n"
                        "print(json.dumps(sorted(p.state for p in Peer.objects.filter(state='CONNECTED'))))"),
              peer.shell("from ocpi.models import Peer\n"
                         "print(json.dumps(Peer.objects.filter(name='demo peer', state='CONNECTED').count()))")]
    assert states == [["CONNECTED"], 1]


def test_a_full_pull_brings_every_published_location(connected):
    hub, peer, _ = connected
    out = hub.manage("ocpi_pull", "peer", "--full")
    expected = count(peer, "DMO")
    assert expected >= 404
    assert count(hub, "DMO", published=False) == expected, out
    assert f"{expected} created" in out, out


def test_a_webhook_change_on_the_peer_is_pushed_to_the_hub(connected):
    hub, peer, demo = connected
    response = webhook(peer, demo, "locations", {"locations": [WEBHOOK]})
    assert response.status_code == 200, response.text
    location_id = response.json()["data"][0]["location_id"]
    arrived = wait_for(lambda: hub_location(hub, "E2E Ladepark"), what="the pushed location")
    assert arrived["evses"] == [["E2E-1", "AVAILABLE"]]

    evse = {"location_id": location_id, **WEBHOOK["evses"][0], "status": "CHARGING"}
    assert webhook(peer, demo, "evse", evse).status_code == 200
    wait_for(lambda: hub_location(hub, "E2E Ladepark")["evses"] == [["E2E-1", "CHARGING"]],
             what="the pushed EVSE status")


def test_a_hub_down_gets_the_changes_later_in_order(connected):
    hub, peer, demo = connected
    first = webhook(peer, demo, "locations", {"locations": [WEBHOOK]}).json()["data"][0]["location_id"]
    hub.stop_web()
    try:
        for status in ("OUTOFORDER", "BLOCKED", "INOPERATIVE"):
            evse = {"location_id": first, **WEBHOOK["evses"][0], "status": status}
            assert webhook(peer, demo, "evse", evse).status_code == 200
        failed = wait_for(lambda: peer.shell(
            "from ocpi.models import OutboxEntry\n"
            "print(json.dumps(list(OutboxEntry.objects.filter(delivered_at__isnull=True, attempts__gte=1)"
            ".values_list('id', flat=True))))"), what="a failed delivery attempt")
        pending = peer.shell("from ocpi.models import OutboxEntry\n"
                             "print(json.dumps(OutboxEntry.objects.filter(delivered_at__isnull=True).count()))")
        assert pending >= 3 and failed
    finally:
        hub.start()
    # The retry is due at once (instead of after its 30 s backoff), and beat's task kicks it.
    peer.shell("from django.utils import timezone\nfrom ocpi.models import OutboxEntry\nfrom ocpi.outbox import push_due\n"
               "OutboxEntry.objects.filter(delivered_at__isnull=True).update(next_attempt_at=timezone.now())\n"
               "print(json.dumps(push_due()))")
    wait_for(lambda: hub_location(hub, "E2E Ladepark")["evses"] == [["E2E-1", "INOPERATIVE"]],
             what="the changes made while the hub was down")
    left = peer.shell("from ocpi.models import OutboxEntry\n"
                      "print(json.dumps(OutboxEntry.objects.filter(delivered_at__isnull=True).count()))")
    assert left == 0

"""The HubClientInfo module on the outbox (ocpi.outbox, ocpi.registry): as a hub, each change of a connected
party's status (ocpi.hub.peer_status_record announces it) is PUT to every other connected peer that has a
hubclientinfo RECEIVER, at `{url}/{country_code}/{party_id}` (mod_hub_client_info, Push model).

Entries are `(country_code, party_id, role, PeerParty pk)`: a party with two roles is two ClientInfo
objects. A peer never receives its own parties' ClientInfo (`load` leaves them out: "deleted: not sent").
"""

from __future__ import annotations

from django.conf import settings

from ocpi import outbox
from ocpi.client import OcpiClient
from ocpi.hub import MODULE
from ocpi.models import OutboxEntry, Peer, PeerParty
from ocpi.modules.hubclientinfo.objects import clientinfo_json
from ocpi.registry import Module, register
from ocpi.transport import V221


def receiver_url(peer: Peer) -> str | None:
    """The peer's hubclientinfo RECEIVER, when we are a hub (a plain platform reports nobody) and speak 2.2.1
    with it (2.1.1 has no such module)."""
    if not settings.EVHUB_OCPI_HUB or peer.version != V221:
        return None
    return (peer.endpoints.get(MODULE) or {}).get("RECEIVER")


def load(entries: list[OutboxEntry], peer: Peer) -> dict[int, PeerParty]:
    ids = [entry.object_pk for entry in entries if entry.object_pk is not None]
    return {party.pk: party for party in PeerParty.objects.select_related("peer")
            .filter(pk__in=ids, via_hub=False).exclude(peer=peer)}


def send(client: OcpiClient, url: str, entry: OutboxEntry, party: PeerParty, peer: Peer) -> str:
    target = f"{url.rstrip('/')}/{party.country_code}/{party.party_id}"
    # No routing headers: HubClientInfo is a configuration module (transport_and_format, Message Routing).
    return outbox.object_put(client, target, clientinfo_json(party), routed=False)


register(Module(identifier=MODULE, receiver_url=receiver_url, load=load, send=send))

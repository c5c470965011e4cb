"""The hub role's spine: which peers are hubs, and the ClientInfo status of every connected party.

mod_hub_client_info: a hub tells the parties connected to it the connection status of the others
(CONNECTED, OFFLINE, PLANNED, SUSPENDED). A peer's status follows from its state and liveness
(`client_status`); when it changes (a registration, an unregistration, the still-alive check of
ocpi.liveness) `peer_status_record` stamps it and announces the ClientInfo of each of the peer's parties
through the outbox (module `hubclientinfo`, ocpi/modules/hubclientinfo/), in the caller's transaction.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ocpi.models import Peer, PeerParty

MODULE = "hubclientinfo"
STATUSES = ("CONNECTED", "OFFLINE", "PLANNED", "SUSPENDED")  # ConnectionStatus


def peer_is_hub(peer: Peer | None) -> bool:
    """Whether the peer's credentials name a HUB role: it speaks for parties it does not name."""
    return peer is not None and any(isinstance(role, dict) and str(role.get("role", "")).upper() == "HUB"
                                    for role in peer.roles or ())


def client_status(peer: Peer) -> str:
    if peer.state == Peer.State.SUSPENDED:
        return "SUSPENDED"
    if peer.state == Peer.State.INVITED:
        return "PLANNED"  # invited, never connected
    return "OFFLINE" if peer.offline_since else "CONNECTED"


def client_parties(peer: Peer):
    """The peer's own parties (named in its credentials), whose ClientInfo a hub reports."""
    return PeerParty.objects.filter(peer=peer, via_hub=False)


@transaction.atomic
def peer_status_record(*, peer: Peer, before: str | None) -> list[int]:
    """After a change of the peer (already saved): when its status is not `before`, stamp it and announce
    every party's ClientInfo; else announce only the parties new since (a credentials update may add
    some). Returns the ids of the announced parties."""
    now = timezone.now()
    parties = client_parties(peer)
    if client_status(peer) != before:
        Peer.objects.filter(pk=peer.pk).update(status_changed_at=now)
        peer.status_changed_at = now
    else:
        parties = parties.filter(last_updated__isnull=True)
    announced = list(parties.values_list("pk", "country_code", "party_id", "role"))
    PeerParty.objects.filter(pk__in=[row[0] for row in announced]).update(last_updated=now)
    clientinfo_announce(peer=peer, parties=announced)
    return [row[0] for row in announced]


def clientinfo_announce(*, peer: Peer, parties: list[tuple[int, str, str, str]]) -> None:
    """Outbox entries for the ClientInfo of `peer`'s parties [(pk, country_code, party_id, role)], to every
    other connected peer with a hubclientinfo receiver. A plain platform (not EVHUB_OCPI_HUB) reports nobody."""
    if not parties or not settings.EVHUB_OCPI_HUB:
        return
    from ocpi.outbox import connected_peers, outbox_announce

    others = [other for other in connected_peers() if other.pk != peer.pk]
    outbox_announce(module=MODULE, keys=[(cc, pid, role, pk) for pk, cc, pid, role in parties], peers=others)

"""The still-alive check of connected peers (mod_hub_client_info, "Still alive check").

Every EVHUB_OCPI_PEER_CHECK_SECONDS (beat task `ocpi.peers_check`) each connected peer's versions
endpoint is read through OcpiClient (it guards the address the peer gave us): it has no side effects and
every platform has one. No answer, or an HTTP 5xx, and the peer is OFFLINE from then on (offline_since);
any other answer and it is CONNECTED again. Each change is recorded and its ClientInfo announced
(ocpi.hub.peer_status_record), so that the other parties learn it.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from locations.tokens import secret_decrypt
from ocpi.client import OcpiClient, PeerError
from ocpi.hub import client_status, peer_status_record
from ocpi.models import Peer

logger = logging.getLogger(__name__)


def peer_alive(*, peer: Peer) -> bool:
    """Whether the peer's versions endpoint answers (any answer but an HTTP 5xx: a 401 is alive too)."""
    try:
        reply = OcpiClient(token=secret_decrypt(peer.token_out), version=peer.version).get(
            peer.versions_url, routed=False)
    except PeerError as exc:
        logger.info("OCPI peer %s (%s) did not answer the still-alive check: %s", peer.pk, peer.name, exc)
        return False
    return reply.http_status < 500


def peer_online_set(*, peer: Peer, online: bool) -> bool:
    """Mark a connected peer online or offline; True when its status changed (and was announced)."""
    with transaction.atomic():
        peer = Peer.objects.select_for_update().filter(pk=peer.pk, state=Peer.State.CONNECTED).first()
        if peer is None or (peer.offline_since is None) == online:
            return False
        before = client_status(peer)
        peer.offline_since = None if online else timezone.now()
        peer.save(update_fields=["offline_since", "date_modified"])
        peer_status_record(peer=peer, before=before)
    logger.warning("OCPI peer %s (%s) is %s", peer.pk, peer.name, "back online" if online else "offline")
    return True


def peers_check() -> dict[str, list[int]]:
    """Check every connected peer once; the ids of those that went offline and came back."""
    changed: dict[str, list[int]] = {"offline": [], "online": []}
    for peer in Peer.objects.filter(state=Peer.State.CONNECTED).exclude(versions_url="").exclude(token_out=""):
        online = peer_alive(peer=peer)
        if peer_online_set(peer=peer, online=online):
            changed["online" if online else "offline"].append(peer.pk)
    return changed

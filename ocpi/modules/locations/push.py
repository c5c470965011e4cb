"""The Locations module on the outbox (ocpi.outbox) and the pull (ocpi.pull): connected eMSPs receive each
change of a published location (mod_locations, receiver PUT); connected CPOs' locations are pulled.

- `locations.signals.locations_changed` (sent inside the transaction of the change, once per write batch
  of up to 500 locations) -> `outbox_write`: one INSERT ... SELECT writes an entry per connected peer
  that has a locations RECEIVER endpoint and does not own the location's party, for published locations
  only, in that same transaction; the peers are kicked after the commit.
- `locations_withdrawn` (the hub unpublished them) writes entries the same way for locations no longer
  published; such a location goes out with every EVSE REMOVED (OCPI has no DELETE of a location).
"""

from __future__ import annotations

from functools import partial

from django.db import connection
from django.utils import timezone

from locations import selectors
from locations.enums import Moderation
from locations.models import Location
from ocpi import outbox
from ocpi.client import OcpiClient
from ocpi.hub import peer_is_hub
from ocpi.models import OutboxEntry, Peer, PeerParty
from ocpi.registry import Module, register
from ocpi.transport import V211

MODULE = "locations"
RECEIVING_ROLES = {"EMSP", "HUB", "NSP", "SCSP", "NAP", "OTHER"}


def _roles(peer: Peer) -> set[str]:
    return {str(role.get("role", "")).upper() for role in peer.roles or [] if isinstance(role, dict)}


def receiver_url(peer: Peer) -> str | None:
    """The peer's locations RECEIVER endpoint. 2.1.1 endpoints have no role ("ANY"): such an endpoint
    receives when the peer is our eMSP in 2.1.1 (`v211_role`, chosen on our side) or has a role other
    than CPO; a 2.1.1 CPO's locations endpoint is its sender."""
    urls = peer.endpoints.get(MODULE) or {}
    if urls.get("RECEIVER"):
        return urls["RECEIVER"]
    if urls.get("ANY") and (peer.v211_role == "EMSP" or _roles(peer) & RECEIVING_ROLES):
        return urls["ANY"]
    return None


def sender_url(peer: Peer) -> str | None:
    """The peer's locations SENDER endpoint. A 2.1.1 endpoint (no role) sends when the peer is our CPO."""
    urls = peer.endpoints.get(MODULE) or {}
    if urls.get("SENDER"):
        return urls["SENDER"]
    if urls.get("ANY") and peer.v211_role == "CPO":
        return urls["ANY"]
    return None


# --- writing the outbox ------------------------------------------------------------------------------------

def outbox_write(*, location_ids: list[int], peers: list[Peer] | None = None, withdrawn: bool = False) -> list[int]:
    """One entry per receiving peer for each published location (each location, `withdrawn`: they were
    published until now), in the caller's transaction; returns the ids of the peers written for.

    One INSERT ... SELECT checks the moderation and the party's owner and writes the entries (none
    when no peer receives), for all the locations of a write batch."""
    peers = outbox.receiving_peers(module=MODULE) if peers is None else peers
    if not peers or not location_ids:
        return []
    table, location, party = OutboxEntry._meta.db_table, Location._meta.db_table, PeerParty._meta.db_table
    cpo = Location._meta.get_field("cpo").related_model._meta.db_table
    location_marks, peer_marks = ", ".join(["%s"] * len(location_ids)), ", ".join(["%s"] * len(peers))
    sql = (
        f"INSERT INTO {table} (peer_id, module, country_code, party_id, object_id, object_pk, date_created, "
        f"attempts, last_error) "
        f"SELECT p.id, %s, c.country_code, c.party_id, l.ocpi_id, l.id, %s, 0, '' "
        f"FROM {location} l JOIN {cpo} c ON c.id = l.cpo_id, {Peer._meta.db_table} p "
        f"WHERE l.id IN ({location_marks}) AND (l.moderation = %s OR %s) AND p.id IN ({peer_marks}) "
        f"AND NOT EXISTS (SELECT 1 FROM {party} pp WHERE pp.peer_id = p.id AND pp.cpo_id = l.cpo_id) "
        f"ORDER BY l.id, p.id RETURNING peer_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [MODULE, timezone.now(), *location_ids, Moderation.PUBLISHED, withdrawn,
                             *[peer.pk for peer in peers]])
        return sorted({row[0] for row in cursor.fetchall()})


def on_locations_changed(sender, location_ids: list[int], **kwargs) -> None:
    """Receiver of `locations.signals.locations_changed`, inside the change's transaction: an error here
    rolls the change back with it (nothing committed goes unannounced)."""
    outbox.push_kick(peer_ids=outbox_write(location_ids=location_ids))


def on_locations_withdrawn(sender, location_ids: list[int], **kwargs) -> None:
    """Receiver of `locations.signals.locations_withdrawn`: the hub took these out of publication."""
    outbox.push_kick(peer_ids=outbox_write(location_ids=location_ids, withdrawn=True))


# --- delivering ----------------------------------------------------------------------------------------------

def load(entries: list[OutboxEntry], peer: Peer) -> dict[int, tuple[Location, bool]]:
    """{location id: (location, withdrawn)}: published ones as they are; one out of publication since is
    withdrawn (so loaded whatever its state); a deleted one is missing (not sent)."""
    ids = [entry.object_pk for entry in entries if entry.object_pk is not None]
    found = {loc.pk: (loc, False) for loc in selectors.locations_ocpi(
        published_only=True, publish_flag_only=peer.version == V211).filter(pk__in=ids)}
    gone = [pk for pk in ids if pk not in found]
    if gone:
        found.update({loc.pk: (loc, True) for loc in selectors.locations_ocpi(published_only=False).filter(pk__in=gone)})
    return found


def send(client: OcpiClient, url: str, entry: OutboxEntry, obj: tuple[Location, bool], peer: Peer) -> str:
    """PUT the location as it is now; a withdrawn one with every EVSE REMOVED (mod_locations, Flow and
    Lifecycle: OCPI has no DELETE of a location)."""
    from ocpi.modules.locations.objects import location_ocpi, location_withdrawn_ocpi

    location, withdrawn = obj
    target = f"{url.rstrip('/')}/{location.cpo.country_code}/{location.cpo.party_id}/{location.ocpi_id}"
    data = (location_withdrawn_ocpi if withdrawn else location_ocpi)(location, version=peer.version)
    return outbox.object_put(client, target, data)


# --- pulling -------------------------------------------------------------------------------------------------

def pull_writer(peer: Peer):
    """The writer of a pull's pages: the peer's CPO parties (linked to a catalogue tenant) only."""
    from ocpi.pull_writer import PullWriter
    from ocpi.services import hub_party_cpo

    parties = {(party.country_code.upper(), party.party_id.upper()): party.cpo
               for party in peer.parties.select_related("cpo") if party.cpo_id and party.role.upper() == "CPO"}
    # A hub names only itself: the parties behind it are taken on first sight (ocpi.services.hub_party_cpo).
    adopt = partial(hub_party_cpo, peer) if peer_is_hub(peer) else None
    return PullWriter(parties, peer.version, adopt=adopt)


register(Module(identifier=MODULE, receiver_url=receiver_url, load=load, send=send, sender_url=sender_url,
                pull_writer=pull_writer))

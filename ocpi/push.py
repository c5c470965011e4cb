"""Push: connected eMSPs receive each change of a published location (mod_locations, receiver PUT).

1. `locations_changed` (sent after the change commits, once per write batch) -> `outbox_write`: one
   statement writes an OutboxEntry per connected peer that has a locations RECEIVER endpoint and does
   not own the location's party, for published locations only; then the peer is kicked.
   `locations_withdrawn` (the hub unpublished them) writes entries the same way for locations no longer
   published; such a location goes out with every EVSE REMOVED (OCPI has no DELETE of a location).
2. A kick enqueues `ocpi.push_peer` for the peer, at most one waiting task per peer (a flag in the
   shared cache, cleared when the task starts), so an import of 25,000 locations makes a handful of
   tasks, not 25,000.
3. `peer_push` delivers the peer's pending entries in id order, one delivery at a time per peer (a lock
   in the shared cache): the location as it is now, PUT to {receiver}/{country_code}/{party_id}/{id};
   several pending entries of one location go out once. A failure (network, non-2xx, an OCPI status
   other than 1xxx) counts an attempt on those entries, sets their next attempt with exponential
   backoff (30 s doubling, capped at an hour) and stops there: later entries wait, so a peer never
   sees an older state after a newer one, and nothing is lost.
4. `push_due` (beat, every minute) kicks the peers whose oldest pending entry is due again.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.cache import cache
from django.db import connection, connections, router, transaction
from django.utils import timezone

from locations import selectors
from locations.enums import Moderation
from locations.models import Location
from locations.tokens import secret_decrypt
from ocpi.client import OcpiClient, PeerError
from ocpi.models import OutboxEntry, Peer, PeerParty
from ocpi.transport import V211

logger = logging.getLogger(__name__)

BATCH = 200  # entries read at once; their locations are loaded in one prefetching query set
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
LOCK_SECONDS = 15 * 60  # longer than one run may take (RUN_SECONDS plus one slow request)
RUN_SECONDS = 5 * 60  # a run hands over to a fresh task after this, so a busy peer does not hog a worker
KICK_SECONDS = 10 * 60  # a lost task (worker killed) blocks kicks at most this long; push_due covers it
KEEP_DELIVERED = timedelta(days=7)
RECEIVING_ROLES = {"EMSP", "HUB", "NSP", "SCSP", "NAP", "OTHER"}


def _lock_key(peer_id: int) -> str:
    return f"ocpi:push:lock:{peer_id}"


def _kick_key(peer_id: int) -> str:
    return f"ocpi:push:kick:{peer_id}"


def _roles(peer: Peer) -> set[str]:
    return {str(role.get("role", "")).upper() for role in peer.roles or [] if isinstance(role, dict)}


def receiver_url(peer: Peer) -> str | None:
    """The peer's locations RECEIVER endpoint. 2.1.1 endpoints have no role ("ANY"): such an endpoint
    receives only when the peer is no CPO (a 2.1.1 CPO's locations endpoint is its sender)."""
    urls = peer.endpoints.get("locations") or {}
    if urls.get("RECEIVER"):
        return urls["RECEIVER"]
    if urls.get("ANY"):
        roles = _roles(peer)
        if not roles or roles & RECEIVING_ROLES:
            return urls["ANY"]
    return None


# --- 1. writing the outbox ---------------------------------------------------------------------------------

def receiving_peers() -> list[Peer]:
    """The connected peers with a locations receiver.

    Read after every write, so in plain SQL: through the ORM, building the query cost the writing
    process three times what the database spent on it. Not cached per process: a peer connected through
    another process would miss changes until the cache expired, and a shared version check (Redis) costs
    as much as this query."""
    alias = router.db_for_read(Peer)
    db = connections[alias]
    qn = db.ops.quote_name
    endpoints, roles = Peer._meta.get_field("endpoints"), Peer._meta.get_field("roles")
    sql = (f"SELECT {qn(Peer._meta.pk.column)}, {qn(endpoints.column)}, {qn(roles.column)} "
           f"FROM {qn(Peer._meta.db_table)} WHERE {qn(Peer._meta.get_field('state').column)} = %s")
    with db.cursor() as cursor:
        cursor.execute(sql, [Peer.State.CONNECTED])
        rows = cursor.fetchall()
    peers = []
    for pk, endpoints_json, roles_json in rows:
        peer = Peer.from_db(alias, ["id", "endpoints", "roles"], [
            pk, endpoints.from_db_value(endpoints_json, None, db), roles.from_db_value(roles_json, None, db)])
        if receiver_url(peer):
            peers.append(peer)
    return peers


def outbox_write(*, location_ids: list[int], peers: list[Peer] | None = None, withdrawn: bool = False) -> list[int]:
    """One entry per receiving peer for each published location (each location, `withdrawn`: they were
    published until now); returns the ids of the peers written for.

    One INSERT ... SELECT checks the moderation and the party's owner and writes the entries (none
    when no peer receives), for all the locations of a write batch."""
    peers = receiving_peers() if peers is None else peers
    if not peers or not location_ids:
        return []
    outbox, location, party = OutboxEntry._meta.db_table, Location._meta.db_table, PeerParty._meta.db_table
    cpo = Location._meta.get_field("cpo").related_model._meta.db_table
    location_marks, peer_marks = ", ".join(["%s"] * len(location_ids)), ", ".join(["%s"] * len(peers))
    sql = (
        f"INSERT INTO {outbox} (peer_id, module, country_code, party_id, object_id, object_pk, date_created, "
        f"attempts, last_error) "
        f"SELECT p.id, 'locations', c.country_code, c.party_id, l.ocpi_id, l.id, %s, 0, '' "
        f"FROM {location} l JOIN {cpo} c ON c.id = l.cpo_id, {Peer._meta.db_table} p "
        f"WHERE l.id IN ({location_marks}) AND (l.moderation = %s OR %s) AND p.id IN ({peer_marks}) "
        f"AND NOT EXISTS (SELECT 1 FROM {party} pp WHERE pp.peer_id = p.id AND pp.cpo_id = l.cpo_id) "
        f"ORDER BY l.id, p.id RETURNING peer_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [timezone.now(), *location_ids, Moderation.PUBLISHED, withdrawn,
                             *[peer.pk for peer in peers]])
        return sorted({row[0] for row in cursor.fetchall()})


def _outbox_write_and_kick(location_ids: list[int], withdrawn: bool = False) -> None:
    try:
        for peer_id in outbox_write(location_ids=location_ids, withdrawn=withdrawn):
            push_kick(peer_id=peer_id)
    except Exception:
        logger.exception("Outbox entries for %s locations could not be written", len(location_ids))


def on_locations_changed(sender, location_ids: list[int], **kwargs) -> None:
    """Receiver of `locations.signals.locations_changed`, sent once per write batch (up to 500 locations),
    so a batch's entries are one statement. A failure here must not break the write that sent it (it
    is already committed): it is logged, and the next change or a pull repairs it."""
    _outbox_write_and_kick(location_ids)


def on_locations_withdrawn(sender, location_ids: list[int], **kwargs) -> None:
    """Receiver of `locations.signals.locations_withdrawn`: the hub took these out of publication."""
    _outbox_write_and_kick(location_ids, withdrawn=True)


# --- 2. kicking a peer's delivery ------------------------------------------------------------------------

def push_kick(*, peer_id: int) -> bool:
    """Enqueue a delivery for the peer after the current transaction commits, unless one is waiting."""
    if not cache.add(_kick_key(peer_id), 1, timeout=KICK_SECONDS):
        return False
    from ocpi.tasks import push_peer

    transaction.on_commit(lambda: push_peer.delay(peer_id))
    return True


def push_kick_taken(*, peer_id: int) -> None:
    """The waiting task has started: a change from now on needs a new one."""
    cache.delete(_kick_key(peer_id))


# --- 3. delivering ---------------------------------------------------------------------------------------

@dataclass
class PushResult:
    sent: int = 0  # PUT requests that succeeded
    delivered: int = 0  # entries marked delivered
    failed: str = ""  # the error that stopped the run
    busy: bool = False  # another delivery to this peer was running
    more: bool = False  # stopped by RUN_SECONDS with entries left
    errors: list[str] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    return min(BACKOFF_CAP, BACKOFF_FIRST * (2 ** max(0, attempts - 1)))


def _pending(peer: Peer):
    return OutboxEntry.objects.filter(peer=peer, delivered_at__isnull=True, parked_at__isnull=True).order_by("id")


def head_due(*, peer: Peer, now=None) -> bool:
    """Whether the peer's oldest pending entry may be tried now (later ones wait behind it)."""
    head = _pending(peer).values_list("id", "next_attempt_at").first()
    if head is None:
        return False
    return head[1] is None or head[1] <= (now or timezone.now())


def _to_party(peer: Peer) -> tuple[str, str] | None:
    parties = list(peer.parties.values_list("role", "country_code", "party_id"))
    for role, country_code, party_id in parties:
        if role.upper() != "CPO":
            return country_code, party_id
    return (parties[0][1], parties[0][2]) if parties else None


def peer_push(*, peer: Peer) -> PushResult:
    """Deliver the peer's pending entries in order, until none is left, one fails, or RUN_SECONDS pass."""
    result = PushResult()
    owner = uuid.uuid4().hex
    if not cache.add(_lock_key(peer.pk), owner, timeout=LOCK_SECONDS):
        result.busy = True
        return result
    try:
        _deliver(peer, result)
    finally:
        if cache.get(_lock_key(peer.pk)) == owner:
            cache.delete(_lock_key(peer.pk))
    # A kick that found the lock taken left its entries to us; they may have come after our last read.
    if not result.failed and head_due(peer=peer):
        result.more = True
        push_kick(peer_id=peer.pk)
    return result


def _deliver(peer: Peer, result: PushResult) -> None:
    url = receiver_url(peer)
    if peer.state != Peer.State.CONNECTED or not url:
        result.failed = "the peer is not connected or has no locations receiver"
        return
    client = OcpiClient(token=secret_decrypt(peer.token_out), version=peer.version, to_party=_to_party(peer))
    started = time.monotonic()
    while time.monotonic() - started < RUN_SECONDS:
        entries = list(_pending(peer).values_list("id", "object_pk", "next_attempt_at")[:BATCH])
        if not entries:
            return
        now = timezone.now()
        if entries[0][2] is not None and entries[0][2] > now:
            return  # the head waits for its backoff; everything behind it waits too
        # Locations in the order of their first pending entry; an entry's own id decides what it covers.
        order: dict[int, list[int]] = {}
        for entry_id, location_id, _ in entries:
            order.setdefault(location_id, []).append(entry_id)
        locations = {loc.pk: loc for loc in selectors.locations_ocpi(
            published_only=True, publish_flag_only=peer.version == V211).filter(pk__in=list(order))}
        gone = [location_id for location_id in order if location_id not in locations]
        # Out of publication since: what the peer may have is withdrawn (so loaded whatever its state).
        withdrawn = {loc.pk: loc for loc in selectors.locations_ocpi(published_only=False).filter(pk__in=gone)
                     } if gone else {}
        for location_id, entry_ids in order.items():
            location = locations.get(location_id)
            if location is None and location_id not in withdrawn:
                _mark_delivered(entry_ids, error="deleted: not sent")
                result.delivered += len(entry_ids)
                continue
            error = _put(client, url, location or withdrawn[location_id], peer.version, withdrawn=location is None)
            if error:
                _mark_failed(entry_ids, error)
                result.failed = error
                return
            _mark_delivered(entry_ids)
            result.sent += 1
            result.delivered += len(entry_ids)
    result.more = True


def _put(client: OcpiClient, url: str, location: Location, version: str, *, withdrawn: bool = False) -> str:
    """'' when the peer accepted the location, else why not. A withdrawn location goes with every EVSE
    REMOVED: OCPI has no DELETE of a location (mod_locations, Flow and Lifecycle)."""
    from ocpi.modules.locations import location_ocpi, location_withdrawn_ocpi

    target = f"{url.rstrip('/')}/{location.cpo.country_code}/{location.cpo.party_id}/{location.ocpi_id}"
    try:
        data = (location_withdrawn_ocpi if withdrawn else location_ocpi)(location, version=version)
        reply = client.put(target, data)
    except PeerError as exc:
        return str(exc)[:500]
    except Exception as exc:  # a bug of ours must not lose the entry either
        logger.exception("Push of location %s to %s failed", location.pk, url)
        return f"{type(exc).__name__}: {exc}"[:500]
    if reply.ok:
        return ""
    return f"PUT {target}: HTTP {reply.http_status}, status_code {reply.status_code}: {reply.status_message}"[:500]


def _mark_delivered(entry_ids: list[int], *, error: str = "") -> None:
    OutboxEntry.objects.filter(pk__in=entry_ids).update(delivered_at=timezone.now(), last_error=error)


def _mark_failed(entry_ids: list[int], error: str) -> None:
    attempts = max(OutboxEntry.objects.filter(pk__in=entry_ids).values_list("attempts", flat=True)) + 1
    OutboxEntry.objects.filter(pk__in=entry_ids).update(
        attempts=attempts, next_attempt_at=timezone.now() + backoff(attempts), last_error=error)
    logger.warning("OCPI push stopped (attempt %s, retried in %s): %s", attempts, backoff(attempts), error)


# --- 4. the periodic re-kick ----------------------------------------------------------------------------

def push_due() -> list[int]:
    """Kick every connected peer whose oldest pending entry is due; drop long-delivered entries."""
    OutboxEntry.objects.filter(delivered_at__lt=timezone.now() - KEEP_DELIVERED).delete()
    peer_ids = set(OutboxEntry.objects.filter(delivered_at__isnull=True).values_list("peer_id", flat=True).distinct())
    kicked = []
    for peer in Peer.objects.filter(pk__in=peer_ids, state=Peer.State.CONNECTED):
        if head_due(peer=peer):
            # A kick flag left by a task that never ran (worker killed) must not block the retry.
            push_kick_taken(peer_id=peer.pk)
            if push_kick(peer_id=peer.pk):
                kicked.append(peer.pk)
    return kicked

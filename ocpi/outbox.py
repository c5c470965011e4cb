"""The outbox: every change a connected peer must hear of, whatever its OCPI module (ocpi.registry).

1. Writing. A domain app sends a signal inside the transaction that makes the change; `ocpi`'s receiver
   writes the entries in that same transaction (the Locations module with its own INSERT ... SELECT,
   `ocpi.modules.locations.push`; any other module through `outbox_announce`). A failure to write them
   fails the change: none committed goes unannounced. The peers are kicked when the transaction commits.
2. Kicking: `push_kick` enqueues `ocpi.push_peer` after the commit, at most one waiting task per peer (a
   flag in the shared cache, cleared when the task starts), so an import of 25,000 locations makes a
   handful of tasks, not 25,000.
3. Delivering (`peer_push`): one delivery at a time per peer (a lock in the shared cache) walks the peer's
   pending entries in id order, grouped per object `(module, country_code, party_id, object_id)`: each
   object goes out once, as it is now, through its module's `send`. OCPI's order matters per object:
   - accepted: its entries are delivered;
   - refused for good (HTTP 4xx other than 401/408/429, or an OCPI 2xxx): its entries are parked with the
     reason, and the run goes on with the next objects; the next change of that object is a new entry
     and is tried again;
   - a transient failure (network, timeout, 5xx, 401/408/429, OCPI 3xxx, a bug of ours): its entries back
     off (30 s doubling, capped at an hour) and the run stops, the peer being likely down: later entries
     wait, so a peer never sees an older state after a newer one, and nothing is lost.
4. `push_due` (beat, every minute) kicks the peers whose oldest pending entry is due again, and drops
   entries delivered over 7 days ago and parked over 30 days ago.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.cache import cache
from django.db import connections, router, transaction
from django.utils import timezone

from locations.tokens import secret_decrypt
from ocpi import registry
from ocpi.client import OcpiClient, PeerError, Reply
from ocpi.models import OutboxEntry, Peer

logger = logging.getLogger(__name__)

BATCH = 200  # entries read at once; their objects are loaded per module in one go
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
LOCK_SECONDS = 15 * 60  # longer than one run may take (RUN_SECONDS plus one slow request)
RUN_SECONDS = 5 * 60  # a run hands over to a fresh task after this, so a busy peer does not hog a worker
KICK_SECONDS = 10 * 60  # a lost task (worker killed) blocks kicks at most this long; push_due covers it
KEEP_DELIVERED = timedelta(days=7)
KEEP_PARKED = timedelta(days=30)
TRANSIENT_HTTP = {401, 408, 429}  # a 4xx that may pass on a later try (token rotated, timeout, rate limit)


class Refused(str):
    """Why a peer refused an object for good: its entries are parked, the peer's other objects flow on."""


def _lock_key(peer_id: int) -> str:
    return f"ocpi:push:lock:{peer_id}"


def _kick_key(peer_id: int) -> str:
    return f"ocpi:push:kick:{peer_id}"


# --- 1. writing the outbox ---------------------------------------------------------------------------------

def connected_peers() -> list[Peer]:
    """The connected peers, with the fields a module's `receiver_url` reads.

    Read after every write, so in plain SQL: through the ORM, building the query cost the writing process
    three times what the database spent on it. Not cached per process: a peer connected through another
    process would miss changes until the cache expired, and a shared version check (Redis) costs as much."""
    alias = router.db_for_read(Peer)
    db = connections[alias]
    qn = db.ops.quote_name
    # In the model's field order: what Model.from_db expects of a partial row.
    fields = [f for f in Peer._meta.concrete_fields if f.name in ("id", "version", "endpoints", "roles", "v211_role")]
    sql = (f"SELECT {', '.join(qn(f.column) for f in fields)} FROM {qn(Peer._meta.db_table)} "
           f"WHERE {qn(Peer._meta.get_field('state').column)} = %s")
    with db.cursor() as cursor:
        cursor.execute(sql, [Peer.State.CONNECTED])
        rows = cursor.fetchall()
    names = [f.attname for f in fields]
    converters = [getattr(f, "from_db_value", None) for f in fields]
    return [Peer.from_db(alias, names, [convert(value, None, db) if convert else value
                                        for convert, value in zip(converters, row)])
            for row in rows]


def receiving_peers(*, module: str) -> list[Peer]:
    """The connected peers that receive the module's objects (its `receiver_url` is set)."""
    spec = registry.module_get(module)
    if spec is None:
        raise ValueError(f"no OCPI module {module!r} is registered")
    return [peer for peer in connected_peers() if spec.receiver_url(peer)]


def outbox_announce(*, module: str, keys: list[tuple[str, str, str, int | None]],
                    peers: list[Peer] | None = None) -> list[int]:
    """Announce changed objects of `module`, each `(country_code, party_id, object_id, object_pk)`, to every
    connected peer whose `receiver_url` for the module is set (or to those of `peers` that have one): one
    INSERT for all, in the caller's transaction if there is one, and a kick of each peer after the commit.
    Returns the ids of the peers written for."""
    spec = registry.module_get(module)
    if spec is None:
        raise ValueError(f"no OCPI module {module!r} is registered")
    for country_code, party_id, object_id, _ in keys:
        if not (0 < len(country_code) <= 2 and 0 < len(party_id) <= 3 and 0 < len(object_id) <= 64):
            raise ValueError(f"not an OCPI object key: {(country_code, party_id, object_id)!r}")
    peers = receiving_peers(module=module) if peers is None else [p for p in peers if spec.receiver_url(p)]
    if not peers or not keys:
        return []
    now = timezone.now()
    OutboxEntry.objects.bulk_create([
        OutboxEntry(peer_id=peer.pk, module=module, country_code=country_code, party_id=party_id,
                    object_id=object_id, object_pk=object_pk, date_created=now)
        for country_code, party_id, object_id, object_pk in keys for peer in peers])
    peer_ids = sorted({peer.pk for peer in peers})
    push_kick(peer_ids=peer_ids)
    return peer_ids


# --- 2. kicking a peer's delivery ------------------------------------------------------------------------

def push_kick(*, peer_ids: list[int]) -> None:
    """Enqueue a delivery for each peer once the current transaction commits (at once outside one); none
    for a change rolled back, whose kick flag would otherwise block the peer's kicks for KICK_SECONDS."""
    ids = list(peer_ids)
    if ids:
        transaction.on_commit(lambda: [kick_now(peer_id=peer_id) for peer_id in ids])


def kick_now(*, peer_id: int) -> bool:
    """Enqueue a delivery for the peer now, unless one is waiting already; whether one was enqueued."""
    if not cache.add(_kick_key(peer_id), 1, timeout=KICK_SECONDS):
        return False
    from ocpi.tasks import push_peer

    push_peer.delay(peer_id)
    return True


def push_kick_taken(*, peer_id: int) -> None:
    """The waiting task has started: a change from now on needs a new one."""
    cache.delete(_kick_key(peer_id))


# --- 3. delivering ---------------------------------------------------------------------------------------

@dataclass
class PushResult:
    sent: int = 0  # objects the peer accepted
    delivered: int = 0  # entries marked delivered
    parked: int = 0  # entries parked: the peer refused their object for good
    failed: str = ""  # the transient error that stopped the run
    busy: bool = False  # another delivery to this peer was running
    more: bool = False  # stopped by RUN_SECONDS with entries left
    errors: list[str] = field(default_factory=list)  # the refusals of this run


def backoff(attempts: int) -> timedelta:
    return min(BACKOFF_CAP, BACKOFF_FIRST * (2 ** max(0, attempts - 1)))


def pending(peer: Peer):
    return OutboxEntry.objects.filter(peer=peer, delivered_at__isnull=True, parked_at__isnull=True).order_by("id")


def head_due(*, peer: Peer, now=None) -> bool:
    """Whether the peer's oldest pending entry may be tried now (later ones wait behind it)."""
    head = pending(peer).values_list("id", "next_attempt_at").first()
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
    """Deliver the peer's pending entries, until none is left, one fails transiently, or RUN_SECONDS pass."""
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
        kick_now(peer_id=peer.pk)
    return result


def _deliver(peer: Peer, result: PushResult) -> None:
    if peer.state != Peer.State.CONNECTED:
        result.failed = "the peer is not connected"
        return
    client = OcpiClient(token=secret_decrypt(peer.token_out), version=peer.version, to_party=_to_party(peer))
    started = time.monotonic()
    while time.monotonic() - started < RUN_SECONDS:
        entries = list(pending(peer).only("id", "module", "country_code", "party_id", "object_id", "object_pk",
                                          "attempts", "next_attempt_at")[:BATCH])
        if not entries:
            return
        if entries[0].next_attempt_at is not None and entries[0].next_attempt_at > timezone.now():
            return  # the head waits for its backoff; everything behind it waits too
        # Objects in the order of their first pending entry; an entry's own id decides what it covers.
        objects: dict[tuple, list[OutboxEntry]] = {}
        for entry in entries:
            objects.setdefault((entry.module, entry.country_code, entry.party_id, entry.object_id), []).append(entry)
        loaded = _load(peer, [group[0] for group in objects.values()])
        for (module, *_), group in objects.items():
            if not _deliver_object(client, peer, registry.module_get(module), group, loaded.get(module, {}), result):
                return
    result.more = True


def _load(peer: Peer, heads: list[OutboxEntry]) -> dict[str, dict]:
    by_module: dict[str, list[OutboxEntry]] = {}
    for entry in heads:
        by_module.setdefault(entry.module, []).append(entry)
    loaded = {}
    for module, entries in by_module.items():
        spec = registry.module_get(module)
        loaded[module] = spec.load(entries, peer) if spec is not None else {}
    return loaded


def _deliver_object(client: OcpiClient, peer: Peer, spec: registry.Module | None, group: list[OutboxEntry],
                    objects: dict, result: PushResult) -> bool:
    """Deliver one object's entries; False when a transient failure stops the run."""
    head = group[0]
    ids = [entry.pk for entry in group]
    url = spec.receiver_url(peer) if spec is not None else None
    if url is None:
        _park(ids, Refused(f"{head.module}: not a module this peer receives (or none registered)"), result)
        return True
    obj = objects.get(head.object_pk if head.object_pk is not None else entry_key(head))
    if obj is None:
        _mark_delivered(ids, error="deleted: not sent")
        result.delivered += len(ids)
        return True
    try:
        error = spec.send(client, url, head, obj, peer)
    except Exception as exc:  # a bug of ours must not lose the entry either
        logger.exception("Push of %s %s*%s %s to peer %s failed", head.module, head.country_code, head.party_id,
                         head.object_id, peer.pk)
        error = f"{type(exc).__name__}: {exc}"[:500]
    if not error:
        _mark_delivered(ids)
        result.sent += 1
        result.delivered += len(ids)
        return True
    if isinstance(error, Refused):
        _park(ids, error, result)
        return True
    _mark_failed(group, error)
    result.failed = error
    return False


def entry_key(entry: OutboxEntry) -> tuple[str, str, str]:
    return entry.country_code, entry.party_id, entry.object_id



def object_put(client: OcpiClient, target: str, data, **request) -> str:
    """PUT an object to a peer and classify the answer: "" accepted, `Refused` for good, else transient.
    `request`: passed to OcpiClient.request (`routed=False` for a configuration module such as
    HubClientInfo, which carries no routing headers: transport_and_format, Message Routing)."""
    try:
        reply = client.put(target, data, **request)
    except PeerError as exc:
        status = getattr(exc, "http_status", None)
        return (Refused if _permanent_http(status) else str)(str(exc)[:500])
    return reply_outcome(f"PUT {target}", reply)


def reply_outcome(what: str, reply: Reply) -> str:
    """"" when the peer accepted, `Refused` when it refused for good, else the transient error."""
    if reply.ok:
        return ""
    error = f"{what}: HTTP {reply.http_status}, status_code {reply.status_code}: {reply.status_message}"[:500]
    if _permanent_http(reply.http_status) or (
            200 <= reply.http_status < 300 and reply.status_code is not None and 2000 <= reply.status_code < 3000):
        return Refused(error)
    return error


def _permanent_http(status: int | None) -> bool:
    return status is not None and 400 <= status < 500 and status not in TRANSIENT_HTTP


def _mark_delivered(entry_ids: list[int], *, error: str = "") -> None:
    OutboxEntry.objects.filter(pk__in=entry_ids).update(delivered_at=timezone.now(), last_error=error)


def _park(entry_ids: list[int], reason: str, result: PushResult) -> None:
    OutboxEntry.objects.filter(pk__in=entry_ids).update(parked_at=timezone.now(), last_error=reason[:500])
    result.parked += len(entry_ids)
    result.errors.append(str(reason))
    logger.warning("OCPI push: refused for good, %s entries parked (the peer's other objects go on): %s",
                   len(entry_ids), reason)


def _mark_failed(group: list[OutboxEntry], error: str) -> None:
    attempts = max(entry.attempts for entry in group) + 1
    OutboxEntry.objects.filter(pk__in=[entry.pk for entry in group]).update(
        attempts=attempts, next_attempt_at=timezone.now() + backoff(attempts), last_error=error[:500])
    logger.warning("OCPI push stopped (attempt %s, retried in %s): %s", attempts, backoff(attempts), error)


# --- 4. the periodic re-kick, and the operator's retry ----------------------------------------------------

def push_due() -> list[int]:
    """Kick every connected peer whose oldest pending entry is due; drop long-delivered and long-parked ones."""
    now = timezone.now()
    OutboxEntry.objects.filter(delivered_at__lt=now - KEEP_DELIVERED).delete()
    OutboxEntry.objects.filter(parked_at__lt=now - KEEP_PARKED).delete()
    peer_ids = set(pending_peer_ids())
    kicked = []
    for peer in Peer.objects.filter(pk__in=peer_ids, state=Peer.State.CONNECTED):
        if head_due(peer=peer):
            # A kick flag left by a task that never ran (worker killed) must not block the retry.
            push_kick_taken(peer_id=peer.pk)
            if kick_now(peer_id=peer.pk):
                kicked.append(peer.pk)
    return kicked


def pending_peer_ids() -> list[int]:
    return list(OutboxEntry.objects.filter(delivered_at__isnull=True, parked_at__isnull=True)
                .values_list("peer_id", flat=True).distinct())


def parked_retry(*, entries) -> int:
    """Put parked entries back in line (the operator's retry), and kick their peers; how many."""
    entries = entries.filter(parked_at__isnull=False, delivered_at__isnull=True)
    peer_ids = sorted(set(entries.values_list("peer_id", flat=True)))
    count = entries.update(parked_at=None, next_attempt_at=None)
    push_kick(peer_ids=peer_ids)
    return count

"""Pull: a connected peer's objects of one module (ocpi.registry; Locations today), read page by page from the
module's SENDER endpoint (its `sender_url`), each page handed to the module's `pull_writer`.

The first pull of a peer is full; later ones ask `date_from=<start of the last complete pull>`. Pages
are followed by their `Link: <...>; rel="next"` (through OcpiClient, so a peer's Link cannot point us at
our own network). The Locations module's writer (ocpi.pull_writer) stores each page through
`locations.services.location_upsert_many`, grouped per party, only for the peer's CPO parties (PeerParty
with a catalogue tenant); any other location is counted as rejected with the reason, like a location that
breaks OCPI's rules: one bad location never aborts the pull. A pull that does not complete (the peer
fails mid-way) keeps `last_pull_at`, so the next one asks again from the same point.

The next page is fetched while the current one is written (one thread fetches), and batches are
written by the processes of ocpi.pull_writer (on PostgreSQL, outside a transaction), while the next
pages arrive: a pull takes about max(peer time, write time) per page rather than their sum.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import requests
from django.core.cache import cache
from django.utils import timezone

from locations.memory import gc_paused
from locations.tokens import secret_decrypt
from ocpi import registry
from ocpi.client import OcpiClient
from ocpi.models import Peer
from ocpi.pull_writer import Tally
from ocpi.transport import ocpi_timestamp

logger = logging.getLogger(__name__)

PREFETCH_PAGES = 2
# Asked of the sender with the first page (it caps the limit at its own maximum, OCPI's X-Limit, and its
# Links carry the limit it chose): fewer, bigger pages where the peer allows them.
PAGE_LIMIT = 1000
MAX_PAGES = 1_000_000
LOCK_SECONDS = 2 * 60 * 60  # a pull killed mid-way blocks the next ones at most this long
DEFAULT_MODULE = "locations"  # the only module pulled today (last_pull_at is its mark)


class PullError(Exception):
    """The pull could not complete (the peer failed, answered nonsense, or another pull is running)."""


@dataclass
class PullSummary:
    peer: str
    full: bool
    started_at: datetime
    date_from: datetime | None = None
    total: int | None = None  # X-Total-Count of the first page
    pages: int = 0
    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    completed: bool = False
    error: str = ""

    def add(self, tally: Tally) -> None:
        self.created += tally.created
        self.updated += tally.updated
        self.unchanged += tally.unchanged
        self.rejected += sum(tally.reasons.values())
        self.reasons.update(tally.reasons)

    def top_reasons(self, count: int = 5) -> list[tuple[str, int]]:
        return self.reasons.most_common(count)

    def as_dict(self) -> dict:
        return {"peer": self.peer, "full": self.full, "completed": self.completed, "pages": self.pages,
                "total": self.total, "received": self.received, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "rejected": self.rejected, "top_reasons": self.top_reasons(),
                "error": self.error}


def _module(identifier: str) -> registry.Module:
    module = registry.module_get(identifier)
    if module is None or not (module.sender_url and module.pull_writer):
        raise PullError(f"{identifier} is not a module we pull")
    return module


def sender_url(peer: Peer, module: str = DEFAULT_MODULE) -> str | None:
    """The peer's SENDER endpoint of the module (the module decides, 2.1.1's endpoints having no role)."""
    return _module(module).sender_url(peer)


def pullable_peers(module: str = DEFAULT_MODULE):
    return [peer for peer in Peer.objects.filter(state=Peer.State.CONNECTED) if sender_url(peer, module)]


def _header(headers: dict, name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def next_link(headers: dict) -> str | None:
    link = _header(headers, "Link")
    if not link:
        return None
    for item in requests.utils.parse_header_links(link):
        if str(item.get("rel", "")).lower() == "next" and item.get("url"):
            return item["url"]
    return None


def _to_party(peer: Peer) -> tuple[str, str] | None:
    """Whom a GET All addresses (transport_and_format, GET All via Hubs): a hub's own party, so that it
    combines every party behind it; a platform's only CPO party; of several CPO parties, the platform's own
    (the one it also has another role for), whose answer covers all of them; else nobody (open routing).
    Addressing the first CPO party of several would get that party's objects only."""
    parties = list(peer.parties.filter(via_hub=False).values_list("role", "country_code", "party_id"))
    hub = [(cc, pid) for role, cc, pid in parties if role.upper() == "HUB"]
    if hub:
        return hub[0]
    cpos = [(cc, pid) for role, cc, pid in parties if role.upper() == "CPO"]
    if len(cpos) == 1:
        return cpos[0]
    own = [party for party in cpos if any((cc, pid) == party for role, cc, pid in parties if role.upper() != "CPO")]
    return own[0] if own else None


def _fetch_pages(client: OcpiClient, url: str, params: dict, pages: queue.Queue, stop: threading.Event) -> None:
    """Producer thread: each page's (reply, None) in order, then (None, None); or (None, error)."""
    seen = set()
    try:
        count = 0
        while url and not stop.is_set():
            reply = client.get(url, params=params)
            params = None  # the Link carries the query of the next page
            if not reply.ok:
                raise PullError(f"GET {url}: HTTP {reply.http_status}, status_code {reply.status_code}: "
                                f"{reply.status_message}"[:500])
            if not isinstance(reply.data, list):
                raise PullError(f"GET {url}: data is not a list of objects")
            seen.add(url)
            count += 1
            following = next_link(reply.headers)
            if following in seen or count >= MAX_PAGES or not reply.data:
                following = None  # a sender that loops, or pages on with nothing in them
            while not stop.is_set():
                try:
                    pages.put((reply, None), timeout=0.5)
                    break
                except queue.Full:
                    continue
            url = following
        pages.put((None, None))
    except Exception as exc:  # PeerError, PullError, a bug: handed to the pulling thread
        pages.put((None, exc))


def peer_pull(*, peer: Peer, full: bool = False, progress: Callable[[int | None, int], None] | None = None,
              module: str = DEFAULT_MODULE) -> PullSummary:
    """Pull the peer's objects of the module; raises PullError (with the summary so far in `.summary`) when
    incomplete."""
    started = timezone.now()
    full = full or peer.last_pull_at is None
    summary = PullSummary(peer=peer.name, full=full, started_at=started,
                          date_from=None if full else peer.last_pull_at)
    spec = _module(module)
    url = spec.sender_url(peer)
    if peer.state != Peer.State.CONNECTED or not url:
        raise PullError(f"{peer.name} is not connected or has no {module} sender")
    lock = f"ocpi:pull:lock:{peer.pk}" if module == DEFAULT_MODULE else f"ocpi:pull:lock:{peer.pk}:{module}"
    if not cache.add(lock, 1, timeout=LOCK_SECONDS):
        raise PullError(f"a pull of {peer.name} is running already")
    try:
        with gc_paused():  # for the whole pull: resumed per batch, the collector walked each batch's results
            _pull(peer, url, summary, progress, spec.pull_writer(peer))
    except Exception as exc:
        summary.error = str(exc)[:500] or type(exc).__name__
        error = exc if isinstance(exc, PullError) else PullError(summary.error)
        error.summary = summary
        raise error from exc
    finally:
        cache.delete(lock)
    Peer.objects.filter(pk=peer.pk).update(last_pull_at=started)
    peer.last_pull_at = started
    summary.completed = True
    return summary


def _pull(peer: Peer, url: str, summary: PullSummary, progress, writer) -> None:
    client = OcpiClient(token=secret_decrypt(peer.token_out), version=peer.version, to_party=_to_party(peer))
    params = {"date_from": ocpi_timestamp(summary.date_from)} if summary.date_from else {}
    params["limit"] = PAGE_LIMIT
    writer.start()  # before the fetching thread: a fork copies only the calling thread
    pages: queue.Queue = queue.Queue(maxsize=PREFETCH_PAGES)
    stop = threading.Event()
    fetcher = threading.Thread(target=_fetch_pages, args=(client, url, params, pages, stop), daemon=True,
                               name=f"ocpi-pull-{peer.pk}")
    fetcher.start()
    try:
        while True:
            reply, error = pages.get()
            if error is not None:
                writer.flush()  # what arrived is good; only last_pull_at waits for a complete pull
                writer.close()
                raise error
            if reply is None:
                break
            if summary.total is None:
                total = _header(reply.headers, "X-Total-Count")
                summary.total = int(total) if total and total.isdigit() else None
            summary.pages += 1
            summary.received += len(reply.data)
            writer.add(reply.data)
            if progress:
                progress(summary.total, summary.received)
        writer.flush()
        writer.close()
    finally:
        stop.set()
        writer.close(raising=False)  # after an error: the batches handed over are still written
        fetcher.join(timeout=60)
        summary.add(writer.tally)


def pull_due() -> list[int]:
    """The connected peers with a locations sender, whose pull the periodic task enqueues."""
    return [peer.pk for peer in pullable_peers(DEFAULT_MODULE)]

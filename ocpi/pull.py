"""Pull: a connected CPO's locations, read page by page from its locations SENDER (mod_locations, GET list).

The first pull of a peer is full; later ones ask `date_from=<start of the last complete pull>`. Pages
are followed by their `Link: <...>; rel="next"` (through OcpiClient, so a peer's Link cannot point us at
our own network), and each page is written through `locations.services.location_upsert_many`,
grouped per party. Only the parties that are the peer's CPO parties (PeerParty with a catalogue tenant)
are written; any other location is counted as rejected with the reason, like a location that breaks
OCPI's rules: one bad location never aborts the pull. A pull that does not complete (the peer fails
mid-way) keeps `last_pull_at`, so the next one asks again from the same point.

The next page is fetched while the current one is written (one thread fetches), and batches are
written by WRITE_THREADS threads, each with its own database connection and transaction: while some wait
for PostgreSQL, another validates. A pull takes about max(peer time, write time) per page rather than their
sum. Called inside a transaction (a test's, a caller's atomic block), batches are written in the caller's
thread instead, so that they stay in that transaction.
"""

from __future__ import annotations

import gc
import logging
import queue
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import requests
from django.core.cache import cache
from django.db import connection, connections
from django.utils import timezone

from locations import services
from locations.memory import gc_paused
from locations.models import Cpo
from locations.tokens import secret_decrypt
from locations.validation import InvalidPayload
from ocpi.client import OcpiClient
from ocpi.models import Peer
from ocpi.transport import V211, ocpi_timestamp

logger = logging.getLogger(__name__)

WRITE_BATCH = 500  # locations per location_upsert_many call (pages are buffered up to this)
COLLECT_EVERY = 20  # batches between two garbage collections while the collector is paused for a pull
WRITE_THREADS = 3  # batches written at once: two wait for the database while one validates (2: -5% in the bench)
PREFETCH_PAGES = 2
# Asked of the sender with the first page (it caps the limit at its own maximum, OCPI's X-Limit, and its
# Links carry the limit it chose): fewer, bigger pages where the peer allows them.
PAGE_LIMIT = 1000
MAX_PAGES = 1_000_000
LOCK_SECONDS = 2 * 60 * 60  # a pull killed mid-way blocks the next ones at most this long
SENDING_ROLES = {"CPO", "HUB"}
_INDEX = re.compile(r"\[\d+\]")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\d+(\.\d+)?")


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

    def top_reasons(self, count: int = 5) -> list[tuple[str, int]]:
        return self.reasons.most_common(count)

    def as_dict(self) -> dict:
        return {"peer": self.peer, "full": self.full, "completed": self.completed, "pages": self.pages,
                "total": self.total, "received": self.received, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "rejected": self.rejected, "top_reasons": self.top_reasons(),
                "error": self.error}


def sender_url(peer: Peer) -> str | None:
    """The peer's locations SENDER endpoint. A 2.1.1 endpoint (no role) sends when the peer is a CPO."""
    urls = peer.endpoints.get("locations") or {}
    if urls.get("SENDER"):
        return urls["SENDER"]
    if urls.get("ANY"):
        roles = {str(role.get("role", "")).upper() for role in peer.roles or [] if isinstance(role, dict)}
        if not roles or roles & SENDING_ROLES:
            return urls["ANY"]
    return None


def pullable_peers():
    return [peer for peer in Peer.objects.filter(state=Peer.State.CONNECTED) if sender_url(peer)]


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


def _reason(path: str, reason: str) -> str:
    # Values make every reason unique; the summary counts kinds of errors.
    return f"{_INDEX.sub('[]', path)}: {_QUOTED.sub('…', reason)}"[:200]


class _Writer:
    """Buffers a pull's locations per party and writes them in batches, counting the outcomes."""

    def __init__(self, peer: Peer, summary: PullSummary):
        self.summary, self.version = summary, peer.version
        self.counting = threading.Lock()
        self.jobs: queue.Queue | None = None
        self.threads: list[threading.Thread] = []
        self.failure: BaseException | None = None
        self.batches = 0
        self.parties: dict[tuple[str, str], Cpo] = {
            (party.country_code.upper(), party.party_id.upper()): party.cpo
            for party in peer.parties.select_related("cpo") if party.cpo_id and party.role.upper() == "CPO"}
        # 2.1.1 locations carry no party: they belong to the peer's only CPO party.
        self.only_party = next(iter(self.parties.values())) if len(self.parties) == 1 else None
        self.buffers: dict[int, tuple[Cpo, list[dict]]] = {}

    def add(self, items: list) -> None:
        for item in items:
            cpo = self._party_of(item)
            if cpo is None:
                continue
            buffer = self.buffers.setdefault(cpo.pk, (cpo, []))[1]
            buffer.append(item)
            if len(buffer) >= WRITE_BATCH:
                self.flush(cpo.pk)

    def _party_of(self, item) -> Cpo | None:
        if not isinstance(item, dict):
            self._reject("location: must be a JSON object")
            return None
        if self.version == V211 and "country_code" not in item:
            if self.only_party is None:
                self._reject("party: a 2.1.1 location names no party and the peer has several (or no) CPO parties")
            return self.only_party
        key = (str(item.get("country_code") or "").upper(), str(item.get("party_id") or "").upper())
        cpo = self.parties.get(key)
        if cpo is None:
            self._reject(f"party {key[0]}*{key[1]} is not a CPO party of this peer")
        return cpo

    def _reject(self, reason: str) -> None:
        self.summary.rejected += 1
        self.summary.reasons[reason] += 1

    def flush(self, cpo_id: int | None = None) -> None:
        for key in [cpo_id] if cpo_id is not None else list(self.buffers):
            cpo, items = self.buffers.pop(key, (None, []))
            if items:
                self._submit(cpo, items)

    def _submit(self, cpo: Cpo, items: list[dict]) -> None:
        if self.failure is not None:
            raise self.failure
        if connection.in_atomic_block:
            self._write(cpo, items)  # in the caller's transaction, which other threads cannot see
            return
        if self.jobs is None:
            self.jobs = queue.Queue(maxsize=WRITE_THREADS)  # a full queue holds the reader back
            self.threads = [threading.Thread(target=self._work, daemon=True, name=f"ocpi-pull-write-{i}")
                            for i in range(WRITE_THREADS)]
            for thread in self.threads:
                thread.start()
        self.jobs.put((cpo, items))

    def _work(self) -> None:
        try:
            while (job := self.jobs.get()) is not None:
                if self.failure is None:
                    try:
                        self._write(*job)
                    except BaseException as exc:  # the database is gone, a bug: the pull fails with it
                        self.failure = exc
        finally:
            connections.close_all()  # this thread's own connections

    def close(self, raising: bool = True) -> None:
        """Wait for every batch handed over; raises what made a batch fail beyond its locations."""
        if self.jobs is not None:
            for _ in self.threads:
                self.jobs.put(None)
            for thread in self.threads:
                thread.join()
            self.jobs, self.threads = None, []
        if raising and self.failure is not None:
            raise self.failure

    def _write(self, cpo: Cpo, items: list[dict]) -> None:
        try:
            results = services.location_upsert_many(cpo=cpo, items=items, version=self.version)
        except Exception:
            # A database error fails the whole batch: written one by one, only the culprit is lost.
            logger.exception("Pulled batch of %s locations failed; writing them one by one", len(items))
            results = []
            for item in items:
                try:
                    results += services.location_upsert_many(cpo=cpo, items=[item], version=self.version)
                except Exception as exc:
                    results.append(exc.with_traceback(None))
        with self.counting:
            self._count(results)
            self.batches += 1
            if self.batches % COLLECT_EVERY == 0:
                gc.collect()  # the collector is paused for the pull (peer_pull): what a cycle holds goes here

    def _count(self, results: list) -> None:
        for result in results:
            if isinstance(result, InvalidPayload):
                path, reason = next(iter(result.errors.items()), ("location", "invalid"))
                self._reject(_reason(path, reason))
            elif isinstance(result, Exception):
                self._reject(f"not stored: {type(result).__name__}")
            elif result.created:
                self.summary.created += 1
            elif result.changed:
                self.summary.updated += 1
            else:
                self.summary.unchanged += 1


def _to_party(peer: Peer) -> tuple[str, str] | None:
    for role, country_code, party_id in peer.parties.values_list("role", "country_code", "party_id"):
        if role.upper() == "CPO":
            return country_code, party_id
    return None


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
                raise PullError(f"GET {url}: data is not a list of locations")
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
    except Exception as exc:  # PeerError, PullError, a bug: handed to the writing thread
        pages.put((None, exc))


def peer_pull(*, peer: Peer, full: bool = False, progress: Callable[[int | None, int], None] | None = None
              ) -> PullSummary:
    """Pull the peer's locations; raises PullError (with the summary so far in `.summary`) when incomplete."""
    started = timezone.now()
    full = full or peer.last_pull_at is None
    summary = PullSummary(peer=peer.name, full=full, started_at=started,
                          date_from=None if full else peer.last_pull_at)
    url = sender_url(peer)
    if peer.state != Peer.State.CONNECTED or not url:
        raise PullError(f"{peer.name} is not connected or has no locations sender")
    lock = f"ocpi:pull:lock:{peer.pk}"
    if not cache.add(lock, 1, timeout=LOCK_SECONDS):
        raise PullError(f"a pull of {peer.name} is running already")
    try:
        with gc_paused():  # for the whole pull: resumed per batch, the collector walked each batch's results
            _pull(peer, url, summary, progress)
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


def _pull(peer: Peer, url: str, summary: PullSummary, progress) -> None:
    client = OcpiClient(token=secret_decrypt(peer.token_out), version=peer.version, to_party=_to_party(peer))
    params = {"date_from": ocpi_timestamp(summary.date_from)} if summary.date_from else {}
    params["limit"] = PAGE_LIMIT
    writer = _Writer(peer, summary)
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


def pull_due() -> list[int]:
    """The connected peers with a locations sender, whose pull the periodic task enqueues."""
    return [peer.pk for peer in pullable_peers()]

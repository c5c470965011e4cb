"""Writing a pull's locations: buffered per party, validated and stored in batches, outcomes counted.

On PostgreSQL, outside a transaction, batches are written by WRITE_PROCESSES processes forked at the
start of the pull (billiard, Celery's own fork of multiprocessing: it also works inside Celery's
prefork children, where the standard library refuses to start processes). Validating and building
500 locations is Python work; in threads of one process it was held to one core by the interpreter
lock while PostgreSQL and the peer shared the other. Each process has its own database connection and
transaction per batch; the pulling process parses the pages and hands each batch over (pickled).

Inside a transaction (a test's, a caller's atomic block), and on databases that take one writer at a
time (SQLite), batches are written in the caller's thread instead, in its transaction.

A batch whose write fails as a whole (a database error) is written again one location at a time, so
that only the culprit is lost. Anything else that fails a batch fails the pull.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import orjson
from django.db import connection, connections

from locations import services
from locations.models import Cpo
from locations.validation import InvalidPayload
from ocpi.status import V211

logger = logging.getLogger(__name__)

WRITE_BATCH = 500  # locations per location_upsert_many call (pages are buffered up to this)
# Processes writing at once: while one waits for PostgreSQL, the others validate. Three: with two, the
# machine idled while both waited (measured in bench/bench_ocpi_pull.py).
WRITE_PROCESSES = 3
COLLECT_EVERY = 20  # batches between two garbage collections while the collector is paused for a pull
POLL_SECONDS = 1.0  # how often a waiting pull checks that its writing processes are alive
_INDEX = re.compile(r"\[\d+\]")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\d+(\.\d+)?")


def _reason(path: str, reason: str) -> str:
    # Values make every reason unique; the summary counts kinds of errors.
    return f"{_INDEX.sub('[]', path)}: {_QUOTED.sub('…', reason)}"[:200]


@dataclass
class Tally:
    """The outcomes of written batches (what a writing process sends back)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    reasons: Counter = field(default_factory=Counter)  # rejected locations by kind of reason

    def count(self, results: list) -> "Tally":
        for result in results:
            if isinstance(result, InvalidPayload):
                path, reason = next(iter(result.errors.items()), ("location", "invalid"))
                self.reasons[_reason(path, reason)] += 1
            elif isinstance(result, Exception):
                self.reasons[f"not stored: {type(result).__name__}"] += 1
            elif result.created:
                self.created += 1
            elif result.changed:
                self.updated += 1
            else:
                self.unchanged += 1
        return self

    def add(self, other: "Tally") -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.reasons.update(other.reasons)


def write_batch(cpo: Cpo, items: list[dict], version: str) -> list:
    """One result per item (UpsertResult, InvalidPayload or the exception that kept it from being stored)."""
    try:
        return services.location_upsert_many(cpo=cpo, items=items, version=version)
    except Exception:
        # A database error fails the whole batch: written one by one, only the culprit is lost.
        logger.exception("Pulled batch of %s locations failed; writing them one by one", len(items))
        results = []
        for item in items:
            try:
                results += services.location_upsert_many(cpo=cpo, items=[item], version=version)
            except Exception as exc:
                results.append(exc.with_traceback(None))
        return results


def _write_process(jobs, results, stop, cpos: dict[int, Cpo], version: str, parent: int) -> None:
    """A writing process: (cpo id, items) from `jobs` until None; one message per job on `results`:
    ("ok", Tally), ("error", text) or ("skipped", None) once the pull has failed (`stop`)."""
    written = 0
    try:
        while (job := _next_job(jobs, parent)) is not None:
            if stop.is_set():
                results.put(("skipped", None))
                continue
            cpo_id, items = job
            try:
                items = _unpacked(items)
                # A party first seen after the fork (behind a hub: PullWriter.adopt) is read here.
                cpo = cpos.get(cpo_id) or Cpo.objects.get(pk=cpo_id)
                results.put(("ok", Tally().count(write_batch(cpo, items, version))))
            except BaseException as exc:  # the database is gone, a bug: the pull fails with it
                logger.exception("A writing process of a pull failed")
                results.put(("error", f"{type(exc).__name__}: {exc}"[:500]))
            written += 1
            if written % COLLECT_EVERY == 0:
                gc.collect(0)  # the collector is paused (inherited from the pull): see PullWriter._add
    finally:
        connections.close_all()  # this process's own connections, closed properly before it exits


def _next_job(jobs, parent: int):
    """The next job, or None at the end; None too when the pulling process is gone (killed: it never sends
    the end, and this process, which holds the queue's pipe open itself, would wait for ever)."""
    while True:
        try:
            return jobs.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if os.getppid() != parent:
                return None


# A batch crosses to its writing process as JSON (orjson) rather than pickled: its items are a page's JSON as
# OcpiClient parsed it (orjson: no tuples, no NaN or infinite floats), which orjson writes back and reads as
# they were, in about 9 us of CPU per location against pickle's 14.5 (5,000 pulled locations). Anything
# orjson would not write as it is (not from a JSON page) goes pickled as before.
_JSON = b"J"


def _packed(items: list[dict]):
    try:
        return _JSON + orjson.dumps(items, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
                                    | orjson.OPT_PASSTHROUGH_DATACLASS)
    except TypeError:  # orjson.JSONEncodeError is one
        return items


def _unpacked(packed) -> list[dict]:
    return orjson.loads(memoryview(packed)[1:]) if isinstance(packed, bytes) and packed[:1] == _JSON else packed


class WriterFailed(Exception):
    """A batch could not be written (not a location's fault): the pull fails with it."""


class PullWriter:
    """Buffers a pull's locations per party and writes them in batches, counting the outcomes into `tally`
    (with the locations refused here, before any batch: not objects, or of a party not the peer's)."""

    def __init__(self, parties: dict[tuple[str, str], Cpo], version: str,
                 adopt: Callable[[str, str], Cpo | None] | None = None):
        self.parties, self.version = parties, version
        # For a hub peer: the tenant of a party it did not name (country_code, party_id), or None.
        self.adopt = adopt
        # 2.1.1 locations carry no party: they belong to the peer's only CPO party.
        self.only_party = next(iter(parties.values())) if len(parties) == 1 else None
        self.buffers: dict[int, tuple[Cpo, list[dict]]] = {}
        self.tally = Tally()
        self.batches = 0
        self.failure: BaseException | None = None
        self.processes: list = []
        self.jobs = self.results = self.stop = None
        self.pending = 0  # jobs handed over whose message has not come back

    # --- the writing processes ---
    def start(self) -> None:
        """Fork the writing processes, if this pull writes outside a transaction on PostgreSQL. Called
        before the pull starts its page-fetching thread: a fork copies only the calling thread."""
        if connection.in_atomic_block or connection.vendor != "postgresql" or WRITE_PROCESSES < 1:
            return
        import billiard

        try:
            context = billiard.get_context("fork")
        except ValueError:  # no fork on this platform
            return
        connections.close_all()  # a child must not inherit (and share) this process's database sockets
        self.jobs, self.results, self.stop = context.Queue(maxsize=WRITE_PROCESSES), context.Queue(), context.Event()
        cpos = {cpo.pk: cpo for cpo in self.parties.values() if cpo is not None}
        for i in range(WRITE_PROCESSES):
            process = context.Process(target=_write_process, name=f"ocpi-pull-write-{i}", daemon=True,
                                      args=(self.jobs, self.results, self.stop, cpos, self.version, os.getpid()))
            process.start()
            self.processes.append(process)

    def _hand_over(self, job) -> None:
        while True:
            try:
                self.jobs.put(job, timeout=POLL_SECONDS)
                return
            except queue.Full:
                self._receive(wait=False)
                self._check_alive()

    def _receive(self, *, wait: bool) -> None:
        """Count the messages that came back; with `wait`, until every job handed over has answered."""
        while self.pending:
            try:
                kind, value = self.results.get(timeout=POLL_SECONDS) if wait else self.results.get_nowait()
            except queue.Empty:
                if not wait:
                    return
                self._check_alive()
                continue
            self.pending -= 1
            if kind == "ok":
                self._add(value)
            elif kind == "error" and self.failure is None:
                self.failure = WriterFailed(value)
                self.stop.set()

    def _check_alive(self) -> None:
        dead = [p for p in self.processes if not p.is_alive()]
        if dead:
            self.pending = 0  # a dead process's job never answers
            self._end_processes(kill=True)
            raise WriterFailed(f"a writing process ended unexpectedly (exit code {dead[0].exitcode})")

    def _end_processes(self, *, kill: bool) -> None:
        if kill:
            self.stop.set()
            self.jobs.cancel_join_thread()  # what is left for the processes is dropped, not waited for
        for process in self.processes:
            if kill:
                process.terminate()
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        for q in (self.jobs, self.results):
            q.close()
        self.processes, self.jobs, self.results = [], None, None

    # --- buffering and counting ---
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
            self.tally.reasons["location: must be a JSON object"] += 1
            return None
        if self.version == V211 and "country_code" not in item:
            if self.only_party is None:
                self.tally.reasons["party: a 2.1.1 location names no party and the peer has several (or no) CPO "
                                   "parties"] += 1
            return self.only_party
        key = (str(item.get("country_code") or "").upper(), str(item.get("party_id") or "").upper())
        cpo = self.parties.get(key)
        if cpo is None and self.adopt is not None and key not in self.parties:
            cpo = self.parties[key] = self.adopt(*key)  # None is remembered too: asked once per pull
        if cpo is None:
            self.tally.reasons[f"party {key[0]}*{key[1]} is not a CPO party of this peer"] += 1
        return cpo

    def flush(self, cpo_id: int | None = None) -> None:
        for key in [cpo_id] if cpo_id is not None else list(self.buffers):
            cpo, items = self.buffers.pop(key, (None, []))
            if items:
                self._submit(cpo, items)

    def _submit(self, cpo: Cpo, items: list[dict]) -> None:
        if self.failure is not None:
            raise self.failure
        if self.processes:
            self._hand_over((cpo.pk, _packed(items)))
            self.pending += 1
            self._receive(wait=False)
        else:
            self._add(Tally().count(write_batch(cpo, items, self.version)))

    def _add(self, tally: Tally) -> None:
        self.tally.add(tally)
        self.batches += 1
        if self.batches % COLLECT_EVERY == 0:
            # The collector is paused for the pull (peer_pull): a cycle made meanwhile goes here. Only the
            # youngest generation: while paused, everything allocated since the last collection is in it,
            # and a full collection walked the whole process (a tenth of a second, every time).
            gc.collect(0)

    def close(self, raising: bool = True) -> None:
        """Wait for every batch handed over and end the processes; raises what made a batch fail."""
        if self.processes:
            try:
                for _ in self.processes:
                    self._hand_over(None)
                self._receive(wait=True)
            except WriterFailed as exc:
                self.failure = self.failure or exc
            finally:
                if self.processes:
                    self._end_processes(kill=False)
        if raising and self.failure is not None:
            raise self.failure

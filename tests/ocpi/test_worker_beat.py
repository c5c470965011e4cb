"""Push and pull run by a real Celery worker and a real beat on Redis, as the Procfile runs them: no task,
push_due() or pull is called here by hand. Each test starts `celery -A config worker` (and, where it needs
one, `celery -A config beat`) as processes of their own, on the test database (its `test_` name, so data
is committed: transaction=True) and the test Redis (broker, cache: kicks and locks), stopped before the
test's database is flushed. Beat runs the project's schedule with its intervals cut to a second
(tests/ocpi/worker_settings.py). The other side is the session's demo peer (tests/ocpi/conftest.py).

Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL); skips otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from config.celery import app as celery_app
from config.tasks import HEARTBEAT_CACHE_KEY
from locations import services
from locations.models import Cpo, Location
from locations.tokens import token_new
from ocpi.models import OutboxEntry, Peer
from tests.conftest import location_payload
from tests.ocpi.peer_server import peer_connected_here
from tests.processes import process_stop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60  # seconds any one wait may take; a loaded 2-core CI machine takes a few


def wait_until(check: Callable, what: str, processes: "CeleryProcesses", seconds: float = WAIT):
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        processes.assert_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds} s{processes.log_tail()}")
        time.sleep(0.25)


class CeleryProcesses:
    """A worker and a beat of this project, on the test database and the test Redis."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.procs: dict[str, subprocess.Popen] = {}
        database = urlsplit(os.environ["DATABASE_URL"])._replace(path="/" + connection.settings_dict["NAME"])
        self.env = {
            **os.environ,
            # pytest-django's test database: the worker must see what the test commits.
            "DATABASE_URL": urlunsplit(database),
            "DJANGO_SETTINGS_MODULE": "tests.ocpi.worker_settings",
            "EVHUB_TEST_BEAT_SECONDS": "1",
            # What the tests' `loopback` settings give this process: peers on loopback, no retries.
            "EVHUB_OCPI_ALLOWED_NETWORKS": "127.0.0.0/8",
            "EVHUB_OCPI_RETRIES": "0",
            "PYTHONUNBUFFERED": "1",
        }

    def _start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        with open(self.tmp_path / f"{name}.log", "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", *args], cwd=ROOT,
                                    env={**self.env, **env}, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs[name] = proc
        return proc

    def worker(self, **env: str) -> None:
        """Started and ready: it ran the heartbeat it sends itself on start (config.tasks)."""
        celery_app.control.purge()  # tasks that earlier tests left in the queue are not ours to run
        cache.delete(HEARTBEAT_CACHE_KEY)
        self._start("worker", ["worker", "--loglevel", "INFO", "--concurrency", "2", "--without-gossip",
                               "--without-mingle", "--hostname", f"test-{uuid.uuid4().hex[:8]}@%h"], env)
        wait_until(lambda: cache.get(HEARTBEAT_CACHE_KEY), "the worker's first heartbeat", self)

    def beat(self, **env: str) -> None:
        self._start("beat", ["beat", "--loglevel", "INFO", "--schedule", str(self.tmp_path / "celerybeat-schedule")],
                    env)

    def assert_alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"celery {name} exited ({proc.returncode}){self.log_tail()}"

    def log_tail(self, chars: int = 3000) -> str:
        return "".join(f"\n--- {path.name} ---\n{path.read_text(errors='replace')[-chars:]}"
                       for path in sorted(self.tmp_path.glob("*.log")))

    def stop(self) -> None:
        # Beat first, so that nothing new is sent; the worker's warm shutdown finishes its task; whatever
        # is left of a process group after that (a pull's writing processes) is killed.
        for name in ("beat", "worker"):
            proc = self.procs.pop(name, None)
            if proc is not None:
                process_stop(proc, timeout=30)
        celery_app.control.purge()


@pytest.fixture
def celery(tmp_path):
    if not os.environ.get("REDIS_URL") or connection.vendor != "postgresql":
        pytest.skip("a worker and beat of their own need PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    processes = CeleryProcesses(tmp_path)
    try:
        yield processes
    finally:
        processes.stop()


@pytest.fixture
def loopback(settings):
    settings.OCPI_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def alpha_pub():
    cpo, _ = services.cpo_create(country_code="DE", party_id="ALP", owner_name="Alpha", auto_publish=True)
    return cpo


@pytest.fixture
def receiving_peer(peer_server, loopback, alpha_pub) -> Peer:
    """The peer server as a connected eMSP of ours (we are its CPO DE*ALP)."""
    token = token_new()
    peer_server.admit(name=f"worker-push-{token[:6]}", token=token,
                      parties=[("CPO", "DE", "ALP"), ("EMSP", "DE", "EVH")])
    return peer_connected_here(peer_server, token=token, parties=[("EMSP", "DE", "DMO")])


@pytest.fixture
def sending_peer(peer_server, loopback) -> Peer:
    """The peer server as a connected CPO (DE*DMO) of ours."""
    token = token_new()
    peer_server.admit(name=f"worker-pull-{token[:6]}", token=token, parties=[("EMSP", "DE", "EVH")])
    return peer_connected_here(peer_server, token=token, parties=[("CPO", "DE", "DMO")])


def on_peer(server, ocpi_id: str) -> dict | None:
    """DE*ALP's location `ocpi_id` as the peer stored it, read from its database (a shell costs seconds)."""
    location, cpo = Location._meta.db_table, Cpo._meta.db_table
    with psycopg.connect(server.env["DATABASE_URL"], autocommit=True) as conn:
        row = conn.execute(f"SELECT l.name FROM {location} l JOIN {cpo} c ON c.id = l.cpo_id "
                           "WHERE c.country_code = 'DE' AND c.party_id = 'ALP' AND l.ocpi_id = %s",
                           [ocpi_id]).fetchone()
    return row and {"name": row[0]}


def upsert(cpo, ocpi_id: str, name: str) -> None:
    services.location_upsert(cpo=cpo, data=location_payload(cpo, ocpi_id, name=name,
                                                            last_updated="2024-06-01T10:00:00Z"))


def test_a_committed_change_reaches_the_peer_through_the_worker(peer_server, receiving_peer, alpha_pub, celery):
    celery.worker()
    upsert(alpha_pub, "WORKER1", "Pushed by the worker")  # commits: the outbox entry, then the kick's task
    wait_until(lambda: on_peer(peer_server, "WORKER1") == {"name": "Pushed by the worker"},
               "the location on the peer", celery)
    entry = wait_until(lambda: OutboxEntry.objects.filter(peer=receiving_peer, delivered_at__isnull=False).first(),
                       "the outbox entry marked delivered", celery)
    assert (entry.attempts, entry.last_error) == (0, "")


def test_beat_retries_a_failed_push_once_its_backoff_is_over(peer_server, receiving_peer, alpha_pub, celery):
    celery.worker()
    celery.beat(EVHUB_OCPI_PULL_MINUTES="0")
    peer_server.stop_web()
    try:
        upsert(alpha_pub, "RETRY1", "Pushed again by beat")
        failed = wait_until(lambda: OutboxEntry.objects.filter(peer=receiving_peer, attempts__gte=1).first(),
                            "the worker's failed attempt", celery)
        assert failed.delivered_at is None and failed.last_error
        # Beat's push_due runs every second: while the backoff lasts it sends nothing (another attempt on
        # the peer that is still down would count).
        time.sleep(3)
        failed.refresh_from_db()
        assert (failed.attempts, failed.delivered_at) == (1, None), failed.last_error
    finally:
        peer_server.start()
    # The backoff (30 s, tests/ocpi/test_push.py) is over: the entry is due, and only beat kicks its peer.
    OutboxEntry.objects.filter(pk=failed.pk).update(next_attempt_at=timezone.now())
    wait_until(lambda: on_peer(peer_server, "RETRY1") == {"name": "Pushed again by beat"},
               "the location on the peer", celery)
    # The peer stores the location before its answer reaches the worker, which then marks the entry.
    delivered = wait_until(lambda: OutboxEntry.objects.filter(pk=failed.pk, delivered_at__isnull=False).first(),
                           "the outbox entry marked delivered", celery)
    assert delivered.attempts == 1, delivered.last_error


def test_beat_pulls_every_connected_cpo_through_the_worker(peer_server, sending_peer, celery):
    expected = peer_server.shell("from locations.models import Location\nprint(json.dumps(Location.objects.filter("
                                 "moderation='PUBLISHED', cpo__party_id='DMO').count()))")
    assert expected > 100  # more than one page
    celery.worker()
    celery.beat()
    # ocpi.pull_due enqueues ocpi.pull_peer for each connected CPO; the pull ends by setting last_pull_at.
    wait_until(lambda: Peer.objects.filter(pk=sending_peer.pk, last_pull_at__isnull=False).exists(),
               "a complete pull of the peer", celery, seconds=120)
    assert Location.objects.filter(cpo__country_code="DE", cpo__party_id="DMO").count() == expected


def test_the_schedule_pulls_every_ocpi_pull_minutes_and_pushes_due_entries_every_minute(settings):
    # The intervals the tests above cut to a second.
    assert settings.CELERY_BEAT_SCHEDULE["ocpi.pull_due"] == {"task": "ocpi.pull_due",
                                                              "schedule": timedelta(minutes=settings.OCPI_PULL_MINUTES)}
    assert settings.CELERY_BEAT_SCHEDULE["ocpi.push_due"] == {"task": "ocpi.push_due",
                                                              "schedule": timedelta(minutes=1)}

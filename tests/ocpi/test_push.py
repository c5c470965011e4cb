"""Push against a real second evhub on loopback: our changes PUT to its locations receiver, in order,
kept and retried while it is down."""

from datetime import timedelta

import pytest
from celery.signals import before_task_publish
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.celery import app as celery_app
from locations import services
from locations.models import Location
from locations.tokens import token_new
from ocpi import outbox
from ocpi.modules.locations import push as locations_push
from ocpi.models import OutboxEntry, Peer
from tests.conftest import location_payload
from tests.ocpi.peer_server import peer_connected_here

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


@pytest.fixture
def loopback(settings):
    settings.OCPI_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def alpha_pub(db):
    cpo, token = services.cpo_create(country_code="DE", party_id="ALP", owner_name="Alpha", auto_publish=True)
    return cpo


@pytest.fixture
def peer(peer_server, loopback, alpha_pub):
    """The peer server as a connected eMSP of ours; on its side we are the CPO of DE*ALP."""
    token = token_new()
    peer_server.admit(name=f"push-{token[:6]}", token=token, parties=[("CPO", "DE", "ALP"), ("EMSP", "DE", "EVH")])
    peer = peer_connected_here(peer_server, token=token, parties=[("EMSP", "DE", "DMO"), ("CPO", "DE", "DMO")])
    cache.delete(f"ocpi:push:kick:{peer.pk}")
    cache.delete(f"ocpi:push:lock:{peer.pk}")
    yield peer
    cache.delete(f"ocpi:push:kick:{peer.pk}")
    cache.delete(f"ocpi:push:lock:{peer.pk}")


def on_peer(server, ocpi_id: str):
    return server.shell(
        "from locations.models import Location\n"
        f"loc = Location.objects.filter(cpo__party_id='ALP', ocpi_id={ocpi_id!r}).first()\n"
        "print(json.dumps(loc and {'name': loc.name, 'evses': sorted(e.status for e in loc.evses.all())}))")


def upsert(cpo, ocpi_id, stamp, **overrides):
    return services.location_upsert(cpo=cpo, data=location_payload(cpo, ocpi_id, last_updated=stamp, **overrides))


def test_a_published_change_is_pushed_at_once(peer_server, peer, alpha_pub, eager,
                                              django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upsert(alpha_pub, "PUSH1", "2024-06-01T10:00:00Z", name="Pushed at once")
    entry = OutboxEntry.objects.get(peer=peer)
    assert entry.delivered_at is not None and entry.last_error == ""
    assert on_peer(peer_server, "PUSH1") == {"name": "Pushed at once", "evses": ["AVAILABLE"]}


def test_a_location_taken_out_of_publication_is_withdrawn_and_can_come_back(peer_server, peer, alpha_pub, eager,
                                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upsert(alpha_pub, "GONE1", "2024-06-01T10:00:00Z", name="Soon withdrawn")
    assert on_peer(peer_server, "GONE1") == {"name": "Soon withdrawn", "evses": ["AVAILABLE"]}
    location = Location.objects.get(ocpi_id="GONE1")
    with django_capture_on_commit_callbacks(execute=True):
        services.location_moderate(location=location, moderation="UNPUBLISHED")
    # OCPI has no DELETE of a location: its EVSEs are REMOVED (under the CPO's own timestamps).
    assert on_peer(peer_server, "GONE1") == {"name": "Soon withdrawn", "evses": ["REMOVED"]}
    entries = OutboxEntry.objects.filter(peer=peer).order_by("id")
    assert [(e.delivered_at is not None, e.last_error) for e in entries] == [(True, ""), (True, "")]
    with django_capture_on_commit_callbacks(execute=True):
        services.location_moderate(location=location, moderation="PUBLISHED")
    assert on_peer(peer_server, "GONE1") == {"name": "Soon withdrawn", "evses": ["AVAILABLE"]}


def test_a_pending_location_moderated_away_sends_nothing(peer, alpha_pub, django_capture_on_commit_callbacks):
    pending, _ = services.cpo_create(country_code="DE", party_id="PND", owner_name="Pending CPO")
    upsert(pending, "P1", "2024-06-01T10:00:00Z")
    with django_capture_on_commit_callbacks(execute=True):
        services.location_moderate(location=Location.objects.get(ocpi_id="P1"), moderation="UNPUBLISHED")
    assert not OutboxEntry.objects.filter(peer=peer).exists()


def test_only_published_locations_of_others_are_written(peer, alpha_pub, django_capture_on_commit_callbacks):
    pending, _ = services.cpo_create(country_code="DE", party_id="PND", owner_name="Pending CPO")
    with django_capture_on_commit_callbacks(execute=True):
        upsert(pending, "P1", "2024-06-01T10:00:00Z")  # not published: nothing goes out
        owned = services.location_upsert(cpo=peer.parties.get(role="CPO").cpo, data=location_payload(
            peer.parties.get(role="CPO").cpo, "OWN1", last_updated="2024-06-01T10:00:00Z"))
        services.location_moderate(location=owned.instance, moderation="PUBLISHED")  # the peer's own party
    assert not OutboxEntry.objects.exists()
    cache.delete(f"ocpi:push:kick:{peer.pk}")


def test_entries_of_one_location_go_out_once(peer_server, peer, alpha_pub, django_capture_on_commit_callbacks):
    published = []
    before_task_publish.connect(receiver := lambda **kw: published.append(kw["headers"]["task"]), weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(3):
                upsert(alpha_pub, "ONCE", f"2024-06-01T10:0{n}:00Z", name=f"Version {n}")
    finally:
        before_task_publish.disconnect(receiver)
        celery_app.control.purge()
    assert published == ["ocpi.push_peer"]  # three changes, one task: the kick is coalesced
    assert OutboxEntry.objects.filter(peer=peer, delivered_at__isnull=True).count() == 3
    outbox.push_kick_taken(peer_id=peer.pk)
    result = outbox.peer_push(peer=peer)
    assert (result.sent, result.delivered, result.failed) == (1, 3, "")
    assert on_peer(peer_server, "ONCE")["name"] == "Version 2"


def test_a_peer_down_keeps_the_entries_and_gets_them_later_in_order(peer_server, peer, alpha_pub,
                                                                   django_capture_on_commit_callbacks):
    peer_server.stop_web()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            upsert(alpha_pub, "DOWN-A", "2024-06-01T10:00:00Z", name="A first")
            upsert(alpha_pub, "DOWN-B", "2024-06-01T10:00:00Z", name="B")
            upsert(alpha_pub, "DOWN-A", "2024-06-01T11:00:00Z", name="A second")
        outbox.push_kick_taken(peer_id=peer.pk)
        result = outbox.peer_push(peer=peer)
        assert result.failed and result.sent == 0
        head = OutboxEntry.objects.filter(peer=peer).order_by("id").first()
        assert head.attempts == 1 and head.last_error
        assert timedelta(seconds=25) < head.next_attempt_at - timezone.now() <= timedelta(seconds=30)
        assert OutboxEntry.objects.filter(peer=peer, delivered_at__isnull=True).count() == 3
        assert outbox.push_due() == []  # the head waits for its backoff
        again = outbox.peer_push(peer=peer)
        assert again.sent == 0 and OutboxEntry.objects.get(pk=head.pk).attempts == 1  # not due: not tried
    finally:
        peer_server.start()
    OutboxEntry.objects.filter(peer=peer).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    cache.delete(f"ocpi:push:kick:{peer.pk}")
    assert outbox.push_due() == [peer.pk]
    celery_app.control.purge()
    outbox.push_kick_taken(peer_id=peer.pk)
    result = outbox.peer_push(peer=peer)
    assert (result.sent, result.delivered, result.failed) == (2, 3, "")
    entries = list(OutboxEntry.objects.filter(peer=peer).order_by("id"))
    assert all(entry.delivered_at for entry in entries)
    # In order: A (its first entry comes first) before B; A's two entries went out as one PUT.
    assert entries[0].delivered_at <= entries[1].delivered_at
    assert on_peer(peer_server, "DOWN-A")["name"] == "A second"
    assert on_peer(peer_server, "DOWN-B")["name"] == "B"


def test_one_delivery_at_a_time_per_peer(peer, alpha_pub):
    assert cache.add(f"ocpi:push:lock:{peer.pk}", "someone", timeout=60)
    assert outbox.peer_push(peer=peer).busy


def test_kicks_are_coalesced_until_the_task_starts(peer):
    assert outbox.kick_now(peer_id=peer.pk) is True
    assert outbox.kick_now(peer_id=peer.pk) is False
    outbox.push_kick_taken(peer_id=peer.pk)
    assert outbox.kick_now(peer_id=peer.pk) is True
    celery_app.control.purge()


def test_a_kick_waits_for_the_commit_and_a_rollback_drops_it(peer, django_capture_on_commit_callbacks):
    """Kicked inside a transaction: nothing is enqueued (nor the peer's kick flag taken) before the commit,
    so a change rolled back leaves no flag that would block the peer's kicks for KICK_SECONDS."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outbox.push_kick(peer_ids=[peer.pk])
    assert len(callbacks) == 1 and cache.get(f"ocpi:push:kick:{peer.pk}") is None
    callbacks[0]()
    assert cache.get(f"ocpi:push:kick:{peer.pk}") == 1
    celery_app.control.purge()


def test_backoff_doubles_up_to_an_hour():
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]


def test_beat_runs_push_due_every_minute(settings):
    assert settings.CELERY_BEAT_SCHEDULE["ocpi.push_due"]["schedule"] == timedelta(minutes=1)


def test_a_batch_writes_its_entries_in_one_statement(peer, alpha_pub, django_capture_on_commit_callbacks):
    with CaptureQueriesContext(connection) as queries:
        with django_capture_on_commit_callbacks(execute=True):
            services.location_upsert_many(cpo=alpha_pub, items=[
                location_payload(alpha_pub, f"BATCH{n}", last_updated="2024-06-01T10:00:00Z") for n in range(5)])
    inserts = [q for q in queries.captured_queries if q["sql"].startswith(f"INSERT INTO {OutboxEntry._meta.db_table}")]
    assert len(inserts) == 1
    assert OutboxEntry.objects.filter(peer=peer).count() == 5
    celery_app.control.purge()


def _peer(name: str, state: str = "CONNECTED", endpoints: dict | None = None, roles: list | None = None,
          v211_role: str = "CPO") -> Peer:
    return Peer.objects.create(name=name, state=state, endpoints=endpoints or {}, roles=roles or [],
                               v211_role=v211_role)


def test_receiving_peers_are_the_connected_ones_with_a_locations_receiver(db):
    receiver = {"locations": {"RECEIVER": "https://emsp.example/ocpi/2.2.1/locations"}}
    old = {"locations": {"ANY": "https://old.example/ocpi/2.1.1/locations"}}
    wanted = {_peer("2.2.1 eMSP", endpoints=receiver, roles=[{"role": "EMSP"}]).pk,
              _peer("2.1.1 eMSP", endpoints=old, roles=[{"role": "emsp", "party_id": "EMS"}]).pk,
              _peer("2.1.1 eMSP by our choice", endpoints=old, roles=[{"role": "CPO"}], v211_role="EMSP").pk}
    _peer("2.1.1 no roles: a CPO unless we chose otherwise", endpoints=old)
    _peer("2.1.1 CPO: its endpoint is its sender", endpoints=old, roles=[{"role": "CPO"}])
    _peer("sender only", endpoints={"locations": {"SENDER": "https://cpo.example/locations"}})
    _peer("suspended", state=Peer.State.SUSPENDED, endpoints=receiver)
    _peer("invited", state=Peer.State.INVITED, endpoints=receiver)
    with CaptureQueriesContext(connection) as queries:
        peers = outbox.receiving_peers(module="locations")
    assert {peer.pk for peer in peers} == wanted and len(queries) == 1
    assert all(locations_push.receiver_url(peer) for peer in peers)


def test_a_peer_connected_meanwhile_gets_the_next_change(alpha_pub):
    """Read after every write, never kept: a peer connected by another process (another row here, no
    signal) is written for at once; and no receiving peer costs one query, not an INSERT."""
    location = upsert(alpha_pub, "NEXT1", "2024-06-01T10:00:00Z").instance
    with CaptureQueriesContext(connection) as queries:
        assert locations_push.outbox_write(location_ids=[location.pk]) == []
    assert len(queries) == 1
    peer = _peer("connected meanwhile", endpoints={"locations": {"RECEIVER": "https://emsp.example/locations"}})
    with CaptureQueriesContext(connection) as queries:
        assert locations_push.outbox_write(location_ids=[location.pk]) == [peer.pk]
    assert len(queries) == 2  # the receiving peers, then one INSERT ... SELECT
    Peer.objects.filter(pk=peer.pk).update(state=Peer.State.SUSPENDED)
    assert locations_push.outbox_write(location_ids=[location.pk]) == []
    assert OutboxEntry.objects.filter(peer=peer).count() == 1

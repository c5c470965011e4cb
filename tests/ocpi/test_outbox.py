"""The module-generic outbox (ocpi.outbox, ocpi.registry): entries written in the change's own transaction,
delivery driven by the registry, order kept per object, and a peer's permanent refusal of one object
parking that object only. The peer is a real HTTP server on loopback (`fake_platform`), answering each
object's URL with what the test sets."""

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from config.celery import app as celery_app
from locations import services
from locations.models import Location
from locations.tokens import secret_encrypt
from ocpi import outbox, registry
from ocpi.models import OutboxEntry, Peer, PeerParty
from tests.conftest import location_payload

pytestmark = [pytest.mark.django_db]

PATH = "/2.2.1/locations/DE/ALP/"


@pytest.fixture
def alpha_pub(db):
    return services.cpo_create(country_code="DE", party_id="ALP", owner_name="Alpha", auto_publish=True)[0]


@pytest.fixture
def emsp(fake_platform):
    """A connected eMSP at the fake platform; every location it is sent is accepted unless `refuse` says
    otherwise: {ocpi_id: (http_status, body)}. `received` lists (ocpi_id, name) in the order they came."""
    peer = Peer.objects.create(
        name="fake eMSP", state=Peer.State.CONNECTED, version="2.2.1", token_out=secret_encrypt("tok-fake"),
        versions_url=f"{fake_platform.url}/versions", roles=[{"role": "EMSP", "country_code": "NL", "party_id": "EMS"}],
        endpoints={"locations": {"RECEIVER": f"{fake_platform.url}/2.2.1/locations"}})
    PeerParty.objects.create(peer=peer, role="EMSP", country_code="NL", party_id="EMS")
    peer.refuse, peer.received = {}, []
    peer.platform = fake_platform

    def answer(seen):
        ocpi_id = seen.path.rsplit("/", 1)[-1]
        peer.received.append((ocpi_id, seen.body.get("name")))
        return peer.refuse.get(ocpi_id) or (200, {"status_code": 1000, "status_message": "Success",
                                                 "timestamp": "2024-05-01T10:00:00Z"})

    peer.answer = answer
    for key in (f"ocpi:push:kick:{peer.pk}", f"ocpi:push:lock:{peer.pk}"):
        cache.delete(key)
    yield peer
    for key in (f"ocpi:push:kick:{peer.pk}", f"ocpi:push:lock:{peer.pk}"):
        cache.delete(key)


def upsert(emsp, cpo, ocpi_id, stamp, name):
    emsp.platform.routes[("PUT", PATH + ocpi_id)] = emsp.answer
    return services.location_upsert(cpo=cpo, data=location_payload(cpo, ocpi_id, last_updated=stamp, name=name))


def push(peer):
    outbox.push_kick_taken(peer_id=peer.pk)
    return outbox.peer_push(peer=peer)


# --- written in the change's transaction -------------------------------------------------------------------

def test_a_change_rolled_back_leaves_no_entry_and_no_kick(emsp, alpha_pub, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            upsert(emsp, alpha_pub, "RB1", "2024-06-01T10:00:00Z", "Rolled back")
            assert OutboxEntry.objects.filter(peer=emsp, object_id="RB1").count() == 1  # before any commit
            raise RuntimeError("the caller's transaction fails after the write")
    assert not Location.objects.filter(ocpi_id="RB1").exists()
    assert not OutboxEntry.objects.exists() and callbacks == []


def test_a_withdrawal_rolled_back_leaves_no_entry(emsp, alpha_pub):
    location = upsert(emsp, alpha_pub, "WD1", "2024-06-01T10:00:00Z", "Published").instance
    OutboxEntry.objects.all().delete()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.location_moderate(location=location, moderation="UNPUBLISHED")
        assert OutboxEntry.objects.filter(peer=emsp, object_id="WD1").count() == 1
        raise RuntimeError
    assert not OutboxEntry.objects.exists()
    assert Location.objects.get(pk=location.pk).moderation == "PUBLISHED"


@pytest.fixture
def outbox_refusing_writes(db):
    """The database refuses every new outbox row (a trigger of this test's transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE FUNCTION test_outbox_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$")
        cursor.execute(f"CREATE TRIGGER test_outbox_refuse BEFORE INSERT ON {OutboxEntry._meta.db_table} "
                       "FOR EACH ROW EXECUTE FUNCTION test_outbox_refuse()")


def test_a_failure_writing_the_entries_fails_the_change(emsp, alpha_pub, outbox_refusing_writes):
    with pytest.raises(DatabaseError, match="outbox refused"):
        upsert(emsp, alpha_pub, "FAIL1", "2024-06-01T10:00:00Z", "Never announced")
    with pytest.raises(DatabaseError, match="outbox refused"):  # the batch path (pull, CSV, portal lists)
        services.location_upsert_many(cpo=alpha_pub, items=[
            location_payload(alpha_pub, f"FAIL{n}", last_updated="2024-06-01T10:00:00Z") for n in range(2, 5)])
    assert not Location.objects.filter(ocpi_id__startswith="FAIL").exists()


# --- a permanent refusal parks one object; the rest flows on, in order per object ---------------------------

@pytest.mark.parametrize("refusal, reason", [
    ((422, {"detail": [{"loc": ["body", "evses"], "msg": "field required"}]}), "HTTP 422"),
    ((200, {"status_code": 2001, "status_message": "Invalid or missing parameters",
            "timestamp": "2024-05-01T10:00:00Z"}), "status_code 2001: Invalid or missing parameters"),
])
def test_a_peer_refusing_one_object_still_gets_every_other_change_in_order(emsp, alpha_pub, refusal, reason):
    emsp.refuse["REF"] = refusal
    upsert(emsp, alpha_pub, "A", "2024-06-01T10:00:00Z", "A1")
    upsert(emsp, alpha_pub, "REF", "2024-06-01T10:00:00Z", "REF1")
    upsert(emsp, alpha_pub, "B", "2024-06-01T10:00:00Z", "B1")
    first = push(emsp)
    assert (first.sent, first.parked, first.failed) == (2, 1, "")
    # Object order of the run: A, then the refused one, then B (B did not wait behind it).
    assert emsp.received == [("A", "A1"), ("REF", "REF1"), ("B", "B1")]
    parked = OutboxEntry.objects.get(object_id="REF")
    assert parked.parked_at and parked.delivered_at is None and reason in parked.last_error

    # Still refused: the new change is tried, parked again, and the others' changes go on around it.
    upsert(emsp, alpha_pub, "REF", "2024-06-01T11:00:00Z", "REF2")
    upsert(emsp, alpha_pub, "A", "2024-06-01T11:00:00Z", "A2")
    upsert(emsp, alpha_pub, "C", "2024-06-01T11:00:00Z", "C1")
    second = push(emsp)
    assert (second.sent, second.parked, second.failed) == (2, 1, "")
    # The peer fixed its side: the next change of the object is accepted.
    del emsp.refuse["REF"]
    upsert(emsp, alpha_pub, "REF", "2024-06-01T12:00:00Z", "REF3")
    upsert(emsp, alpha_pub, "B", "2024-06-01T12:00:00Z", "B2")
    third = push(emsp)
    assert (third.sent, third.parked, third.failed) == (2, 0, "")

    per_object = {}
    for ocpi_id, name in emsp.received:
        per_object.setdefault(ocpi_id, []).append(name)
    assert per_object == {"A": ["A1", "A2"], "B": ["B1", "B2"], "C": ["C1"], "REF": ["REF1", "REF2", "REF3"]}
    states = [(e.object_id, e.delivered_at is not None, e.parked_at is not None)
              for e in OutboxEntry.objects.filter(peer=emsp).order_by("id")]
    assert states == [("A", True, False), ("REF", False, True), ("B", True, False), ("REF", False, True),
                      ("A", True, False), ("C", True, False), ("REF", True, False), ("B", True, False)]


def test_parked_entries_show_in_ocpi_peers_and_the_admin_and_can_be_retried(emsp, alpha_pub, client):
    emsp.refuse["REF"] = (422, {"detail": "evses: field required"})
    upsert(emsp, alpha_pub, "OK1", "2024-06-01T10:00:00Z", "Fine")
    upsert(emsp, alpha_pub, "REF", "2024-06-01T10:00:00Z", "Refused")
    push(emsp)
    upsert(emsp, alpha_pub, "OK2", "2024-06-01T10:00:00Z", "Waiting")

    out = io.StringIO()
    call_command("ocpi_peers", stdout=out)
    text = out.getvalue()
    assert f"{emsp.pk} fake eMSP: CONNECTED" in text
    assert "outbox:    1 pending, 1 parked" in text
    parked_line = next(line for line in text.splitlines() if line.strip().startswith("parked "))
    assert "locations DE*ALP REF" in parked_line and "HTTP 422" in parked_line

    admin = get_user_model().objects.create_superuser(username="operator", password="pw", email="op@example.com")
    client.force_login(admin)
    listing = client.get("/admin/ocpi/outboxentry/?parked_at__isnull=False").content.decode()
    assert "REF" in listing and "HTTP 422" in listing and "Retry parked entries" in listing
    entry = OutboxEntry.objects.get(object_id="REF")
    response = client.post("/admin/ocpi/outboxentry/", {"action": "retry_parked", "_selected_action": [entry.pk]})
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.parked_at is None and entry.next_attempt_at is None and entry.delivered_at is None
    celery_app.control.purge()  # the action kicked the peer (no worker here)
    del emsp.refuse["REF"]
    result = push(emsp)
    assert (result.sent, result.parked) == (2, 0)  # the retried one, then the waiting change
    assert emsp.received[-2:] == [("REF", "Refused"), ("OK2", "Waiting")]


@pytest.mark.parametrize("http_status, status_code", [(503, 3000), (429, 2000), (401, 2000), (200, 3001)])
def test_a_transient_failure_backs_off_and_stops_the_peer(emsp, alpha_pub, http_status, status_code):
    emsp.refuse["DOWN"] = (http_status, {"status_code": status_code, "status_message": "later",
                                         "timestamp": "2024-05-01T10:00:00Z"})
    upsert(emsp, alpha_pub, "DOWN", "2024-06-01T10:00:00Z", "Down")
    upsert(emsp, alpha_pub, "NEXT", "2024-06-01T10:00:00Z", "Waits")
    result = push(emsp)
    assert result.failed and f"HTTP {http_status}" in result.failed and (result.sent, result.parked) == (0, 0)
    head, waiting = OutboxEntry.objects.filter(peer=emsp).order_by("id")
    assert head.parked_at is None and head.attempts == 1
    assert timedelta(seconds=25) < head.next_attempt_at - timezone.now() <= timedelta(seconds=30)
    assert waiting.attempts == 0 and waiting.delivered_at is None  # behind the head: not tried
    assert emsp.received == [("DOWN", "Down")]


def test_push_due_drops_old_delivered_and_parked_entries(emsp, alpha_pub):
    now = timezone.now()
    keys = dict(peer=emsp, module="locations", country_code="DE", party_id="ALP", object_id="X")
    OutboxEntry.objects.bulk_create([
        OutboxEntry(**keys, delivered_at=now - timedelta(days=8)),
        OutboxEntry(**keys, delivered_at=now - timedelta(days=6)),
        OutboxEntry(**keys, parked_at=now - timedelta(days=31)),
        OutboxEntry(**keys, parked_at=now - timedelta(days=29)),
    ])
    outbox.push_due()
    left = OutboxEntry.objects.filter(peer=emsp).order_by("id")
    assert [(e.delivered_at is not None, e.parked_at is not None) for e in left] == [(True, False), (False, True)]


# --- the registry drives push, for any module -------------------------------------------------------------

@pytest.fixture
def notes_module(fake_platform):
    """A module of the test's own (no location code): objects are notes in a dict, PUT to
    {receiver}/{country_code}/{party_id}/{object_id}."""
    notes = {}

    def receiver_url(peer):
        return (peer.endpoints.get("notes") or {}).get("RECEIVER")

    def load(entries, peer):
        return {entry.object_pk: notes[entry.object_pk] for entry in entries if entry.object_pk in notes}

    def send(client, url, entry, obj, peer):
        # Like a configuration module (HubClientInfo): no routing headers.
        return outbox.object_put(client, f"{url}/{entry.country_code}/{entry.party_id}/{entry.object_id}", obj,
                                 routed=False)

    registry.register(registry.Module(identifier="notes", receiver_url=receiver_url, load=load, send=send))
    yield notes
    registry._MODULES.pop("notes")


def test_outbox_announce_writes_for_the_module_receivers_and_delivers_through_the_module(
        emsp, notes_module, fake_platform, django_capture_on_commit_callbacks):
    emsp.endpoints["notes"] = {"RECEIVER": f"{fake_platform.url}/2.2.1/notes"}
    emsp.save()
    Peer.objects.create(name="no notes receiver", state=Peer.State.CONNECTED,
                        endpoints={"locations": {"RECEIVER": "https://other.example/locations"}})
    fake_platform.answer("PUT", "/2.2.1/notes/NL/EMS/N1", None)
    fake_platform.routes[("PUT", "/2.2.1/notes/NL/EMS/N2")] = (404, {"detail": "unknown"})
    notes_module.update({1: {"text": "first"}, 2: {"text": "second"}})
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            written = outbox.outbox_announce(module="notes", keys=[("NL", "EMS", "N1", 1), ("NL", "EMS", "N2", 2),
                                                                    ("NL", "EMS", "N3", 3)])
    assert written == [emsp.pk] and len(callbacks) == 1  # the kick, after the commit
    assert list(OutboxEntry.objects.filter(module="notes").values_list("peer_id", "object_id").order_by("id")) == [
        (emsp.pk, "N1"), (emsp.pk, "N2"), (emsp.pk, "N3")]
    result = push(emsp)
    assert (result.sent, result.parked, result.delivered) == (1, 1, 2)  # N3 is gone: delivered, not sent
    (put,) = fake_platform.requests("PUT", "/2.2.1/notes/NL/EMS/N1")
    assert put.body == {"text": "first"} and "OCPI-from-party-id" not in put.headers
    assert put.headers["Authorization"].startswith("Token ")
    assert OutboxEntry.objects.get(object_id="N3").last_error == "deleted: not sent"
    with pytest.raises(ValueError):
        outbox.outbox_announce(module="notes", keys=[("NLD", "EMS", "N1", 1)])
    with pytest.raises(ValueError):
        outbox.outbox_announce(module="no such module", keys=[])


@pytest.mark.parametrize("http_status, parked", [(422, True), (404, True), (502, False), (503, False)])
def test_an_answer_that_is_no_envelope_is_judged_by_its_http_status(emsp, alpha_pub, http_status, parked):
    """A framework's own error page (HTML, plain text): a 4xx refuses the object for good, a 5xx is an outage."""
    emsp.refuse["PAGE"] = (http_status, b"<html><body>Error</body></html>")
    upsert(emsp, alpha_pub, "PAGE", "2024-06-01T10:00:00Z", "Page")
    result = push(emsp)
    entry = OutboxEntry.objects.get(object_id="PAGE")
    assert f"HTTP {http_status}, the answer is not JSON" in entry.last_error
    assert (entry.parked_at is not None, bool(result.failed), entry.attempts) == (parked, not parked, 0 if parked else 1)

"""Pull against a real second evhub on loopback: its sender's pages, followed by Link, into our catalogue."""

import os
import threading
import time

import billiard
import pytest
from django.core.management import call_command
from django.db import connection, connections

from locations.models import Location
from locations.tokens import token_new
from ocpi import pull_writer
from ocpi.client import OcpiClient
from ocpi.models import Peer
from ocpi.pull import PullError, next_link, peer_pull
from tests.ocpi.peer_server import peer_connected_here

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


@pytest.fixture
def loopback(settings):
    settings.OCPI_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    return settings


@pytest.fixture
def peer(peer_server, loopback, request):
    """The peer server as a connected CPO (DE*DMO) of ours, and we a connected eMSP of it."""
    token = token_new()
    version = getattr(request, "param", None)
    peer_server.admit(name=f"pull-{token[:6]}", token=token, parties=[("EMSP", "DE", "EVH")])
    return peer_connected_here(peer_server, token=token, version=version,
                               parties=[("CPO", "DE", "DMO"), ("EMSP", "DE", "DMO")])


def published_on(server, party=None) -> int:
    where = f", cpo__country_code={party[0]!r}, cpo__party_id={party[1]!r}" if party else ""
    return server.shell("from locations.models import Location\n"
                        f"print(json.dumps(Location.objects.filter(moderation='PUBLISHED'{where}).count()))")


def test_a_full_pull_follows_every_page_and_stores_every_location(peer_server, peer):
    expected = published_on(peer_server, ("DE", "DMO"))
    others = published_on(peer_server) - expected
    summary = peer_pull(peer=peer)
    assert summary.completed and summary.full
    assert summary.received == summary.total == expected + others
    assert summary.pages == -(-summary.received // 100)  # the peer's pages of 100
    assert summary.created == expected and summary.updated == 0
    assert summary.rejected == others
    assert Location.objects.filter(cpo__party_id="DMO").count() == expected
    peer.refresh_from_db()
    assert peer.last_pull_at == summary.started_at

    again = peer_pull(peer=peer)  # by date_from: nothing changed since
    assert not again.full and again.completed
    assert again.created == again.updated == 0
    assert again.received <= 2  # only what has the very second of the last pull as last_updated


def test_a_change_on_the_peer_arrives_with_the_next_pull(peer_server, peer):
    peer_pull(peer=peer)
    changed = peer_server.shell(
        "from django.utils import timezone\nfrom locations.models import Location\nfrom locations import services\n"
        "from ocpi.modules.locations import location_ocpi\n"
        "loc = Location.objects.filter(cpo__party_id='DMO', moderation='PUBLISHED').order_by('id').first()\n"
        "data = location_ocpi(loc)\ndata['name'] = 'Renamed by the peer'\n"
        "data['last_updated'] = timezone.now().isoformat()\n"
        "services.location_upsert(cpo=loc.cpo, data=data)\nprint(json.dumps(loc.ocpi_id))")
    summary = peer_pull(peer=peer)
    assert summary.updated == 1 and summary.created == 0
    assert Location.objects.get(cpo__party_id="DMO", ocpi_id=changed).name == "Renamed by the peer"


def test_other_parties_are_rejected_with_the_reason(peer_server, peer):
    peer_server.shell(
        "from locations import services\nfrom locations.models import Cpo\n"
        "cpo = Cpo.objects.filter(party_id='OTH').first() or services.cpo_create(country_code='DE', "
        "party_id='OTH', owner_name='Other', auto_publish=True)[0]\n"
        "services.location_upsert(cpo=cpo, data={'country_code': 'DE', 'party_id': 'OTH', 'id': 'OTH1', "
        "'publish': True, 'address': 'Weg 1', 'city': 'Köln', 'country': 'DEU', 'time_zone': 'Europe/Berlin', "
        "'coordinates': {'latitude': '50.93', 'longitude': '6.95'}, 'last_updated': '2024-01-01T00:00:00Z'})\n"
        "print(json.dumps(1))")
    summary = peer_pull(peer=peer, full=True)
    assert summary.rejected >= 1
    assert dict(summary.top_reasons())["party DE*OTH is not a CPO party of this peer"] >= 1
    assert not Location.objects.filter(ocpi_id="OTH1").exists()


@pytest.mark.parametrize("peer", ["2.1.1"], indirect=True)
def test_a_211_peer_is_pulled_in_211(peer_server, peer):
    assert peer.version == "2.1.1"
    summary = peer_pull(peer=peer)
    assert summary.completed and summary.rejected == 0, summary.top_reasons()
    assert summary.created == summary.received > 0


def dmo_ids(items: list[dict]) -> set[str]:
    return {item["id"] for item in items if (item["country_code"], item["party_id"]) == ("DE", "DMO")}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_peer_down_mid_way_keeps_what_arrived_and_last_pull_at(peer_server, peer, monkeypatch):
    """The peer answers page 1, and is down when page 2 is asked, once page 1's locations are stored (by the
    writing processes, in batches smaller than a page): they stay, the pull reports the failure, and
    last_pull_at stays unset, so that the next pull asks for everything again."""
    monkeypatch.setattr(pull_writer, "WRITE_BATCH", 25)
    pages, stored_before_the_failure = [], []
    get = OcpiClient.get

    def down_after_page_1(client, url, **kwargs):  # in the pull's fetching thread
        if len(pages) == 1:
            wanted = dmo_ids(pages[0].data)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not stored_before_the_failure:
                if set(Location.objects.filter(cpo__party_id="DMO").values_list("ocpi_id", flat=True)) == wanted:
                    stored_before_the_failure.append(True)
                time.sleep(0.1)
            connection.close()  # this thread's own
            peer_server.stop_web()  # refuses connections, even with the pull's writers holding its socket
        reply = get(client, url, **kwargs)
        pages.append(reply)
        return reply

    monkeypatch.setattr(OcpiClient, "get", down_after_page_1)
    expected = published_on(peer_server, ("DE", "DMO"))
    try:
        with pytest.raises(PullError) as failed:
            peer_pull(peer=peer)
    finally:
        peer_server.start()
    page_1 = dmo_ids(pages[0].data)
    assert len(pages) == 1 and len(pages[0].data) == 100 and 0 < len(page_1) < expected
    assert stored_before_the_failure, "page 1 was not stored within 60 s"
    summary = failed.value.summary
    assert (summary.completed, summary.pages, summary.received, summary.created) == (False, 1, 100, len(page_1))
    assert f"GET {next_link(pages[0].headers)}: ConnectionError" in summary.error, summary.error
    assert set(Location.objects.filter(cpo__party_id="DMO").values_list("ocpi_id", flat=True)) == page_1
    peer.refresh_from_db()
    assert peer.last_pull_at is None

    monkeypatch.setattr(OcpiClient, "get", get)
    again = peer_pull(peer=peer)
    assert again.full and again.completed
    assert (again.created, again.unchanged) == (expected - len(page_1), len(page_1))
    assert Location.objects.filter(cpo__party_id="DMO").count() == expected


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_outside_a_transaction_batches_are_written_by_the_writing_processes(peer_server, peer, monkeypatch, tmp_path):
    monkeypatch.setattr(pull_writer, "WRITE_BATCH", 25)  # many batches, so that every process writes
    log = tmp_path / "writers.log"
    write = pull_writer.write_batch

    def spy(cpo, items, version):  # runs in the writing process (forked after the patch)
        with open(log, "a") as out:
            out.write(f"{os.getpid()}\n")
        return write(cpo, items, version)

    monkeypatch.setattr(pull_writer, "write_batch", spy)
    expected = published_on(peer_server, ("DE", "DMO"))
    summary = peer_pull(peer=peer)
    assert summary.completed and summary.created == expected > 50
    assert Location.objects.filter(cpo__party_id="DMO").count() == expected
    writers = log.read_text().split()
    assert len(writers) == -(-expected // 25)
    assert str(os.getpid()) not in writers and 1 <= len(set(writers)) <= pull_writer.WRITE_PROCESSES
    assert not billiard.active_children()  # all ended and reaped
    assert not [t for t in threading.enumerate() if t.name.startswith("ocpi-pull-")]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_writing_process_that_fails_fails_the_pull(peer_server, peer, monkeypatch):
    def broken(cpo, items, version):
        raise RuntimeError("database went away")

    monkeypatch.setattr(pull_writer, "write_batch", broken)
    with pytest.raises(PullError, match="database went away") as failed:
        peer_pull(peer=peer)
    assert failed.value.summary.completed is False
    peer.refresh_from_db()
    assert peer.last_pull_at is None
    assert not billiard.active_children()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_writing_process_that_dies_fails_the_pull_instead_of_hanging(peer_server, peer, monkeypatch):
    def dies(cpo, items, version):
        os._exit(3)  # killed, out of memory: no message ever comes back

    monkeypatch.setattr(pull_writer, "write_batch", dies)
    monkeypatch.setattr(pull_writer, "POLL_SECONDS", 0.2)
    with pytest.raises(PullError, match="ended unexpectedly") as failed:
        peer_pull(peer=peer)
    assert failed.value.summary.completed is False
    assert not billiard.active_children()


def _pull_in_a_pool_process(peer_id: int) -> tuple[dict, int]:
    return peer_pull(peer=Peer.objects.get(pk=peer_id)).as_dict(), os.getpid()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_pull_in_a_celery_prefork_child_forks_its_writers_too(peer_server, peer, monkeypatch, tmp_path):
    """Celery's prefork pool runs tasks in daemonic billiard processes, where the standard library's
    multiprocessing refuses to start children; the writers start there all the same."""
    log = tmp_path / "writers.log"
    write = pull_writer.write_batch

    def spy(cpo, items, version):
        with open(log, "a") as out:
            out.write(f"{os.getpid()}\n")
        return write(cpo, items, version)

    monkeypatch.setattr(pull_writer, "write_batch", spy)
    expected = published_on(peer_server, ("DE", "DMO"))
    connections.close_all()  # the pool's process must not share this one's connection
    with billiard.get_context("fork").Pool(1) as pool:
        result, pool_pid = pool.apply(_pull_in_a_pool_process, (peer.pk,))
    assert result["completed"] and result["created"] == expected > 50, result
    assert Location.objects.filter(cpo__party_id="DMO").count() == expected
    writers = set(log.read_text().split())
    assert writers and not writers & {str(os.getpid()), str(pool_pid)}  # written by the pool process's children


def test_the_guard_applies_to_a_peer_on_our_own_network(peer, settings):
    settings.OCPI_ALLOWED_NETWORKS = []
    with pytest.raises(PullError, match="refused"):
        peer_pull(peer=peer)


def test_the_command_pulls_and_reports(peer, capsys):
    call_command("ocpi_pull", peer.name, "--full")
    out = capsys.readouterr().out
    assert "created" in out and "pages" in out
    assert Peer.objects.get(pk=peer.pk).last_pull_at is not None


def test_next_link_reads_rel_next_only():
    assert next_link({"link": '<http://a/x?offset=100&limit=100>; rel="next"'}) == "http://a/x?offset=100&limit=100"
    assert next_link({"Link": '<http://a/prev>; rel="prev"'}) is None
    assert next_link({}) is None


def test_a_get_all_addresses_the_party_whose_answer_covers_every_other():
    """transport_and_format, GET All via Hubs: a hub's own party; a platform's only CPO party; of several
    CPO parties, the platform's own (it has another role too); else nobody (open routing)."""
    from ocpi.models import PeerParty
    from ocpi.pull import _to_party

    def peer_with(*parties):
        peer = Peer.objects.create(name=f"to-{len(parties)}-{token_new()[:6]}", state=Peer.State.CONNECTED)
        for role, cc, pid, *via in parties:
            PeerParty.objects.create(peer=peer, role=role, country_code=cc, party_id=pid, via_hub=bool(via))
        return peer

    assert _to_party(peer_with(("HUB", "NL", "HUB"), ("CPO", "DE", "BHD", "via hub"))) == ("NL", "HUB")
    assert _to_party(peer_with(("CPO", "DE", "ONE"), ("EMSP", "DE", "MSP"))) == ("DE", "ONE")
    assert _to_party(peer_with(("CPO", "DE", "TEN"), ("CPO", "DE", "PLT"), ("EMSP", "DE", "PLT"))) == ("DE", "PLT")
    assert _to_party(peer_with(("CPO", "DE", "AAA"), ("CPO", "DE", "BBB"))) is None

"""The pull's writing processes (ocpi.pull_writer) on their own: what happens when the pulling process dies.
The pulls through them are tested against a real peer in test_pull.py."""

import os
import time

import billiard
import pytest
from django.db import connection, connections

from ocpi import pull_writer

# serialized_rollback: a transactional test's flush without it makes the content types anew, with other ids, and
# the next test that restores the serialized database then meets them (a duplicate key).
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _state(pid: int) -> str | None:
    """The process's state letter, None when it is gone (a zombie nobody reaps counts as gone too)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    return None if state in ("Z", "X") else state


def _start_writers_and_die(pids_file: str) -> None:
    """A pulling process killed mid-pull: its writers started, and no end ever sent to them."""
    writer = pull_writer.PullWriter({}, "2.2.1")
    writer.start()
    with open(pids_file, "w") as out:
        out.write(" ".join(str(process.pid) for process in writer.processes))
    os._exit(9)


def test_the_writing_processes_end_when_the_pulling_process_is_killed(tmp_path, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the writing processes are PostgreSQL's (elsewhere batches are written inline)")
    monkeypatch.setattr(pull_writer, "POLL_SECONDS", 0.2)
    pids_file = tmp_path / "pids"
    connections.close_all()  # the forked process must not share this one's connection
    puller = billiard.get_context("fork").Process(target=_start_writers_and_die, args=(str(pids_file),))
    puller.start()
    puller.join(30)
    assert puller.exitcode == 9
    pids = [int(pid) for pid in pids_file.read_text().split()]
    assert len(pids) == pull_writer.WRITE_PROCESSES
    deadline = time.monotonic() + 15
    while any(_state(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pids if _state(pid)] == []


def test_inside_a_transaction_no_process_is_started(django_db_blocker):
    from django.db import transaction

    with transaction.atomic():
        writer = pull_writer.PullWriter({}, "2.2.1")
        writer.start()
        assert writer.processes == []


def test_a_batch_crosses_to_its_writing_process_as_it_was_parsed():
    """A page's parsed JSON goes over as orjson's text and comes back equal, value for value (types and key
    order too); what orjson would not write as it is (a datetime) goes pickled, unchanged."""
    import pickle
    from datetime import datetime, timezone

    import orjson

    page = orjson.loads(b'[{"id": "L1", "publish": true, "coordinates": {"latitude": "49.1", "longitude": "8.2"}, '
                        b'"evses": [{"uid": "E1", "max": 9223372036854775807, "kwh": 1.5e-7, "n": null, '
                        b'"name": "Stra\\u00dfe \\ud83d\\ude00"}], "facilities": []}]')
    packed = pull_writer._packed(page)
    assert isinstance(packed, bytes)
    back = pull_writer._unpacked(pickle.loads(pickle.dumps(packed)))
    assert back == page and repr(back) == repr(page)
    assert [list(item) for item in back] == [list(item) for item in page]

    made = [{"id": "L2", "last_updated": datetime(2024, 5, 1, tzinfo=timezone.utc)}]
    assert pull_writer._packed(made) is made
    assert pull_writer._unpacked(pickle.loads(pickle.dumps(made))) == made

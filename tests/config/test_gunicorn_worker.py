"""config/gunicorn_worker.py: one waiting worker is woken per connection, not every idle one.

Two processes wait on one listening socket, as two forked gunicorn workers do, and one connection comes.
Nobody accepts it, so it stays pending: with gunicorn's own wait (`select`) both see it; with the
worker's (epoll, EPOLLEXCLUSIVE) one alone is woken and the other sleeps to its timeout.
"""

import multiprocessing
import os
import select
import socket
import time

import pytest
from gunicorn.workers.sync import SyncWorker

from config.gunicorn_worker import ExclusiveSyncWorker

pytestmark = pytest.mark.skipif(not hasattr(select, "EPOLLEXCLUSIVE"), reason="Linux's epoll only")

TIMEOUT = 1.5


def _waiter(worker_class, listener, ready, results):
    worker = worker_class.__new__(worker_class)  # only what `wait` reads of a gunicorn worker
    worker.sockets = [listener]
    worker.PIPE = os.pipe()
    worker.wait_fds = [listener, worker.PIPE[0]]  # as gunicorn's init_process sets them
    worker.notify = lambda: None  # the arbiter's heartbeat file: none here
    ready.put(os.getpid())
    start = time.monotonic()
    woken = worker.wait(TIMEOUT)
    results.put((woken is not None and listener in woken, time.monotonic() - start))


def _woken_by_one_connection(worker_class) -> list[tuple[bool, float]]:
    context = multiprocessing.get_context("fork")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        ready, results = context.Queue(), context.Queue()
        waiters = [context.Process(target=_waiter, args=(worker_class, listener, ready, results)) for _ in range(2)]
        for waiter in waiters:
            waiter.start()
        for _ in waiters:
            ready.get(timeout=10)
        time.sleep(0.4)  # both inside their wait
        with socket.create_connection(listener.getsockname()):
            answers = [results.get(timeout=10) for _ in waiters]
        for waiter in waiters:
            waiter.join(10)
    return answers


def test_one_connection_wakes_one_waiting_worker():
    answers = _woken_by_one_connection(ExclusiveSyncWorker)
    woken = [seconds for got, seconds in answers if got]
    slept = [seconds for got, seconds in answers if not got]
    assert len(woken) == 1 and woken[0] < 1.0, answers
    assert len(slept) == 1 and slept[0] >= TIMEOUT * 0.9, answers


def test_gunicorns_own_wait_wakes_both():
    """What the worker is for: gunicorn's sync worker wakes every idle worker for each connection."""
    answers = _woken_by_one_connection(SyncWorker)
    assert [got for got, _ in answers] == [True, True], answers
    assert all(seconds < 1.0 for _, seconds in answers), answers


def test_a_signal_still_wakes_the_worker():
    """The worker's signal pipe (gunicorn writes a byte there for each signal) ends its wait at once."""
    worker = ExclusiveSyncWorker.__new__(ExclusiveSyncWorker)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        worker.sockets, worker.PIPE, worker.notify = [listener], os.pipe(), lambda: None
        os.write(worker.PIPE[1], b".")
        start = time.monotonic()
        woken = worker.wait(5)
        assert woken == [worker.PIPE[0]] and time.monotonic() - start < 1
        assert worker.wait(0.2) is None  # the byte was read: nothing more to wake it

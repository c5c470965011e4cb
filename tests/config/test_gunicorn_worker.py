"""config/gunicorn_worker.py: one waiting worker is woken per connection, not every idle one, and a worker is
free again once its response is sent.

Two processes wait on one listening socket, as two forked gunicorn workers do, and one connection comes.
Nobody accepts it, so it stays pending: with gunicorn's own wait (`select`) both see it; with the
worker's (epoll, EPOLLEXCLUSIVE) one alone is woken and the other sleeps to its timeout.

Then a real gunicorn with the worker (one of them) serves a small WSGI application to clients that keep
their connection open, send bytes past their request, or a body the application does not read.
"""

import multiprocessing
import os
import runpy
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gunicorn.workers.sync import SyncWorker

from config.gunicorn_worker import ExclusiveSyncWorker

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))

pytestmark = pytest.mark.skipif(not hasattr(select, "EPOLLEXCLUSIVE"), reason="Linux's epoll only")

TIMEOUT = 1.5


def _bare(worker_class, listener):
    """A worker with only what `wait` reads of a gunicorn worker."""
    worker = worker_class.__new__(worker_class)
    worker.sockets = [listener]
    worker.PIPE = os.pipe()
    worker.wait_fds = [listener, worker.PIPE[0]]  # as gunicorn's init_process sets them
    worker.notify = lambda: None  # the arbiter's heartbeat file: none here
    return worker


def _waiter(worker_class, listener, ready, results):
    worker = _bare(worker_class, listener)
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
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        worker = _bare(ExclusiveSyncWorker, listener)
        os.write(worker.PIPE[1], b".")
        start = time.monotonic()
        woken = worker.wait(5)
        assert woken == [worker.PIPE[0]] and time.monotonic() - start < 1
        assert worker.wait(0.2) is None  # the byte was read: nothing more to wake it


def test_the_config_uses_the_worker():
    values = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    assert values["worker_class"] == "config.gunicorn_worker.ExclusiveSyncWorker"


APP = """
def application(environ, start_response):
    size = int(environ.get("HTTP_X_SIZE") or 100)
    if environ.get("HTTP_X_READ") != "no":
        environ["wsgi.input"].read()
    body = bytes(range(256)) * (size // 256) + b"." * (size % 256)
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn, one worker of ours, on a free port."""
    where = tmp_path_factory.mktemp("app")
    (where / "tinyapp.py").write_text(APP)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([GUNICORN, "tinyapp", "--chdir", str(where), "--pythonpath", str(ROOT), "--workers", "1",
                             "--worker-class", "config.gunicorn_worker.ExclusiveSyncWorker",
                             "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(proc.stdout.read().decode()) from None
            time.sleep(0.1)
    yield port
    os.killpg(proc.pid, 15)
    output = proc.communicate(timeout=30)[0].decode()
    assert "Traceback" not in output and "Error" not in output, output


def _request(body: bytes = b"{}", *, size: int = 100, read: bool = True) -> bytes:
    return (b"POST /x HTTP/1.1\r\nHost: t\r\nX-Size: %d\r\nX-Read: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (size, b"yes" if read else b"no", len(body), body))


def _response(conn: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) read to the server's end of the connection."""
    conn.settimeout(10)
    data = bytearray()
    while chunk := conn.recv(65536):
        data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


def _expected(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + b"." * (size % 256)


def test_a_client_keeping_its_connection_open_does_not_hold_the_worker(server):
    """gunicorn's own close reads until the client closes, for up to 2 s: its one worker served the next
    request 2.0 s later. Here it is at once, and the first client has its whole response and the end."""
    first = socket.create_connection(("127.0.0.1", server))
    try:
        first.sendall(_request())
        time.sleep(0.2)  # the response sent; the first client neither reads it nor closes
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", server)) as second:
            second.sendall(_request())
            head, body = _response(second)
        assert head.startswith(b"HTTP/1.1 200") and body == _expected(100)
        assert time.monotonic() - start < 1.0
        head, body = _response(first)
        assert head.startswith(b"HTTP/1.1 200") and body == _expected(100)
    finally:
        first.close()


@pytest.mark.parametrize("extra, read", [(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n" * 50, True),
                                         (b"", False)])
def test_bytes_left_unread_never_cut_the_response_short(server, extra, read):
    """Bytes past the request (a pipelined request the worker will not serve), or a request body the
    application did not read: the connection is left to gunicorn's graceful close, and the client gets
    its whole response (a close with unread bytes would send a reset, which can discard it)."""
    size = 3_000_000  # more than the socket buffers hold: still being sent when the application returns
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server)) as conn:
            body = b"x" * (30_000 if not read else 2)  # gunicorn drains up to 64 KB
            conn.sendall(_request(body, size=size, read=read) + extra)
            time.sleep(0.05)
            head, received = _response(conn)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert received == _expected(size)


def test_each_server_has_a_control_socket_of_its_own():
    """gunicorn's default control socket is one path for every gunicorn of the machine: each one started took
    it from the last and each one stopped deleted it. The config names it after the address served."""
    from types import SimpleNamespace

    from gunicorn.config import Config

    on_starting = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))["on_starting"]

    def control_socket(**settings) -> str:
        cfg = Config()
        for name, value in settings.items():
            cfg.set(name, value)
        on_starting(SimpleNamespace(cfg=cfg))
        return cfg.control_socket

    default = Config().control_socket
    first, second = control_socket(bind=["127.0.0.1:8000"]), control_socket(bind=["127.0.0.1:8001"])
    assert first != second and os.path.dirname(first) == os.path.dirname(second) == os.path.dirname(default)
    assert os.path.basename(first) == "gunicorn-127.0.0.1-8000.ctl"
    assert os.path.basename(control_socket(bind=["unix:/run/evhub/web.sock"])) == "gunicorn-run-evhub-web.sock.ctl"
    assert control_socket(bind=["127.0.0.1:8000"], control_socket="/srv/evhub/web.ctl") == "/srv/evhub/web.ctl"

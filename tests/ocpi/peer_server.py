"""Another evhub, really running, for tests that talk OCPI to it over loopback (no mocks).

`EvhubServer` is one evhub installation: its own PostgreSQL database on the tests' server (named after
the test database: `<test db>_<name>`), its own EVHUB_VAR_DIR in a temporary directory, its own cache
and Celery broker (filesystem, in that directory: nothing shared with the tests' Redis), gunicorn on a
free loopback port with EVHUB_BASE_URL pointing at it and EVHUB_OCPI_ALLOWED_NETWORKS=127.0.0.0/8, and
on request a Celery worker. `manage(...)` runs a management command in its environment and `shell(code)`
runs Python there (the code prints one JSON line, which is returned).

Databases are created from a template migrated once per session, so a server starts in seconds.
The fixtures `evhub_servers` (a factory; everything it started is torn down at the end of the session)
and `peer_server` (one server, party DE*DMO, with demo_load's data and a Celery worker) are in
tests/ocpi/conftest.py, so that the whole session shares one of each: a fixture imported into several test
modules would be one instance per module, each dropping the databases of the others' running servers.

The listening socket is made here (a port of its own, held for the server's life) and handed to gunicorn
(`--bind fd://N`): no other process can take the port between its choice and gunicorn's bind, and a
readiness answer can only come from this server. While stopped (stop_web) the socket is closed, so that
callers meet a refused connection, as with a server that is down.

Needs DATABASE_URL to name a PostgreSQL server whose role may create databases; skips otherwise.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def listening_socket(port: int = 0) -> socket.socket:
    """A listening loopback socket on `port` (0: one the kernel chooses), for gunicorn to inherit."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart after TIME_WAIT connections
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _admin_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        pytest.skip("a second evhub needs DATABASE_URL naming a PostgreSQL server")
    # The maintenance database: the one DATABASE_URL names may not exist yet (pytest makes test_<name>).
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql", path="/postgres"))


def _database_url(name: str) -> str:
    return urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path="/" + name))


def _sql(statement: str) -> None:
    import psycopg

    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(statement)


def drop_database(name: str) -> None:
    _sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def base_env(*, database: str, var_dir: Path) -> dict:
    """The environment of an evhub of its own: nothing inherited that would point it at ours."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("EVHUB_", "DATABASE_", "REDIS_", "CELERY_", "PYTEST", "DJANGO_"))}
    var_dir.mkdir(parents=True, exist_ok=True)
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=_database_url(database),
               EVHUB_VAR_DIR=str(var_dir), EVHUB_OCPI_ALLOWED_NETWORKS="127.0.0.0/8", EVHUB_OCPI_RETRIES="0", EVHUB_OCPI_READ_TIMEOUT="20", PYTHONUNBUFFERED="1",
               EVHUB_OCPI_PAGE_LIMIT="100")  # pulls of the demo's 404 locations take several pages
    return env


class EvhubServer:
    def __init__(self, *, name: str, database: str, var_dir: Path, party: tuple[str, str], extra_env: dict):
        self.name, self.database, self.var_dir = name, database, var_dir
        self.sock: socket.socket | None = listening_socket()
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.party = party
        self.env = base_env(database=database, var_dir=var_dir)
        self.env.update(EVHUB_BASE_URL=self.base_url, PORT=str(self.port), EVHUB_COUNTRY_CODE=party[0],
                        EVHUB_PARTY_ID=party[1], EVHUB_BUSINESS_NAME=f"evhub {name}", **extra_env)
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.log = var_dir / "server.log"

    # --- processes ---
    def start(self, *, workers: int = 2) -> "EvhubServer":
        if self.sock is None:  # after stop_web: the same port again
            try:
                self.sock = listening_socket(self.port)
            except OSError as exc:
                raise RuntimeError(f"{self.name}: port {self.port} was taken while the server was down: {exc}")
        fd = self.sock.fileno()
        with open(self.log, "ab") as out:
            self.web = subprocess.Popen(
                # The config preloads and warms the application before forking (config/warmup.py).
                [GUNICORN, "config.wsgi", "-c", "config/gunicorn.conf.py", "--workers", str(workers),
                 "--bind", f"fd://{fd}", "--log-level", "warning", "--timeout", "120"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                pass_fds=(fd,))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError(f"gunicorn of {self.name} exited: {self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/ocpi/versions")
                conn.getresponse().read()
                conn.close()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn of {self.name} did not answer within 90 s: {self.log_tail()}")

    def start_worker(self) -> "EvhubServer":
        if self.worker is None or self.worker.poll() is not None:
            with open(self.var_dir / "worker.log", "ab") as out:
                self.worker = subprocess.Popen(
                    [PYTHON, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
                     "--without-heartbeat", "--without-gossip", "--without-mingle"],
                    cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop_web(self) -> None:
        _stop(self.web)
        self.web = None
        if self.sock is not None:  # else the kernel would still queue connections for nobody
            # Shut down, not only closed: processes forked from the tests (a pull's writers) hold copies of
            # this socket, and while one is open the port accepts connections that nobody answers.
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # not listening any more
                pass
            self.sock.close()
            self.sock = None

    def restart_web(self) -> None:
        """The same server (database, port, tokens) back after stop_web()."""
        self.stop_web()
        self.start()

    def stop(self) -> None:
        _stop(self.worker)
        self.worker = None
        self.stop_web()

    def log_tail(self, chars: int = 3000) -> str:
        text = ""
        for path in (self.log, self.var_dir / "worker.log"):
            if path.exists():
                text += f"\n--- {path.name} ---\n" + path.read_text(errors="replace")[-chars:]
        return text

    # --- commands in its environment ---
    def manage(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} on {self.name} failed ({done.returncode}):\n"
                               f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def shell(self, code: str, timeout: float = 120):
        """Run Python with Django set up in the server's environment; returns the JSON its last line prints."""
        program = "import django, json\ndjango.setup()\n" + code
        done = subprocess.run([PYTHON, "-c", program], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"shell on {self.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else None

    def admit(self, *, name: str, token: str, parties: list[tuple[str, str, str]]) -> int:
        """A connected peer on this server that calls it with `token`, representing `parties`
        [(role, country_code, party_id)]; a CPO party gets (or keeps) its catalogue tenant here.
        The credentials handshake's result, without the handshake (tests of push and pull); in 2.1.1 it
        plays CPO when it has a CPO party, else eMSP (Peer.v211_role, as `ocpi_invite --role` sets it)."""
        v211_role = "CPO" if any(role == "CPO" for role, _, _ in parties) else "EMSP"
        return self.shell(
            "from locations.models import Cpo\nfrom locations.services import cpo_create\n"
            "from locations.tokens import token_digest\nfrom ocpi.models import Peer, PeerParty\n"
            f"peer = Peer.objects.create(name={name!r}, state='CONNECTED', token_in_digest=token_digest({token!r}), "
            f"v211_role={v211_role!r})\n"
            f"for role, cc, pid in {parties!r}:\n"
            "    cpo = None\n"
            "    if role == 'CPO':\n"
            "        cpo = Cpo.objects.filter(country_code=cc, party_id=pid).first() or "
            "cpo_create(country_code=cc, party_id=pid, owner_name=cc + pid, auto_publish=True)[0]\n"
            "    PeerParty.objects.create(peer=peer, role=role, country_code=cc, party_id=pid, cpo=cpo)\n"
            "print(json.dumps(peer.pk))\n")

    def demo_credentials(self) -> dict:
        return json.loads((self.var_dir / "demo-credentials.json").read_text())

    def url(self, path: str) -> str:
        return self.base_url + path


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: gunicorn's master and its workers
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


class EvhubServers:
    """Creates servers on databases cloned from one migrated template; stops and drops them all at close()."""

    def __init__(self, tmp_root: Path, prefix: str):
        self.tmp_root, self.prefix = tmp_root, prefix
        self.template = f"{prefix}_tpl"
        self.servers: list[EvhubServer] = []
        self._migrated = False

    def _template_ready(self) -> None:
        if self._migrated:
            return
        drop_database(self.template)
        _sql(f'CREATE DATABASE "{self.template}"')
        env = base_env(database=self.template, var_dir=self.tmp_root / "template")
        done = subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"migrate of the peer template failed:\n{done.stderr[-4000:]}")
        self._migrated = True

    def create(self, name: str, *, party: tuple[str, str], extra_env: dict | None = None,
               web: bool = True) -> EvhubServer:
        if any(server.name == name for server in self.servers):
            raise ValueError(f"a server named {name!r} exists already in this session")
        self._template_ready()
        database = f"{self.prefix}_{name}"
        drop_database(database)
        _sql(f'CREATE DATABASE "{database}" TEMPLATE "{self.template}"')
        server = EvhubServer(name=name, database=database, var_dir=self.tmp_root / name, party=party,
                             extra_env=extra_env or {})
        self.servers.append(server)
        if web:
            server.start()
        return server

    def discard(self, server: EvhubServer) -> None:
        """Stop one server and drop its database (a module done with it frees the machine for the rest)."""
        server.stop()
        drop_database(server.database)
        self.servers.remove(server)

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        for server in self.servers:
            drop_database(server.database)
        if self._migrated:
            drop_database(self.template)


def session_servers(tmp_root: Path) -> EvhubServers:
    """The session's factory, its databases named after the test database (skips without PostgreSQL)."""
    from django.conf import settings

    _admin_url()
    name = settings.DATABASES["default"]["NAME"]
    return EvhubServers(tmp_root, name if name.startswith("test_") else f"test_{name}")


def demo_peer(servers: EvhubServers, name: str) -> EvhubServer:
    """A server whose own party is DE*DMO, the demo CPO's: 404 published locations (demo_load), with a
    Celery worker, so that what it pushes arrives without help."""
    server = servers.create(name, party=("DE", "DMO"))
    server.manage("demo_load")
    server.start_worker()
    return server


def peer_connected_here(server: EvhubServer, *, token: str, parties: list[tuple[str, str, str]],
                        version: str | None = None, name: str | None = None):
    """This process's side of `server.admit(...)`: a CONNECTED Peer for `server`, its endpoints read
    from the server's real versions endpoint, calling it with `token`. Needs OCPI_ALLOWED_NETWORKS to
    allow loopback (the `settings` fixture)."""
    from locations.models import Cpo
    from locations.services import cpo_create
    from locations.tokens import secret_encrypt
    from ocpi.handshake import peer_discover
    from ocpi.models import Peer, PeerParty

    discovery = peer_discover(versions_url=server.url("/ocpi/versions"), token=token, version=version)
    peer = Peer.objects.create(
        name=name or server.name, state=Peer.State.CONNECTED, token_out=secret_encrypt(token),
        version=discovery.version, versions_url=server.url("/ocpi/versions"), endpoints=discovery.endpoints,
        roles=[{"role": role, "country_code": cc, "party_id": pid} for role, cc, pid in parties])
    for role, cc, pid in parties:
        cpo = None
        if role == "CPO":
            cpo = Cpo.objects.filter(country_code=cc, party_id=pid).first() or \
                cpo_create(country_code=cc, party_id=pid, owner_name=f"{cc}{pid}", auto_publish=True)[0]
        PeerParty.objects.create(peer=peer, role=role, country_code=cc, party_id=pid, cpo=cpo)
    return peer

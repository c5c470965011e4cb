"""Callers, peers and a fake outside platform for the OCPI tests.

- `ocpi_get/post/put/patch/delete(client, url, token, body=None, version="2.2.1", **headers)`: a call with
  `Authorization: Token <base64(token)>` (2.2.1) or the plain token (2.1.1).
- `connected_peer`: a CONNECTED Peer whose token (`peer.token`) we know, with a CPO party linked to alpha.
- `invited_peer`: an INVITED Peer with its token A (`peer.token_a`).
- `loopback`: outbound calls may reach 127.0.0.0/8 (the guard refuses it otherwise), without retries.
- `fake_platform`: another OCPI platform, a real HTTP server on loopback that answers what a test sets.
- `evhub_servers`, `peer_server`: other evhub servers, really running (tests/ocpi/peer_server.py), one
  factory and one demo peer for the whole session.
"""

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from locations.tokens import token_digest, token_new
from ocpi.models import Peer, PeerParty
from ocpi.services import peer_invite
from tests.ocpi.peer_server import EvhubServer, demo_peer, session_servers

V221, V211 = "2.2.1", "2.1.1"


def ocpi_auth(token: str, version: str = V221) -> str:
    return f"Token {token if version == V211 else base64.b64encode(token.encode()).decode()}"


def _call(client, method: str, url: str, token: str | None, body=None, version: str = V221, **headers):
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = ocpi_auth(token, version)
    if body is not None and not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    kwargs = {"content_type": "application/json", "data": body} if body is not None else {}
    return getattr(client, method)(url, **kwargs, **headers)


def ocpi_get(client, url, token, **kwargs):
    return _call(client, "get", url, token, **kwargs)


def ocpi_post(client, url, token, body=None, **kwargs):
    return _call(client, "post", url, token, body, **kwargs)


def ocpi_put(client, url, token, body=None, **kwargs):
    return _call(client, "put", url, token, body, **kwargs)


def ocpi_patch(client, url, token, body=None, **kwargs):
    return _call(client, "patch", url, token, body, **kwargs)


def ocpi_delete(client, url, token, **kwargs):
    return _call(client, "delete", url, token, **kwargs)


@pytest.fixture
def connected_peer(alpha) -> Peer:
    token = token_new()
    peer = Peer.objects.create(name="Peer Alpha", state=Peer.State.CONNECTED, token_in_digest=token_digest(token),
                               version=V221, versions_url="https://peer.example.com/ocpi/versions")
    PeerParty.objects.create(peer=peer, role="CPO", country_code=alpha.country_code, party_id=alpha.party_id, cpo=alpha)
    peer.token = token
    return peer


@pytest.fixture
def invited_peer(db) -> Peer:
    peer, token_a = peer_invite(name="Invited Platform")
    peer.token_a = token_a
    return peer


@pytest.fixture
def loopback(settings):
    settings.OCPI_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.OCPI_RETRIES = 0
    settings.OCPI_CONNECT_TIMEOUT = 2.0
    settings.OCPI_READ_TIMEOUT = 5.0
    return settings


# --- a fake platform on loopback ------------------------------------------------------------------------

@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: object


@dataclass
class FakePlatform:
    """Answers `routes[(method, path)]`: (http_status, body[, headers]) where body is a dict/list (sent as
    JSON) or bytes (sent as is), or a callable(Seen) returning that. Unknown routes: 404."""

    url: str
    routes: dict = field(default_factory=dict)
    seen: list = field(default_factory=list)
    token: str | None = None  # when set, a call without it is answered 401

    def answer(self, method: str, path: str, data=None, *, status_code: int = 1000, http_status: int = 200) -> None:
        self.routes[(method, path)] = (http_status, {"data": data, "status_code": status_code,
                                                     "status_message": "Success" if status_code == 1000 else "Error",
                                                     "timestamp": "2024-05-01T10:00:00Z"})

    def serve_versions(self, versions: tuple = (V221,), *, token: str | None = None,
                       credentials_answer: dict | None = None) -> None:
        """A versions list, version details with credentials and locations, and (optionally) the answer to
        a POST/PUT of credentials. With `token`, calls without it get a 401."""
        self.answer("GET", "/versions", [{"version": v, "url": f"{self.url}/{v}"} for v in versions])
        for version in versions:
            endpoints = [{"identifier": "credentials", "url": f"{self.url}/{version}/credentials"},
                         {"identifier": "locations", "url": f"{self.url}/{version}/locations"}]
            if version != V211:
                for endpoint in endpoints:
                    endpoint["role"] = "SENDER"
            self.answer("GET", f"/{version}", {"version": version, "endpoints": endpoints})
            if credentials_answer is not None:
                for method in ("POST", "PUT"):
                    self.answer(method, f"/{version}/credentials", credentials_answer)
                self.answer("DELETE", f"/{version}/credentials")
        self.token = token

    def requests(self, method: str, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.method == method and seen.path == path]


def _handler(platform: FakePlatform):
    class Handler(BaseHTTPRequestHandler):
        def _any(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            path = self.path.split("?", 1)[0]
            seen = Seen(self.command, path, dict(self.headers), body)
            platform.seen.append(seen)
            status, answer, *extra = self._route(seen)
            payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in (extra[0] if extra else {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _route(self, seen: Seen):
            if platform.token is not None and seen.headers.get("Authorization") not in (
                    ocpi_auth(platform.token, V221), ocpi_auth(platform.token, V211)):
                return 401, {"status_code": 2000, "status_message": "Unauthorized", "timestamp": "2024-05-01T10:00:00Z"}
            route = platform.routes.get((seen.method, seen.path))
            if route is None:
                return 404, {"status_code": 2000, "status_message": "Not found", "timestamp": "2024-05-01T10:00:00Z"}
            if callable(route):
                return route(seen)
            return route

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def platform_factory(loopback):
    """Starts fake platforms, on 127.0.0.1 or another loopback address (127.0.0.2 ...); all stopped after."""
    servers = []

    def start(host: str = "127.0.0.1") -> FakePlatform:
        server = ThreadingHTTPServer((host, 0), None)
        platform = FakePlatform(url=f"http://{host}:{server.server_address[1]}")
        server.RequestHandlerClass = _handler(platform)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return platform

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_platform(platform_factory) -> FakePlatform:
    return platform_factory()


# --- other evhub servers on loopback (tests/ocpi/peer_server.py) ---------------------------------------
# Here, not imported into test modules: an imported session fixture is one instance per module.

@pytest.fixture(scope="session")
def evhub_servers(tmp_path_factory, django_db_setup, django_db_blocker):
    servers = session_servers(tmp_path_factory.mktemp("evhub-servers"))
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture(scope="session")
def peer_server(evhub_servers) -> EvhubServer:
    """A second evhub (DE*DMO, the demo data, a Celery worker) shared by the session's pull and push tests."""
    return demo_peer(evhub_servers, "peer")

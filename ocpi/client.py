"""The one outbound HTTP client for URLs that peers give us (versions, endpoints, Link headers).

A peer chooses these URLs, so every call is guarded against reaching our own network: each connection
(the first and every redirect's) resolves its host once, every address of the answer must be public
unless it is in OCPI_ALLOWED_NETWORKS, and the socket connects to a checked address, never to the name,
so that no packet reaches a refused address and no second DNS answer can differ from the checked one.
Idempotent calls are retried with backoff; every call has timeouts.
"""

import base64
import ipaddress
import logging
import socket
import sys
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from ocpi.status import V211

logger = logging.getLogger(__name__)


class PeerError(Exception):
    """A call to a peer that gave no usable OCPI answer (refused address, network, timeout, not OCPI)."""

    http_status: int | None = None  # set when the peer did answer, with something that is no OCPI envelope


class AddressRefused(PeerError):
    pass


class PeerTimeout(PeerError):
    """The peer took the request but gave no answer within OCPI_READ_TIMEOUT (a hub answers 4002)."""


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if getattr(ip, "ipv4_mapped", None):
        ip = ip.ipv4_mapped
    for network in settings.OCPI_ALLOWED_NETWORKS:
        if ip in ipaddress.ip_network(network, strict=False):
            return True
    return ip.is_global and not ip.is_multicast


_ALLOWED_HINT = "EVHUB_OCPI_ALLOWED_NETWORKS lists networks that peers may use"


def _kind(address: str) -> str:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    ip = getattr(ip, "ipv4_mapped", None) or ip
    for kind in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    return "not a public address"


def _refuse(host: str, address: str) -> AddressRefused:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if getattr(ip, "ipv4_mapped", None):
        address = f"{address} ({ip.ipv4_mapped})"
    reason = _kind(str(ip))
    logger.warning("Outbound call refused: %s resolves to %s, %s", host, address, reason)
    return AddressRefused(f"{host} resolves to {address}, {reason}; refused ({_ALLOWED_HINT})")


def _checked_addresses(host: str, port: int) -> list[tuple]:
    """getaddrinfo's answer for `host`, every address of it allowed; AddressRefused before any packet if not.

    The whole name is refused when one of its addresses is: a name that points both outside and inside
    is no peer's, and connecting to the allowed part only would still tell an attacker which names point
    inside (by the difference between refused and working), and would depend on answer order."""
    name = host.strip("[]")
    try:
        literal = ipaddress.ip_address(name)
    except ValueError:
        literal = None
    if literal is not None and not address_allowed(name):
        # Refused as written, so that a link-local literal with an unknown zone is refused, not unresolvable.
        raise _refuse(host, name)
    # The resolver, not ipaddress, decides what a name means: it reads 2852039166, 0xa9fea9fe, 10.1 as IPv4.
    answer = socket.getaddrinfo(name, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    for *_, sockaddr in answer:
        if not address_allowed(sockaddr[0]):
            raise _refuse(host, sockaddr[0])
    return answer


class _Guarded:
    """Resolves the host once, checks every address, and connects only to a checked address, given as an
    address, so that nothing resolves the name again (DNS rebinding) and no packet, not even a SYN, goes
    to a refused address: the refusal is the same whether a port there is open or closed. Redirects
    make new connections, so each hop comes through here too. TLS still uses `self.host` (the name) for
    SNI and certificate matching, and the Host header is the name."""

    def _new_conn(self):
        try:
            answer = _checked_addresses(self._dns_host, self.port)
        except (socket.gaierror, UnicodeError) as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        try:
            sock = self._connect_to(answer)
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock

    def _connect_to(self, answer: list[tuple]) -> socket.socket:
        error = OSError("getaddrinfo returns an empty list")
        for family, socktype, proto, _, sockaddr in answer:
            sock = socket.socket(family, socktype, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                sock.settimeout(self.timeout)  # urllib3 has already resolved its default to a number or None
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error


class _GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def _session(retries: int) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the guard must see the real peer
    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=0.5,
                  status_forcelist=(502, 503, 504),
                  allowed_methods=frozenset({"GET", "PUT", "DELETE"}), raise_on_status=False,
                  respect_retry_after_header=True)
    adapter = _GuardedAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


@dataclass
class Reply:
    """A peer's answer: HTTP status, the envelope's parts, and the headers (Link, X-Total-Count)."""

    http_status: int
    status_code: int | None
    status_message: str
    data: object
    headers: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.http_status < 300 and self.status_code is not None and 1000 <= self.status_code < 2000


class OcpiClient:
    """Calls one peer with one token. `version` decides the token's form: base64 for 2.2.1, plain for 2.1.1.

    Routing headers (2.2.1): OCPI-from-* is `from_party` (the party a request is sent for: a hub that
    forwards a request, or sends a party's object, names that party), else our own party; OCPI-to-* is
    `to_party`. Both can be given per request too. `retries`: OCPI_RETRIES unless given (a hub forwarding
    a request makes one attempt: its caller retries, and would time out while the hub retried).
    """

    def __init__(self, *, token: str | None, version: str, to_party: tuple[str, str] | None = None,
                 from_party: tuple[str, str] | None = None, retries: int | None = None):
        self.token, self.version, self.to_party, self.from_party = token, version, to_party, from_party
        self.session = _session(settings.OCPI_RETRIES if retries is None else retries)

    def headers(self, *, routed: bool, from_party: tuple[str, str] | None = None,
                to_party: tuple[str, str] | None = None, correlation_id: str | None = None) -> dict:
        headers = {"Accept": "application/json", "X-Request-ID": str(uuid.uuid4()),
                   "X-Correlation-ID": correlation_id or str(uuid.uuid4())}
        if self.token:
            token = self.token if self.version == V211 else base64.b64encode(self.token.encode()).decode()
            headers["Authorization"] = f"Token {token}"
        if routed and self.version != V211:
            from_party = from_party or self.from_party or (settings.EVHUB_COUNTRY_CODE, settings.EVHUB_PARTY_ID)
            headers["OCPI-from-country-code"], headers["OCPI-from-party-id"] = from_party
            to_party = to_party or self.to_party
            if to_party:
                headers["OCPI-to-country-code"], headers["OCPI-to-party-id"] = to_party
        return headers

    def request(self, method: str, url: str, *, json=None, params: dict | None = None, routed: bool = True,
                content: bytes | None = None, from_party: tuple[str, str] | None = None,
                to_party: tuple[str, str] | None = None, correlation_id: str | None = None) -> Reply:
        """`content`: a JSON body already encoded (a forwarded request's, sent as received)."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise PeerError(f"Not an http(s) URL: {url[:200]!r}")
        headers = self.headers(routed=routed, from_party=from_party, to_party=to_party,
                               correlation_id=correlation_id)
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = self.session.request(
                method, url, json=json, data=content, params=params, headers=headers,
                timeout=(settings.OCPI_CONNECT_TIMEOUT, settings.OCPI_READ_TIMEOUT),
            )
        except AddressRefused:
            raise
        except requests.RequestException as exc:
            # A refused address raised inside urllib3 arrives wrapped; give the clear reason back.
            cause = exc
            while cause is not None and not isinstance(cause, AddressRefused):
                cause = cause.__cause__ or cause.__context__ or (cause.args[0] if cause.args and
                                                                 isinstance(cause.args[0], Exception) else None)
            if isinstance(cause, AddressRefused):
                raise AddressRefused(str(cause)) from None
            if _read_timed_out(exc):
                raise PeerTimeout(f"{method} {url}: ReadTimeout: no answer within "
                                  f"{settings.OCPI_READ_TIMEOUT:g} s") from None
            raise PeerError(f"{method} {url}: {type(exc).__name__}: {exc}") from None
        try:
            # orjson: a page of 1,000 locations parses in a third of the time of json (requests' .json()).
            body = orjson.loads(response.content)
        except ValueError:  # orjson.JSONDecodeError is one; so are bodies that are not UTF-8
            body = ValueError
        if not isinstance(body, dict):
            # The status still tells a refusal (4xx) from an outage (5xx): the outbox parks on one, retries the other.
            error = PeerError(f"{method} {url}: HTTP {response.status_code}, the answer is not "
                              f"{'JSON' if body is ValueError else 'an OCPI envelope'}")
            error.http_status = response.status_code
            raise error
        status_code = body.get("status_code")
        return Reply(http_status=response.status_code,
                     status_code=status_code if isinstance(status_code, int) else None,
                     status_message=str(body.get("status_message") or ""), data=body.get("data"),
                     headers=dict(response.headers))

    def get(self, url: str, **kwargs) -> Reply:
        return self.request("GET", url, **kwargs)

    def put(self, url: str, data, **kwargs) -> Reply:
        return self.request("PUT", url, json=data, **kwargs)

    def patch(self, url: str, data, **kwargs) -> Reply:
        return self.request("PATCH", url, json=data, **kwargs)

    def post(self, url: str, data, **kwargs) -> Reply:
        return self.request("POST", url, json=data, **kwargs)

    def delete(self, url: str, **kwargs) -> Reply:
        return self.request("DELETE", url, **kwargs)


def _read_timed_out(exc: BaseException) -> bool:
    """Whether the connection was made but the answer did not come in time. requests raises ReadTimeout, or,
    once urllib3's retries are spent, a ConnectionError around a MaxRetryError whose reason is the timeout."""
    seen, todo = set(), [exc]
    while todo:
        error = todo.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, (requests.ReadTimeout, ReadTimeoutError)):
            return True
        if isinstance(error, ConnectTimeoutError):
            return False
        linked = [error.__cause__, error.__context__, getattr(error, "reason", None), *getattr(error, "args", ())]
        todo += [item for item in linked if isinstance(item, BaseException)]
    return False

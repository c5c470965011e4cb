"""The outbound guard decides before the first packet: resolve, check every address, connect to a checked one.

Every test here runs with this process's sockets held to loopback: `socket.socket.connect` records each
address and raises before the kernel sees one that is not loopback, so a guard that connects before it
checks fails the test instead of sending a SYN. Where a name must resolve to an internal address, the
DNS answer (the outside world) is faked by `dns`; everything else is the real client, the real urllib3
and a real HTTP(S) server on 127.0.0.1.
"""

import datetime
import ipaddress
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ocpi.client import AddressRefused, OcpiClient, PeerError
from tests.ocpi.conftest import V221

pytestmark = pytest.mark.django_db

TOKEN = "guard-secret-token"


class LeftLoopback(Exception):
    """Not an OSError, so that no layer of the client can take it for a failed connection and retry."""


def _is_loopback(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX
        return True
    try:
        ip = ipaddress.ip_address(address[0].split("%", 1)[0])
    except ValueError:  # a name: connect() would resolve it itself, behind the guard's back
        return False
    return (ip.ipv4_mapped or ip).is_loopback if ip.version == 6 else ip.is_loopback


@pytest.fixture(autouse=True)
def connects(monkeypatch) -> list:
    """Every address this process's sockets connect to, in order."""
    seen = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def held(address):
        seen.append(address)
        if not _is_loopback(address):
            raise LeftLoopback(f"connect({address!r}) would leave loopback")

    def connect(self, address):
        held(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        held(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return seen


@pytest.fixture
def dns(monkeypatch) -> dict:
    """`dns[name] = [address, ...]` is what a resolver answers for `name`; other names resolve as usual.
    `dns["asked"]` lists the names asked for."""
    answers = {"asked": []}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        answers["asked"].append(host)
        if host not in answers:
            return real_getaddrinfo(host, port, family, type, proto, flags)
        result = []
        for address in answers[host]:
            if ":" in address:
                result.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port), 0, 0)))
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port))))
        return result

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def _refused(url: str, caplog) -> AddressRefused:
    caplog.set_level(logging.WARNING, logger="ocpi.client")
    with pytest.raises(AddressRefused) as refused:
        OcpiClient(token=TOKEN, version=V221).get(url)
    return refused.value


def _refusal_logged(caplog, host: str, address: str) -> None:
    records = [r for r in caplog.records if r.name == "ocpi.client" and r.levelno == logging.WARNING]
    assert records, "a refusal must be logged"
    line = records[-1].getMessage()
    assert host in line and address in line and "refused" in line
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


# --- forms that ipaddress does not read, but the resolver does ------------------------------------------

@pytest.mark.parametrize("host, address", [
    ("2852039166", "169.254.169.254"),
    ("0xa9fea9fe", "169.254.169.254"),
    ("0251.0376.0251.0376", "169.254.169.254"),
    ("169.254.43518", "169.254.169.254"),
    ("10.1", "10.0.0.1"),
    ("167772161", "10.0.0.1"),
    ("0x0a.0x00.0x00.0x01", "10.0.0.1"),
])
def test_non_canonical_ipv4_forms_are_refused_without_a_connect(loopback, connects, caplog, host, address):
    # The resolver itself must read the form as the internal address, or this test proves nothing.
    assert {info[4][0] for info in socket.getaddrinfo(host, 80, 0, socket.SOCK_STREAM)} == {address}
    refused = _refused(f"http://{host}/latest/meta-data/", caplog)
    assert address in str(refused)
    assert connects == []
    _refusal_logged(caplog, host, address)


@pytest.mark.parametrize("host, address", [
    ("169.254.169.254.", "169.254.169.254"),
    ("metadata.google.internal.", "169.254.169.254"),
    ("localhost.", "127.0.0.1"),
])
def test_a_trailing_dot_name_is_resolved_and_refused(settings, loopback, dns, connects, caplog, host, address):
    settings.OCPI_ALLOWED_NETWORKS = []
    dns[host] = [address]
    _refused(f"http://{host}/x", caplog)
    assert connects == [] and dns["asked"] == [host]
    _refusal_logged(caplog, host.rstrip("."), address)


@pytest.mark.parametrize("url, address", [
    ("http://[::ffff:169.254.169.254]/latest/", "169.254.169.254"),
    ("http://[::ffff:a9fe:a9fe]/latest/", "169.254.169.254"),
    ("http://[::ffff:127.0.0.1]:{port}/x", "127.0.0.1"),
    ("http://[::1]:{port}/x", "::1"),
    ("http://[fe80::1%25eth0]/x", "fe80::1"),
    ("http://[fe80::1%25lo]/x", "fe80::1"),
])
def test_ipv6_forms_are_refused_without_a_connect(fake_platform, settings, connects, caplog, url, address):
    settings.OCPI_ALLOWED_NETWORKS = []  # loopback too is refused here
    port = fake_platform.url.rsplit(":", 1)[1]
    refused = _refused(url.format(port=port), caplog)
    assert address in str(refused) and connects == [] and fake_platform.seen == []
    assert any(address in r.getMessage() for r in caplog.records if r.name == "ocpi.client")


@pytest.mark.parametrize("answer, inside", [
    (["93.184.215.14", "10.0.0.1"], "10.0.0.1"),
    (["10.0.0.1", "93.184.215.14"], "10.0.0.1"),
    (["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "fd00::1"], "fd00::1"),
])
def test_a_name_with_one_public_and_one_private_address_is_refused_whole(loopback, dns, connects, caplog, answer,
                                                                         inside):
    dns["mixed.example"] = answer
    refused = _refused("https://mixed.example/ocpi/versions", caplog)
    assert inside in str(refused)
    assert connects == []  # not even to the public one: a name that also points inside is no peer's
    _refusal_logged(caplog, "mixed.example", inside)


def test_the_answer_is_the_same_for_open_and_closed_ports(fake_platform, settings, dns, connects):
    settings.OCPI_ALLOWED_NETWORKS = []
    dns["intranet.example"] = ["127.0.0.1"]
    open_port = fake_platform.url.rsplit(":", 1)[1]
    answers = []
    for port in (open_port, "9"):
        for host in ("intranet.example", "localhost"):
            with pytest.raises(PeerError) as refused:
                OcpiClient(token=TOKEN, version=V221).get(f"http://{host}:{port}/versions")
            answers.append((host, type(refused.value), str(refused.value)))
    assert answers[:2] == answers[2:] and all(kind is AddressRefused for _, kind, _ in answers)
    assert connects == [] and fake_platform.seen == []


# --- redirects: every hop is a new connection, checked as the first ---------------------------------------

@pytest.mark.parametrize("target, address", [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ("http://2852039166/latest/meta-data/", "169.254.169.254"),
    ("http://0x0a.0x00.0x00.0x01:8080/admin", "10.0.0.1"),
    ("http://[::ffff:10.0.0.1]/", "10.0.0.1"),
])
def test_a_redirect_to_a_refused_address_never_connects(fake_platform, connects, caplog, target, address):
    fake_platform.routes[("GET", "/versions")] = (302, b"", {"Location": f"{fake_platform.url}/hop"})
    fake_platform.routes[("GET", "/hop")] = (307, b"", {"Location": target})
    refused = _refused(f"{fake_platform.url}/versions", caplog)
    assert address in str(refused)
    assert [seen.path for seen in fake_platform.seen] == ["/versions", "/hop"]
    assert connects and all(_is_loopback(address) for address in connects)


def test_a_redirect_to_an_internal_name_never_connects(fake_platform, dns, connects, caplog):
    dns["metadata.internal"] = ["169.254.169.254"]
    fake_platform.routes[("GET", "/versions")] = (301, b"", {"Location": "http://metadata.internal/"})
    _refused(f"{fake_platform.url}/versions", caplog)
    assert all(_is_loopback(address) for address in connects)
    _refusal_logged(caplog, "metadata.internal", "169.254.169.254")


# --- what the guard lets through still works -----------------------------------------------------------

def test_an_allowed_peer_is_called_by_name_at_the_address_that_was_checked(fake_platform, dns, connects):
    dns["peer.example"] = ["127.0.0.1"]
    fake_platform.answer("GET", "/versions", [{"version": "2.2.1", "url": "x"}])
    port = int(fake_platform.url.rsplit(":", 1)[1])
    reply = OcpiClient(token=TOKEN, version=V221).get(f"http://peer.example:{port}/versions")
    assert reply.ok and reply.data == [{"version": "2.2.1", "url": "x"}]
    assert fake_platform.seen[0].headers["Host"] == f"peer.example:{port}"
    # One answer, and the connection went to it: nothing resolved the name again after the check.
    assert dns["asked"] == ["peer.example"] and connects == [("127.0.0.1", port)]


def test_an_allowed_literal_peer_still_works(fake_platform, connects):
    fake_platform.answer("GET", "/versions", [])
    assert OcpiClient(token=TOKEN, version=V221).get(f"{fake_platform.url}/versions").ok
    assert connects and all(address[0] == "127.0.0.1" for address in connects)


def _self_signed(tmp_path, name: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def tls_peer(tmp_path, loopback):
    """An HTTPS server on 127.0.0.1 with a certificate for peer.example only; records the SNI it was sent."""
    cert_file, key_file = _self_signed(tmp_path, "peer.example")
    names = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda sock, name, ctx: names.append(name)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            payload = b'{"data": [], "status_code": 1000, "status_message": "Success"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], cert_file, names
    server.shutdown()
    server.server_close()


def test_tls_is_verified_against_the_name_while_the_socket_goes_to_the_checked_address(tls_peer, dns, connects):
    port, cert_file, names = tls_peer
    dns["peer.example"] = ["127.0.0.1"]
    client = OcpiClient(token=TOKEN, version=V221)
    client.session.verify = str(cert_file)
    assert client.get(f"https://peer.example:{port}/versions").ok
    assert names == ["peer.example"] and connects == [("127.0.0.1", port)]


def test_tls_still_refuses_a_certificate_for_another_name(tls_peer, dns, connects):
    port, cert_file, _ = tls_peer
    dns["other.example"] = ["127.0.0.1"]
    client = OcpiClient(token=TOKEN, version=V221)
    client.session.verify = str(cert_file)
    with pytest.raises(PeerError, match="SSL|certificate|hostname"):
        client.get(f"https://other.example:{port}/versions")

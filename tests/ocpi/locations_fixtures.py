"""Callers and helpers of the Locations module's tests (sender, receiver, conformance).

Peers are made directly as rows (no credentials handshake): a CONNECTED Peer whose token we know, with a
CPO PeerParty linked to a catalogue CPO. `alpha_peer` pushes as alpha (DE/ALP), `bravo_peer` as bravo
(DE/BRV), `emsp_peer` is an eMSP with no CPO party at all.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest
from django.test import Client

from locations import services
from locations.enums import Moderation
from locations.models import Cpo, Location
from locations.tokens import token_digest
from ocpi.models import Peer, PeerParty

V221, V211 = "2.2.1", "2.1.1"


@dataclass
class Caller:
    """An OCPI caller: its token, and the way its version sends it (2.2.1 base64, 2.1.1 plain)."""

    client: Client
    token: str
    version: str = V221
    peer: Peer | None = None

    def headers(self) -> dict:
        token = self.token if self.version == V211 else base64.b64encode(self.token.encode()).decode()
        return {"HTTP_AUTHORIZATION": f"Token {token}"}

    def get(self, url: str, **params):
        return self.client.get(url, params, **self.headers())

    def put(self, url: str, body):
        return self.client.put(url, _body(body), content_type="application/json", **self.headers())

    def patch(self, url: str, body):
        return self.client.patch(url, _body(body), content_type="application/json", **self.headers())

    def as_version(self, version: str) -> "Caller":
        return Caller(self.client, self.token, version, self.peer)


def _body(body) -> str | bytes:
    return body if isinstance(body, (str, bytes)) else json.dumps(body)


def connected_peer(name: str, token: str, *, cpos: list[Cpo] = (), emsp: tuple[str, str] | None = None,
                   version: str = V221) -> Peer:
    peer = Peer.objects.create(name=name, state=Peer.State.CONNECTED, token_in_digest=token_digest(token),
                               version=version)
    for cpo in cpos:
        PeerParty.objects.create(peer=peer, role="CPO", country_code=cpo.country_code, party_id=cpo.party_id, cpo=cpo)
    if emsp:
        PeerParty.objects.create(peer=peer, role="EMSP", country_code=emsp[0], party_id=emsp[1])
    return peer


@pytest.fixture
def alpha_peer(alpha, client) -> Caller:
    token = "alpha-peer-token-0001"
    return Caller(client, token, peer=connected_peer("Alpha back end", token, cpos=[alpha]))


@pytest.fixture
def bravo_peer(bravo) -> Caller:
    token = "bravo-peer-token-0002"
    return Caller(Client(), token, peer=connected_peer("Bravo back end", token, cpos=[bravo]))


@pytest.fixture
def emsp_peer(db) -> Caller:
    token = "emsp-peer-token-0003"
    return Caller(Client(), token, peer=connected_peer("Roaming eMSP", token, emsp=("NL", "EMS")))


def published(cpo: Cpo, payload: dict, *, version: str = V221) -> Location:
    """A location of `cpo` stored through the one ingestion path, then published by the hub."""
    location = services.location_upsert(cpo=cpo, data=payload, version=version).instance
    services.location_moderate(location=location, moderation=Moderation.PUBLISHED)
    return Location.objects.get(pk=location.pk)


def ok(response, status: int = 200) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body["status_code"] == 1000, body
    assert body["timestamp"].endswith("Z")
    return body


def refused(response, http_status: int, status_code: int) -> dict:
    body = response.json()
    assert (response.status_code, body["status_code"]) == (http_status, status_code), body
    assert "data" not in body or body["data"] is None
    return body

"""The OCPI Locations receiver, fuzzed: a connected CPO peer (alpha) PUTs and PATCHes generated Locations,
EVSEs and connectors, valid and mutated, to /ocpi/2.2.1/emsp/locations/{country_code}/{party_id}/...

Every answer is no 5xx and OCPI's envelope. An answer other than 1000 leaves what is stored exactly as it
was (every row of the catalogue's tables, the outbox and the lookup tables); a 1000 stored something the
sender reads back (GET /ocpi/2.2.1/cpo/locations/... with alpha's token C), and what the sender serves is
taken back by the receiver and served the same.
"""

from __future__ import annotations

import base64
import json
import re
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from locations import services
from locations.models import (Capability, Connector, ConnectorType, Evse, Facility, Location, ParkingRestriction,
                              ParkingTypeCode, PaymentType)
from ocpi.models import OutboxEntry
from tests.conftest import location_payload
from tests.fuzz import ocpi_strategies as ocpi
from tests.fuzz.conftest import fuzz_settings
from tests.fuzz.snapshots import changed_tables, table_digests
from tests.ocpi.locations_fixtures import alpha_peer  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

RECEIVER = "/ocpi/2.2.1/emsp/locations/DE/ALP"
SENDER = "/ocpi/2.2.1/cpo/locations"
STORED = (Location, Evse, Connector, OutboxEntry, ConnectorType, Facility, Capability, PaymentType, ParkingTypeCode,
          ParkingRestriction)
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

# L1 is stored before each test; l1 differs in case only (a CiString: OCPI means the same object); L2 is new.
LOCATION_IDS = st.sampled_from(["L1", "L1", "l1", "L2"])
HOSTILE_IDS = st.sampled_from(["A" * 37, "café", "a b", "\x00", "L1\n", "..", "%", "😀", "L1 "])


class Receiver:
    """alpha's back end pushing through the receiver, and reading back through the sender with its token C."""

    def __init__(self, peer, token_c: str):
        self.peer, self.reader = peer, Client()
        self.reader_auth = {"HTTP_AUTHORIZATION": "Token " + base64.b64encode(token_c.encode()).decode()}

    def send(self, method: str, path: str, text: str):
        return getattr(self.peer.client, method)(RECEIVER + path, text, content_type="application/json",
                                                 **self.peer.headers())

    def read(self, path: str):
        return self.reader.get(SENDER + path, **self.reader_auth)


@pytest.fixture
def receiver(alpha, alpha_peer) -> Receiver:
    # Trusted: its locations and EVSEs are published as they arrive, so that the sender serves all of each
    # (it leaves out EVSEs the hub has not published, and a PUT of that would remove them).
    alpha.auto_publish = True
    alpha.save()
    services.location_upsert(cpo=alpha, data=location_payload(alpha, "L1"))
    return Receiver(alpha_peer, alpha.token_c)


def envelope_of(response, request: str) -> dict:
    """OCPI's envelope, with an HTTP status that goes with its status_code; never a 5xx."""
    assert response.status_code < 500, (request, response.status_code, response.content[:2000])
    assert response["Content-Type"].startswith("application/json"), (request, response["Content-Type"])
    body = json.loads(response.content)
    assert isinstance(body, dict), (request, body)
    assert isinstance(body.get("status_code"), int) and 1000 <= body["status_code"] < 4000, (request, body)
    assert isinstance(body.get("status_message"), str), (request, body)
    assert isinstance(body.get("timestamp"), str) and TIMESTAMP.match(body["timestamp"]), (request, body)
    if body["status_code"] == 1000:
        assert response.status_code in (200, 201), (request, response.status_code, body)
    else:
        assert response.status_code >= 400 and body.get("data") is None, (request, response.status_code, body)
    return body


def stored_rows() -> dict:
    return {model._meta.db_table: list(model.objects.order_by("pk").values()) for model in (Location, Evse, Connector)}


def push(receiver: Receiver, method: str, path: str, text: str) -> dict:
    """One request; its answer checked, and what is stored checked against it."""
    before = table_digests(*STORED)
    rows_before = stored_rows()
    request = f"{method.upper()} {RECEIVER}{path} {text[:1500]}"
    body = envelope_of(receiver.send(method, path, text), request)
    if body["status_code"] != 1000:
        changed = changed_tables(before, table_digests(*STORED))
        assert not changed, (f"{request}\nanswered {body} but changed {changed}:\nbefore {rows_before}\n"
                             f"after {stored_rows()}")
    else:
        read_back(receiver, path, request)
    return body


def read_back(receiver: Receiver, path: str, request: str) -> None:
    """What a 1000 stored is served by the sender, and what the sender serves is a fixed point: taken back
    by the receiver, it is served the same, and taken back again, it changes nothing. (Once, not at once:
    the hub keeps some text longer than OCPI's limits, `address` 255 to OCPI's 45, and serves it cut.)"""
    served = _served(receiver, path, request)
    again = envelope_of(receiver.send("put", path, json.dumps(served)), f"PUT back {served} after {request}")
    assert again["status_code"] == 1000, (request, served, again)
    assert _served(receiver, path, request) == served, (request, "served otherwise once taken back", served)
    before = table_digests(*STORED)
    again = envelope_of(receiver.send("put", path, json.dumps(served)), f"PUT back {served} after {request}")
    assert again["status_code"] == 1000, (request, served, again)
    changed = changed_tables(before, table_digests(*STORED))
    assert not changed, f"{request}\nthe sender's own object {served} PUT back changed {changed}"


def _served(receiver: Receiver, path: str, request: str) -> dict:
    body = envelope_of(receiver.read(path), f"GET {SENDER}{path} after {request}")
    assert body["status_code"] == 1000 and isinstance(body.get("data"), dict), (request, body)
    return body["data"]


@contextmanager
def each_example_alone():
    """Every example starts from the same stored catalogue (L1 alone), so that one replays as it ran."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def _location_path(location_id: str) -> str:
    return "/" + quote(location_id, safe="")


@st.composite
def location_puts(draw, mutate: bool):
    location_id = draw(LOCATION_IDS)
    valid = ocpi.locations("DE", "ALP", location_id)
    body = draw(ocpi.mutated(valid) if mutate else valid)
    return "put", _location_path(location_id), ocpi.json_text(body)


@st.composite
def location_patches(draw):
    location_id = draw(LOCATION_IDS)
    full = draw(ocpi.locations("DE", "ALP", location_id))
    keys = draw(st.lists(st.sampled_from(sorted(full)), min_size=1, max_size=4, unique=True))
    body = {key: full[key] for key in keys}
    body["last_updated"] = full["last_updated"]
    if draw(st.booleans()):
        body = draw(ocpi.mutated(st.just(body)))
    return "patch", _location_path(location_id), ocpi.json_text(body)


@st.composite
def object_writes(draw):
    """An EVSE or a connector of L1 (stored: EVSE L1-E1, connectors 1 and 2), PUT or PATCHed, often mutated."""
    location_id = draw(st.sampled_from(["L1", "L2"]))
    evse = draw(ocpi.evses(location_id, draw(st.sampled_from([1, 2]))))
    method = draw(st.sampled_from(["put", "patch"]))
    if draw(st.booleans()):
        path, body = f"/{location_id}/{quote(evse['uid'], safe='')}", evse
    else:
        connector = evse["connectors"][0]
        path, body = f"/{location_id}/{location_id}-E1/{connector['id']}", connector
    if draw(st.booleans()):
        body = draw(ocpi.mutated(st.just(body)))
    return method, path, ocpi.json_text(body)


@st.composite
def hostile_requests(draw):
    """Bodies that are not Locations at all, and URLs no object has."""
    method = draw(st.sampled_from(["put", "patch"]))
    text = draw(st.one_of(
        st.sampled_from(list(ocpi.RAW.values())),
        st.sampled_from(["", "null", "[]", "{}", "1", '"L1"', "{", '{"id": "L1",}', "\ufeff{}", '{"id": "L1"}' * 2]),
        st.binary(max_size=64).map(lambda raw: raw.decode("latin-1")),
        st.builds(lambda raw: '{"id": "L1", "name": ' + raw + "}", st.sampled_from(list(ocpi.RAW.values()))),
    ))
    path = draw(st.one_of(st.just("/L1"), HOSTILE_IDS.map(_location_path),
                          st.just("/L1/" + quote("E" * 40, safe="")), st.just("/L1/L1-E1/" + "9" * 40)))
    return method, path, text


@given(requests=st.lists(st.one_of(location_puts(mutate=False), location_puts(mutate=True), location_patches()),
                         min_size=1, max_size=3))
@fuzz_settings(4)
def test_locations_put_and_patch(receiver, requests):
    with each_example_alone():
        for method, path, text in requests:
            push(receiver, method, path, text)


@given(requests=st.lists(st.one_of(object_writes(), location_puts(mutate=True)), min_size=1, max_size=3))
@fuzz_settings(4)
def test_evses_and_connectors(receiver, requests):
    with each_example_alone():
        for method, path, text in requests:
            push(receiver, method, path, text)


@given(request=hostile_requests())
@fuzz_settings(4)
def test_hostile_bodies_and_urls(receiver, request):
    with each_example_alone():
        push(receiver, *request)

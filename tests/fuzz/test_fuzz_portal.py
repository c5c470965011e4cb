"""The portal and the webhooks, fuzzed from the OpenAPI schema the app serves (`/api/schema/`).

schemathesis generates requests for every operation of the schema (its examples, the coverage of its
parameters and bodies, then random ones, valid and not) and sends them to the Django application in
process, as a real caller of that operation: a front end's client key (`Basic`), a CPO user's access token
(`Bearer`, a fresh session for every request, since logout and refresh end theirs) or the CPO's token C
(webhooks, on the CPO's own party). Every answer must be no 5xx, have a status the schema documents for
the operation, a content type and a body the schema describes; and an answer that is an error must leave
the catalogue and the accounts exactly as they were (a request is all or nothing).
"""

from __future__ import annotations

import io
import json

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.conf import settings as django_settings
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from PIL import Image
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from config.wsgi import application
from emsp import accounts
from emsp.models import LogoUpload, PortalClient
from emsp.services import portal_client_create
from locations import services, uploads
from locations.models import Connector, Cpo, CsvImport, Evse, Location, Photo
from ocpi.models import OutboxEntry
from tests.conftest import location_payload
from tests.fuzz import ocpi_strategies as ocpi
from tests.fuzz.conftest import FUZZ_SETTINGS, fuzz_settings, in_test_transaction
from tests.fuzz.snapshots import changed_tables, table_digests

pytestmark = pytest.mark.django_db

SCHEMA_URL = "/api/schema/?format=json"
# The portal's and the webhooks' operations (the drivers' API beside them has callers of its own).
schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, in_test_transaction(application)).include(
    path_regex=r"^/ocpi/cpo/")

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# What an error answer must not have written (failed logins and CSV imports record themselves elsewhere:
# the cache, and the CsvImport row that reports the failure; a replayed refresh token ends its session).
WATCHED = (Cpo, User, PortalClient, LogoUpload, Location, Evse, Connector, Photo, OutboxEntry)

PASSWORD = "fuzzing is believing 2026"


class Callers:
    """Real credentials of the three kinds, and real objects of the caller for the paths that name one."""

    def __init__(self, cpo: Cpo, client_key: str, location: Location, photo: Photo, csv_import: CsvImport):
        self.cpo, self.client_key, self.location = cpo, client_key, location
        self.objects = {"photo_id": str(photo.pk), "import_id": str(csv_import.pk)}

    def session(self) -> accounts.TokenPair:
        return accounts.session_login(username=self.cpo.owner.username, password=PASSWORD, client_address=None)

    def authorization(self, case) -> str | None:
        schemes = {name for requirement in (case.operation.definition.raw.get("security") or [])
                   for name in requirement}
        if "cpoTokenC" in schemes:
            # The CPO's back end: its token C, which a token-c request may have rotated since.
            self.cpo.token_c = services.cpo_token_c_rotate(cpo=self.cpo)
            return f"Bearer {self.cpo.token_c}"
        if "accessToken" in schemes:
            return f"Bearer {self.session().access_token}"
        if "clientKey" in schemes:
            return f"Basic {self.client_key}"
        return None


@pytest.fixture
def callers(alpha) -> Callers:
    alpha.owner = User.objects.create_user(username="alpha-owner", password=PASSWORD, email="owner@alpha.example")
    alpha.save()
    _, key = portal_client_create(name="fuzzed front end")
    location = services.location_upsert(cpo=alpha, data=location_payload(alpha, "FUZZ1")).instance
    photo = uploads.photo_add(location=location, files=[_png("front.png")])[0]
    csv_import = CsvImport.objects.create(cpo=alpha, file_name="locations.csv", status=CsvImport.Status.FAILED)
    return Callers(alpha, key, location, photo, csv_import)


def _png(name: str) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def _as_the_caller(case, callers: Callers) -> None:
    authorization = callers.authorization(case)
    if authorization is not None:
        case.headers = {**(case.headers or {}), "Authorization": authorization}
    if "country_code" in (case.path_parameters or {}):
        # The webhooks on the caller's own party (another party's is a plain 403 before anything is read).
        case.path_parameters = {**case.path_parameters, "country_code": callers.cpo.country_code,
                                "party_id": callers.cpo.party_id}
    if isinstance(case.body, dict) and isinstance(case.body.get("location_id"), int):
        # The EVSE webhook and the photo upload on the caller's own location (any other is a plain 404).
        case.body = {**case.body, "location_id": callers.location.pk}


def _call(case, **kwargs):
    before = table_digests(*WATCHED)
    response = case.call_and_validate(checks=CHECKS, **kwargs)
    if response.status_code >= 400:
        changed = changed_tables(before, table_digests(*WATCHED))
        assert not changed, (f"{case.method} {case.formatted_path} answered {response.status_code} but changed "
                             f"{changed}: {response.text[:500]}")
    return response


@schema.parametrize()
@FUZZ_SETTINGS
def test_portal_and_webhooks(case, callers):
    _as_the_caller(case, callers)
    _call(case)
    if case.path == "/ocpi/cpo/api/auth/v1/refresh":
        # The generated Authorization is a guess; a real refresh token too, once per example.
        _call(case, headers={"Authorization": f"Bearer {callers.session().refresh_token}"})
    named = set(callers.objects) & set(case.path_parameters or {})
    if named:
        # The generated id is a guess (a 404); the caller's own photo or import too, once per example.
        case.path_parameters = {**case.path_parameters, **{name: callers.objects[name] for name in named}}
        _call(case)


# --- from an address that has guessed too often ----------------------------------------------------------

GUESSES = {  # a wrong credential of each kind, and an endpoint that reads it
    "Basic wrong-client-key": "/ocpi/cpo/2.2/filters",
    "Bearer wrong.access.token": "/ocpi/cpo/2.2/details",
    "Bearer wrong-token-c": "/ocpi/cpo/api/v1/webhook/locations/DE/ALP",
}


def _guess_too_often(callers: Callers) -> None:
    """Wrong credentials of every kind from the test client's address, past every limit (README: the
    address then gets 429 for that kind, the right credential too, until the window ends)."""
    if getattr(callers, "guessed", False):
        return
    guesser = APIClient()
    for authorization, path in GUESSES.items():
        guesser.credentials(HTTP_AUTHORIZATION=authorization)
        for _ in range(max(limit for limit, _seconds in django_settings.CREDENTIAL_FAILURE_LIMITS.values()) + 1):
            guesser.post(path, {}, format="json") if "webhook" in path else guesser.get(path)
    callers.guessed = True


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=3, phases=[Phase.generate])
def test_portal_and_webhooks_after_guessing(case, callers):
    """Every operation, from an address its guesses have blocked: still a documented answer (a 429 where
    it authenticates), never a 5xx, and nothing written."""
    _guess_too_often(callers)
    _as_the_caller(case, callers)
    _call(case)


# --- the locations webhook's own values, beyond what its schema can say ------------------------------------

WEBHOOK = "/ocpi/cpo/api/v1/webhook/locations/DE/ALP"


def _portal_answer(response, request: str) -> dict:
    assert response.status_code < 500, (request, response.status_code, response.content[:2000])
    body = json.loads(response.content)
    assert set(body) == {"status", "data", "message"} and body["status"] == response.status_code, (request, body)
    return body


@given(body=st.one_of(ocpi.webhook_bodies(), ocpi.mutated(ocpi.webhook_bodies())))
@fuzz_settings(2)
def test_locations_webhook_is_all_or_nothing(callers, body):
    """Webhook bodies of the portal's shape (its names and units), valid and mutated: a 400 writes nothing
    (one wrong location and none is stored), a 200 names the caller's locations, and the same body again
    changes nothing and names the same ones."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {callers.cpo.token_c}")
    text = ocpi.json_text(body)
    request = f"POST {WEBHOOK} {text[:1500]}"
    with transaction.atomic():
        before = table_digests(*WATCHED)
        answer = _portal_answer(api.post(WEBHOOK, text, content_type="application/json"), request)
        if answer["status"] != 200:
            assert answer["status"] in (400, 413), (request, answer)
            assert not changed_tables(before, table_digests(*WATCHED)), (request, answer)
        else:
            ids = [item["location_id"] for item in answer["data"]]
            assert len(ids) == len(body["locations"]), (request, answer)
            assert set(Location.objects.filter(pk__in=ids).values_list("cpo", flat=True)) == {callers.cpo.pk}
            stored = table_digests(*WATCHED)
            again = _portal_answer(api.post(WEBHOOK, text, content_type="application/json"), request)
            assert again == answer, (request, answer, again)
            assert not changed_tables(stored, table_digests(*WATCHED)), (request, "the same body again changed")
        transaction.set_rollback(True)

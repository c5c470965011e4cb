"""Registration, login, refresh rotation, logout, passwords, the failed-login throttle, client keys."""

import re

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command

from emsp.models import PortalClient
from locations.models import Cpo
from locations.tokens import token_matches
from tests.emsp.conftest import PASSWORD, bearer, login

pytestmark = pytest.mark.django_db

REGISTRATION = {"username": "sunrise.power", "cpo_owner_name": "Sunrise Power Inc.", "contact_name": "Maria Cruz",
                "contact_number": "+63 917 555 0101", "contact_email": "maria@sunrise.example", "ocpp_ready": True}


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()


def envelope_of(response) -> dict:
    body = response.json()
    assert set(body) >= {"status", "data", "message"}
    assert body["status"] == response.status_code
    return body


def test_register_creates_cpo_owner_and_token_and_mails_a_set_password_link(basic, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = basic.post("/ocpi/cpo/2.2/register", REGISTRATION, format="json")
    assert response.status_code == 200
    assert envelope_of(response) == {"status": 200, "data": "SUCCESS", "message": "Success"}
    cpo = Cpo.objects.get(owner__username="sunrise.power")
    assert (cpo.party_id, cpo.country_code, cpo.owner_name, cpo.ocpp_ready) == ("SUN", "DE", "Sunrise Power Inc.", True)
    assert len(cpo.token_c_digest) == 64
    assert not cpo.owner.has_usable_password()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["maria@sunrise.example"]
    link = re.search(r"/portal/set-password/(\S+)/(\S+)/", mail.outbox[0].body)
    assert link and "SUN" in mail.outbox[0].body


def test_party_ids_stay_unique_for_similar_usernames(basic):
    for index, name in enumerate(["sunrise", "sunset", "sun_moon"]):
        data = {**REGISTRATION, "username": name, "contact_email": f"{index}@sun.example"}
        assert basic.post("/ocpi/cpo/2.2/register", data, format="json").status_code == 200
    assert sorted(Cpo.objects.values_list("party_id", flat=True)) == ["SU0", "SU1", "SUN"]


def test_register_refuses_a_taken_username_and_bad_fields(basic):
    assert basic.post("/ocpi/cpo/2.2/register", REGISTRATION, format="json").status_code == 200
    again = basic.post("/ocpi/cpo/2.2/register", REGISTRATION, format="json")
    assert again.status_code == 400 and "already taken" in again.json()["message"]
    bad = basic.post("/ocpi/cpo/2.2/register", {**REGISTRATION, "username": "x y", "contact_email": "nope",
                                                "ocpp_ready": "perhaps"}, format="json")
    body = envelope_of(bad)
    assert bad.status_code == 400
    assert {e["field"] for e in body["data"]} == {"username", "contact_email", "ocpp_ready"}
    missing = basic.post("/ocpi/cpo/2.2/register", {"username": "only"}, format="json")
    assert missing.status_code == 400 and "cpo_owner_name" in missing.json()["message"]
    assert Cpo.objects.count() == 1


def test_register_needs_a_valid_client_key(api):
    assert api.post("/ocpi/cpo/2.2/register", REGISTRATION, format="json").status_code == 401
    api.credentials(HTTP_AUTHORIZATION="Basic not-a-key")
    response = api.post("/ocpi/cpo/2.2/register", REGISTRATION, format="json")
    assert response.status_code == 401 and envelope_of(response)["message"].startswith("Unauthorized")


def test_a_revoked_client_key_stops_working(basic, client_key):
    call_command("portal_client", "revoke", "portal front end")
    assert basic.get("/ocpi/cpo/2.2/filters").status_code == 401
    assert PortalClient.objects.get().revoked_at is not None


def test_the_command_issues_client_keys(capsys, api):
    call_command("portal_client", "create", "driver app")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    api.credentials(HTTP_AUTHORIZATION=f"Basic {key}")
    assert api.get("/ocpi/cpo/2.2/filters").status_code == 200


def test_set_password_link_then_login(basic, api, client_key, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        basic.post("/ocpi/cpo/2.2/register", REGISTRATION, format="json")
    uid, token = re.search(r"/portal/set-password/(\S+)/(\S+)/", mail.outbox[0].body).groups()
    page = api.get(f"/portal/set-password/{uid}/{token}/")
    assert page.status_code == 200 and b"Choose your password" in page.content
    weak = api.post("/ocpi/cpo/api/auth/v1/set-password", {"uid": uid, "token": token, "new_password": "1234"},
                    format="json")
    assert weak.status_code == 400 and "too weak" in weak.json()["message"]
    done = api.post("/ocpi/cpo/api/auth/v1/set-password", {"uid": uid, "token": token, "new_password": PASSWORD},
                    format="json")
    assert done.status_code == 200
    reused = api.post("/ocpi/cpo/api/auth/v1/set-password", {"uid": uid, "token": token, "new_password": PASSWORD + "x"},
                      format="json")
    assert reused.status_code == 400 and "invalid or has expired" in reused.json()["message"]
    assert login(api, client_key, "sunrise.power").status_code == 200


def test_login_returns_the_contract_shape(alpha_user, api, client_key):
    response = login(api, client_key, "alpha-owner")
    body = envelope_of(response)
    assert response.status_code == 200 and body["message"] == "SUCCESS"
    data = body["data"]
    assert set(data) == {"access_token", "access_expires_in", "refresh_token", "refresh_expires_in", "role"}
    assert data["role"] == "CPO_OWNER"
    assert data["refresh_expires_in"] > data["access_expires_in"] > 1_700_000_000


def test_login_errors(alpha_user, api, client_key):
    assert login(api, client_key, "alpha-owner", "wrong").status_code == 401
    assert login(api, client_key, "nobody").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
    assert api.post("/ocpi/cpo/api/auth/v1/login", {"username": "alpha-owner"}, format="json").status_code == 400
    assert api.post("/ocpi/cpo/api/auth/v1/login", "{broken", content_type="application/json").status_code == 400
    assert api.get("/ocpi/cpo/api/auth/v1/login").status_code == 405
    api.credentials()
    assert api.post("/ocpi/cpo/api/auth/v1/login", {"username": "a", "password": "b"}, format="json").status_code == 401


def test_failed_logins_are_throttled_per_username_with_retry_after(alpha_user, api, client_key, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    for _ in range(3):
        assert login(api, client_key, "alpha-owner", "wrong").status_code == 401
    blocked = login(api, client_key, "alpha-owner")
    assert blocked.status_code == 429
    assert 0 < int(blocked["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW_SECONDS
    assert "try again" in blocked.json()["message"]


def test_failed_logins_are_throttled_per_client_address(alpha_user, bravo_user, api, client_key, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 4
    for index in range(4):
        login(api, client_key, f"guess-{index}", "wrong")
    assert login(api, client_key, "bravo-owner").status_code == 429


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(alpha_user, client_key, api):
    as_alpha, tokens = bearer(client_key, "alpha-owner")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['refresh_token']}")
    first = api.get("/ocpi/cpo/api/auth/v1/refresh")
    assert first.status_code == 200 and first.json()["message"] == "SUCCESS"
    new = first.json()["data"]
    assert new["refresh_token"] != tokens["refresh_token"]
    replay = api.get("/ocpi/cpo/api/auth/v1/refresh")
    assert replay.status_code == 401 and "already used" in replay.json()["message"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {new['refresh_token']}")
    assert api.get("/ocpi/cpo/api/auth/v1/refresh").status_code == 401
    assert as_alpha.get("/ocpi/cpo/2.2/details").status_code == 401


def test_refresh_refuses_an_access_token_and_garbage(alpha_user, client_key, api):
    _, tokens = bearer(client_key, "alpha-owner")
    for value in (f"Bearer {tokens['access_token']}", "Bearer garbage", ""):
        api.credentials(HTTP_AUTHORIZATION=value)
        assert api.get("/ocpi/cpo/api/auth/v1/refresh").status_code == 401


def test_logout_ends_this_session_only(alpha_user, client_key, api):
    first, first_tokens = bearer(client_key, "alpha-owner")
    second, _ = bearer(client_key, "alpha-owner")
    response = first.post("/ocpi/cpo/api/auth/v1/logout")
    assert envelope_of(response) == {"status": 200, "data": [], "message": "Logged out successfully"}
    assert first.get("/ocpi/cpo/2.2/details").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {first_tokens['refresh_token']}")
    assert api.get("/ocpi/cpo/api/auth/v1/refresh").status_code == 401
    assert second.get("/ocpi/cpo/2.2/details").status_code == 200


def test_change_password_ends_every_session(alpha_user, client_key, api):
    first, _ = bearer(client_key, "alpha-owner")
    second, _ = bearer(client_key, "alpha-owner")
    wrong = first.post("/ocpi/cpo/api/auth/v1/change-old-password",
                       {"old_password": "nope", "new_password": "a much better passphrase 7"}, format="json")
    assert wrong.status_code == 400
    ok = first.post("/ocpi/cpo/api/auth/v1/change-old-password",
                    {"old_password": PASSWORD, "new_password": "a much better passphrase 7"}, format="json")
    assert envelope_of(ok)["data"] == "SUCCESS"
    assert first.get("/ocpi/cpo/2.2/details").status_code == 401
    assert second.get("/ocpi/cpo/2.2/details").status_code == 401
    assert login(api, client_key, "alpha-owner").status_code == 401
    assert login(api, client_key, "alpha-owner", "a much better passphrase 7").status_code == 200


def test_bearer_endpoints_refuse_missing_and_forged_tokens(api, alpha_user):
    assert api.get("/ocpi/cpo/2.2/details").status_code == 401
    api.credentials(HTTP_AUTHORIZATION="Bearer eyJhbGciOiJIUzI1NiJ9.e30.forged")
    assert api.get("/ocpi/cpo/2.2/details").status_code == 401


def test_token_c_is_issued_once_and_the_old_one_stops_matching(as_alpha, alpha):
    response = as_alpha.post("/ocpi/cpo/api/v1/credentials/token-c")
    token_c = response.json()["data"]["token_c"]
    alpha.refresh_from_db()
    assert token_matches(token_c, alpha.token_c_digest)
    assert not token_matches(alpha.token_c, alpha.token_c_digest)


@pytest.mark.production_hashers
def test_passwords_are_hashed(alpha_user):
    assert User.objects.get(username="alpha-owner").password.startswith(("pbkdf2_", "argon2", "bcrypt", "scrypt"))

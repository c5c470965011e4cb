"""Guessing costs time and locks nobody else out: wrong client keys, access tokens and old passwords are
counted per client address (old passwords per user too) and answered 429 with Retry-After past the limit;
a username locked by failures from one address still lets its owner in from another; the client address
comes from X-Forwarded-For only as far as EVHUB_TRUSTED_PROXY_HOPS says."""

import jwt
import pytest
from rest_framework.test import APIClient

from emsp.models import PortalSession
from tests.emsp.conftest import PASSWORD, bearer

pytestmark = pytest.mark.django_db

LIMIT = 5
DETAILS = "/ocpi/cpo/2.2/details"
FILTERS = "/ocpi/cpo/2.2/filters"
CHANGE_PASSWORD = "/ocpi/cpo/api/auth/v1/change-old-password"
# An access token of the right shape, signed with a key that is not ours.
FORGED = jwt.encode({"token_type": "access", "exp": 4102444800, "jti": "x", "user_id": 1, "sid": "x"},
                    "someone else's key, long enough for HS256", algorithm="HS256")


@pytest.fixture
def small_limits(settings):
    settings.CREDENTIAL_FAILURE_LIMITS = {kind: (LIMIT, 600) for kind in
                                          ("client_key", "access_token", "token_c", "ocpi_token", "old_password")}
    return settings


def assert_throttled(response):
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["status"] == 429 and body["data"] == [] and "try again" in body["message"]
    assert 0 < int(response["Retry-After"]) <= 600


def first_throttled(send, tries: int = 100) -> int:
    """The number of the first of `tries` requests answered 429 (every one before it must be a 401)."""
    for number in range(1, tries + 1):
        response = send()
        if response.status_code == 429:
            assert_throttled(response)
            return number
        assert response.status_code == 401, response.content
    raise AssertionError(f"{tries} wrong credentials and no 429")


# --- Basic client keys -------------------------------------------------------------------------------------

@pytest.mark.smoke
def test_wrong_client_keys_get_429_with_retry_after_before_the_100th(small_limits, api, client_key):
    api.credentials(HTTP_AUTHORIZATION="Basic not-a-key")
    assert first_throttled(lambda: api.get(FILTERS)) == LIMIT + 1
    # Blocked means blocked: the right key from that address waits too, or guessing would go on unhindered.
    api.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
    assert_throttled(api.get(FILTERS))
    # Another address is not held up by the guesser's failures.
    assert api.get(FILTERS, REMOTE_ADDR="198.51.100.7").status_code == 200


def test_the_right_client_key_is_never_counted(small_limits, basic):
    for _ in range(3 * LIMIT):
        assert basic.get(FILTERS).status_code == 200


# --- Bearer access tokens ------------------------------------------------------------------------------------

def test_access_tokens_we_did_not_sign_get_429(small_limits, alpha_user, client_key, api):
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {FORGED}")
    assert first_throttled(lambda: api.get(DETAILS)) == LIMIT + 1
    as_alpha, _ = bearer(client_key, "alpha-owner")
    assert_throttled(as_alpha.get(DETAILS))  # the same address (the test client's)
    assert as_alpha.get(DETAILS, REMOTE_ADDR="198.51.100.7").status_code == 200


def test_refresh_tokens_we_did_not_sign_get_429(small_limits, alpha_user, client_key, api):
    forged = jwt.encode({"token_type": "refresh", "exp": 4102444800, "jti": "x", "user_id": 1, "sid": "x"},
                        "someone else's key, long enough for HS256", algorithm="HS256")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert first_throttled(lambda: api.get("/ocpi/cpo/api/auth/v1/refresh")) == LIMIT + 1
    _, tokens = bearer(client_key, "alpha-owner")  # logging in is another kind: not held up
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['refresh_token']}")
    assert_throttled(api.get("/ocpi/cpo/api/auth/v1/refresh"))
    assert api.get("/ocpi/cpo/api/auth/v1/refresh", REMOTE_ADDR="198.51.100.7").status_code == 200


def test_ended_sessions_and_refresh_tokens_are_no_guesses(small_limits, alpha_user, client_key, api):
    as_alpha, tokens = bearer(client_key, "alpha-owner")
    assert as_alpha.post("/ocpi/cpo/api/auth/v1/logout").status_code == 200
    for _ in range(2 * LIMIT):
        assert as_alpha.get(DETAILS).status_code == 401  # signed by us: the session ended, no guess
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['refresh_token']}")
    for _ in range(2 * LIMIT):
        assert api.get(DETAILS).status_code == 401
    assert bearer(client_key, "alpha-owner")[0].get(DETAILS).status_code == 200


# --- old_password ----------------------------------------------------------------------------------------------

@pytest.mark.smoke
def test_wrong_old_passwords_get_429_per_address(small_limits, alpha_user, client_key):
    as_alpha, _ = bearer(client_key, "alpha-owner")

    def change(old: str, **extra):
        return as_alpha.post(CHANGE_PASSWORD, {"old_password": old, "new_password": "a new long passphrase 7"},
                             format="json", **extra)

    for _ in range(LIMIT):
        assert change("wrong").status_code == 400
    assert_throttled(change("wrong"))
    assert_throttled(change(PASSWORD))  # the right one waits too: otherwise guessing never stops
    alpha_user.refresh_from_db()
    assert alpha_user.check_password(PASSWORD)


def test_wrong_old_passwords_are_counted_per_user_from_any_address(small_limits, alpha_user, bravo_user, client_key):
    as_alpha, _ = bearer(client_key, "alpha-owner")
    for number in range(LIMIT):
        response = as_alpha.post(CHANGE_PASSWORD, {"old_password": "wrong", "new_password": "a new long passphrase 7"},
                                 format="json", REMOTE_ADDR=f"198.51.100.{number + 1}")
        assert response.status_code == 400
    fresh = as_alpha.post(CHANGE_PASSWORD, {"old_password": "wrong", "new_password": "a new long passphrase 7"},
                          format="json", REMOTE_ADDR="203.0.113.9")
    assert_throttled(fresh)
    # Another user of the same addresses is not held up.
    as_bravo, _ = bearer(client_key, "bravo-owner")
    changed = as_bravo.post(CHANGE_PASSWORD, {"old_password": PASSWORD, "new_password": "a new long passphrase 7"},
                            format="json", REMOTE_ADDR="198.51.100.1")
    assert changed.status_code == 200


# --- Logins: a locked username still lets the right password in from elsewhere -------------------------

@pytest.mark.smoke
def test_a_username_locked_from_one_address_logs_in_from_another(alpha_user, api, client_key, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    attacker, owner = {"REMOTE_ADDR": "203.0.113.66"}, {"REMOTE_ADDR": "198.51.100.20"}

    def attempt(password: str, address: dict):
        api.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
        return api.post("/ocpi/cpo/api/auth/v1/login", {"username": "alpha-owner", "password": password},
                        format="json", **address)

    for _ in range(3):
        assert attempt("wrong", attacker).status_code == 401
    assert attempt(PASSWORD, attacker).status_code == 429  # the guessing address stays locked out
    assert attempt(PASSWORD, owner).status_code == 200  # the owner, elsewhere, is not
    # Past the limit, an address that fails for the username is refused from then on.
    assert attempt("wrong", owner).status_code == 401
    assert attempt(PASSWORD, owner).status_code == 429


def test_a_login_from_a_fresh_address_is_not_refused_for_the_usernames_failures(alpha_user, api, client_key,
                                                                                settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    api.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
    for number in range(10):  # many addresses, each failing once
        failed = api.post("/ocpi/cpo/api/auth/v1/login", {"username": "alpha-owner", "password": "wrong"},
                          format="json", REMOTE_ADDR=f"203.0.113.{number + 1}")
        assert failed.status_code == 401
    ok = api.post("/ocpi/cpo/api/auth/v1/login", {"username": "alpha-owner", "password": PASSWORD}, format="json",
                  REMOTE_ADDR="198.51.100.20")
    assert ok.status_code == 200


# --- The client address ----------------------------------------------------------------------------------------

def _wrong_keys_from(api: APIClient, forwarded_for: list[str]) -> list[int]:
    api.credentials(HTTP_AUTHORIZATION="Basic not-a-key")
    return [api.get(FILTERS, HTTP_X_FORWARDED_FOR=value).status_code for value in forwarded_for]


def test_x_forwarded_for_is_ignored_without_trusted_proxies(small_limits, api):
    small_limits.EVHUB_TRUSTED_PROXY_HOPS = 0
    codes = _wrong_keys_from(api, [f"203.0.113.{number}" for number in range(1, LIMIT + 2)])
    assert codes == [401] * LIMIT + [429]  # one client (REMOTE_ADDR), whatever the header claims


def test_x_forwarded_for_names_the_client_behind_one_trusted_proxy(small_limits, api, client_key):
    small_limits.EVHUB_TRUSTED_PROXY_HOPS = 1
    # Each request from another client, as the proxy appended it (the left part is the client's own claim).
    codes = _wrong_keys_from(api, [f"10.9.9.9, 203.0.113.{number}" for number in range(1, 2 * LIMIT)])
    assert codes == [401] * (2 * LIMIT - 1)
    codes = _wrong_keys_from(api, [f"203.0.113.{number}, 198.51.100.5" for number in range(1, LIMIT + 2)])
    assert codes == [401] * LIMIT + [429]  # one client behind the proxy, whatever it claims on the left


def test_a_session_records_the_address_the_trusted_proxy_saw(alpha_user, api, client_key, settings):
    settings.EVHUB_TRUSTED_PROXY_HOPS = 1
    api.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
    response = api.post("/ocpi/cpo/api/auth/v1/login", {"username": "alpha-owner", "password": PASSWORD},
                        format="json", HTTP_X_FORWARDED_FOR="10.0.0.1, 203.0.113.77")
    assert response.status_code == 200
    assert PortalSession.objects.get().client_address == "203.0.113.77"


@pytest.mark.parametrize("hops, meta, expected", [
    (0, {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "203.0.113.1"}, "192.0.2.1"),
    (1, {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "203.0.113.1"}, "203.0.113.1"),
    (1, {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 203.0.113.1:5443"}, "203.0.113.1"),
    (2, {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 203.0.113.1, 10.0.0.2"}, "203.0.113.1"),
    (2, {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "203.0.113.1"}, "203.0.113.1"),
    (1, {"REMOTE_ADDR": "192.0.2.1"}, "192.0.2.1"),
    (1, {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "unknown"}, "192.0.2.1"),
    (1, {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "[2001:db8::1]:443"}, "2001:db8::1"),
    (0, {"REMOTE_ADDR": ""}, None),
])
def test_client_address(settings, rf, hops, meta, expected):
    from emsp.throttle import client_address

    settings.EVHUB_TRUSTED_PROXY_HOPS = hops
    request = rf.get("/")
    request.META.update(meta)
    if not meta.get("REMOTE_ADDR"):
        request.META.pop("REMOTE_ADDR", None)
    assert client_address(request) == expected


# --- The process's note of an address under its limit (emsp.throttle: EVHUB_THROTTLE_CLEAR_SECONDS) -------

def _failures_elsewhere(kind: str, address: str, count: int) -> None:
    """`count` failures of `address` counted by another process: straight into the shared cache."""
    from emsp import throttle

    _, seconds = throttle.limit_of(kind)
    for _ in range(count):
        throttle.failure_count(kind, throttle.address_scope(address), seconds)


def test_a_key_in_use_is_not_checked_against_the_cache_on_every_request(small_limits, basic, monkeypatch):
    from emsp import throttle

    reads = []
    over_limit = throttle.over_limit
    monkeypatch.setattr(throttle, "over_limit", lambda *args: reads.append(args) or over_limit(*args))
    for _ in range(5):
        assert basic.get(FILTERS).status_code == 200
    assert len(reads) == 1


def test_a_block_that_began_elsewhere_is_seen_once_the_note_is_old(small_limits, client_key, settings):
    import time

    settings.EVHUB_THROTTLE_CLEAR_SECONDS = 0.5
    right, wrong = (APIClient(HTTP_AUTHORIZATION=f"Basic {key}") for key in (client_key, "not-a-key"))
    assert right.get(FILTERS).status_code == 200  # noted: under its limit
    _failures_elsewhere("client_key", "127.0.0.1", LIMIT)
    assert right.get(FILTERS).status_code == 200  # within the note's time this process has seen nothing yet
    time.sleep(0.6)
    assert_throttled(right.get(FILTERS))
    assert_throttled(wrong.get(FILTERS))


def test_a_guesser_passes_a_block_that_began_elsewhere_once_at_most(small_limits, client_key, settings):
    settings.EVHUB_THROTTLE_CLEAR_SECONDS = 3600
    right, wrong = (APIClient(HTTP_AUTHORIZATION=f"Basic {key}") for key in (client_key, "not-a-key"))
    assert right.get(FILTERS).status_code == 200  # noted: under its limit, for an hour
    _failures_elsewhere("client_key", "127.0.0.1", LIMIT)
    assert wrong.get(FILTERS).status_code == 401  # the note let it try; its failure ends the note
    assert_throttled(wrong.get(FILTERS))
    assert_throttled(right.get(FILTERS))  # the right key from there waits too


def test_a_wrong_old_password_ends_the_note_of_its_user_from_every_address(small_limits, settings):
    from emsp import throttle

    settings.EVHUB_THROTTLE_CLEAR_SECONDS = 3600
    assert throttle.guessing_blocked("old_password", "198.51.100.1", "user:7") is None  # noted
    for _ in range(LIMIT):  # the user's failures from another address, in this process
        throttle.guess_failed("old_password", "203.0.113.9", "user:7")
    assert throttle.guessing_blocked("old_password", "198.51.100.1", "user:7")


def test_no_note_when_its_time_is_zero(small_limits, basic, settings):
    """EVHUB_THROTTLE_CLEAR_SECONDS=0: every credential reads the cache, as before the note."""
    settings.EVHUB_THROTTLE_CLEAR_SECONDS = 0
    assert basic.get(FILTERS).status_code == 200
    _failures_elsewhere("client_key", "127.0.0.1", LIMIT)
    assert_throttled(basic.get(FILTERS))

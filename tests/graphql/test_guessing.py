"""Guessing at GraphQL's credentials costs time too: wrong client keys and access tokens we did not sign are
counted per client address (with the portal's, the same credentials), and past the limit the address gets
HTTP 429 with Retry-After and a GraphQL error, on the app's POST and on the browser's GET alike."""

import jwt
import pytest

from .conftest import error_of, gql

pytestmark = pytest.mark.django_db

LIMIT = 5
FIND = "{ find_ev_locations { id } }"


@pytest.fixture
def small_limits(settings):
    settings.CREDENTIAL_FAILURE_LIMITS = {kind: (LIMIT, 600) for kind in
                                          ("client_key", "access_token", "token_c", "ocpi_token", "old_password")}


def assert_throttled(response):
    assert response.status_code == 429, response.content
    assert 0 < int(response["Retry-After"]) <= 600
    error = error_of(response)
    assert error["extensions"]["code"] == "TOO_MANY_REQUESTS" and "try again" in error["message"]


def tries_until_throttled(send, tries: int = 100) -> int:
    for number in range(1, tries + 1):
        response = send()
        if response.status_code == 429:
            assert_throttled(response)
            return number
        assert response.status_code == 200 and error_of(response)["extensions"]["code"] == "UNAUTHENTICATED"
    raise AssertionError(f"{tries} wrong credentials and no 429")


@pytest.mark.smoke
def test_wrong_client_keys_get_429_before_the_100th(small_limits, anonymous_api, client_key):
    anonymous_api.credentials(HTTP_AUTHORIZATION="Basic not-a-key")
    assert tries_until_throttled(lambda: gql(anonymous_api, FIND)) == LIMIT + 1
    anonymous_api.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
    assert_throttled(gql(anonymous_api, FIND))  # the right key from the guessing address waits too
    assert_throttled(anonymous_api.get("/graphql", {"query": FIND}, HTTP_ACCEPT="application/json"))
    elsewhere = anonymous_api.post("/graphql", {"query": FIND}, format="json", REMOTE_ADDR="198.51.100.7")
    assert elsewhere.status_code == 200 and not elsewhere.json().get("errors")


def test_forged_access_tokens_get_429_before_the_100th(small_limits, anonymous_api):
    forged = jwt.encode({"token_type": "access", "exp": 4102444800, "jti": "x", "user_id": 1, "sid": "x"},
                        "someone else's key, long enough for HS256", algorithm="HS256")
    anonymous_api.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert tries_until_throttled(lambda: gql(anonymous_api, "{ locations { id } }")) == LIMIT + 1

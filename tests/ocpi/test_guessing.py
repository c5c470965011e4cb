"""Guessing tokens costs time: unknown OCPI tokens and webhooks' unknown tokens C are counted per client
address, and past the limit that address gets 429 with Retry-After (OCPI: in OCPI's envelope, as an error
of the HTTP layer), the right token too, while other addresses go on."""

import base64

import pytest

from tests.ocpi.conftest import ocpi_get

pytestmark = pytest.mark.django_db

LIMIT = 5
SENDER = "/ocpi/2.2.1/cpo/locations"
WEBHOOK = "/ocpi/cpo/api/v1/webhook/evse/{}/{}"


@pytest.fixture
def small_limits(settings):
    settings.CREDENTIAL_FAILURE_LIMITS = {kind: (LIMIT, 600) for kind in
                                          ("client_key", "access_token", "token_c", "ocpi_token", "old_password")}


def first_throttled(send, tries: int = 100) -> int:
    for number in range(1, tries + 1):
        response = send()
        if response.status_code == 429:
            return number
        assert response.status_code == 401, response.content
    raise AssertionError(f"{tries} wrong tokens and no 429")


# --- OCPI --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [SENDER, "/ocpi/versions", "/ocpi/2.1.1/cpo/locations"])
def test_unknown_ocpi_tokens_get_429_in_the_envelope_before_the_100th(small_limits, client, connected_peer, url):
    assert first_throttled(lambda: ocpi_get(client, url, "not-a-token-of-anyone")) == LIMIT + 1
    blocked = ocpi_get(client, url, connected_peer.token)  # the right token waits too
    assert blocked.status_code == 429
    body = blocked.json()
    assert body["status_code"] == 2000 and "try again" in body["status_message"] and body["timestamp"]
    assert 0 < int(blocked["Retry-After"]) <= 600
    assert ocpi_get(client, SENDER, connected_peer.token, REMOTE_ADDR="198.51.100.7").status_code == 200


def test_known_ocpi_tokens_are_never_counted(small_limits, client, connected_peer, invited_peer):
    for _ in range(2 * LIMIT):
        assert ocpi_get(client, SENDER, connected_peer.token).status_code == 200
        # Token A where it is not good: a 401, but no guess (the token is ours).
        assert ocpi_get(client, SENDER, invited_peer.token_a).status_code == 401
    assert ocpi_get(client, SENDER, "not-a-token-of-anyone").status_code == 401


# --- Webhooks (token C) ----------------------------------------------------------------------------------------

@pytest.mark.smoke
@pytest.mark.parametrize("scheme", ["Bearer", "Token"])
def test_unknown_tokens_c_on_a_webhook_get_429_before_the_100th(small_limits, client, alpha, scheme):
    url = WEBHOOK.format(alpha.country_code, alpha.party_id)

    def send(token: str, **extra):
        return client.post(url, {}, content_type="application/json", HTTP_AUTHORIZATION=f"{scheme} {token}",
                           **extra)

    assert first_throttled(lambda: send("not-a-token-c")) == LIMIT + 1
    blocked = send(alpha.token_c if scheme == "Bearer" else base64.b64encode(alpha.token_c.encode()).decode())
    assert blocked.status_code == 429
    body = blocked.json()
    assert body["status"] == 429 and "try again" in body["message"]
    assert 0 < int(blocked["Retry-After"]) <= 600
    # From elsewhere the right token gets through authentication (the empty body is then a 400).
    assert send(alpha.token_c, REMOTE_ADDR="198.51.100.7").status_code == 400


def test_a_token_c_of_another_party_is_no_guess(small_limits, client, alpha, bravo):
    url = WEBHOOK.format(alpha.country_code, alpha.party_id)
    for _ in range(2 * LIMIT):
        response = client.post(url, {}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {bravo.token_c}")
        assert response.status_code == 403

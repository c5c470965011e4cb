"""Front ends' client keys: accepted keys are kept per process for CLIENT_KEY_CACHE_SECONDS (emsp.services)."""

import pytest
from django.utils import timezone

from emsp import services
from emsp.models import PortalClient

pytestmark = pytest.mark.django_db

SEARCH = "{ find_ev_locations_count }"


@pytest.fixture
def front_end():
    return services.portal_client_create(name="map app")


@pytest.fixture
def clock(monkeypatch):
    """The process's monotonic clock, moved by hand."""
    now = [1_000.0]
    monkeypatch.setattr(services.time, "monotonic", lambda: now[0])
    return now


def _accepted(key: str) -> bool:
    return services.portal_client_authenticate(key=key) is not None


def test_a_key_revoked_here_is_refused_at_once(front_end, django_assert_num_queries):
    client, key = front_end
    assert _accepted(key)
    with django_assert_num_queries(0):  # kept: no query
        assert _accepted(key)
    services.portal_client_revoke(client=client)
    assert not _accepted(key)


def test_a_key_revoked_by_another_process_is_refused_within_the_setting(front_end, clock, settings):
    settings.CLIENT_KEY_CACHE_SECONDS = 10
    client, key = front_end
    assert _accepted(key)
    # Another process revokes it: no signal reaches this one.
    PortalClient.objects.filter(pk=client.pk).update(revoked_at=timezone.now())
    clock[0] += 9.9
    assert _accepted(key)
    clock[0] += 0.2
    assert not _accepted(key)


def test_no_keeping_with_zero_seconds(front_end, settings, django_assert_num_queries):
    settings.CLIENT_KEY_CACHE_SECONDS = 0
    client, key = front_end
    assert _accepted(key)
    with django_assert_num_queries(1):
        assert _accepted(key)
    PortalClient.objects.filter(pk=client.pk).update(revoked_at=timezone.now())
    assert not _accepted(key)


def test_wrong_keys_are_never_kept(front_end, django_assert_num_queries):
    _, key = front_end
    for _ in range(2):
        with django_assert_num_queries(1):
            assert not _accepted(key + "x")
    # ... nor does a key that differs keep the right one from being looked up once
    assert _accepted(key)


def test_over_http_a_revocation_ends_the_next_request(front_end, api):
    client, key = front_end
    api.credentials(HTTP_AUTHORIZATION=f"Basic {key}")
    assert api.post("/graphql", {"query": SEARCH}, format="json").json()["data"]["find_ev_locations_count"] == 0
    services.portal_client_revoke(client=client)
    body = api.post("/graphql", {"query": SEARCH}, format="json").json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "unknown or revoked client key" in body["errors"][0]["message"]


def test_a_preload_keeps_the_active_keys_for_the_setting_and_not_the_revoked(front_end, clock, settings,
                                                                             django_assert_num_queries):
    settings.CLIENT_KEY_CACHE_SECONDS = 10
    client, key = front_end
    revoked, revoked_key = services.portal_client_create(name="old app")
    services.portal_client_revoke(client=revoked)
    assert services.portal_clients_accepted_preload() == 1
    with django_assert_num_queries(0):  # kept: the worker's first request does not look it up
        assert _accepted(key)
    with django_assert_num_queries(1):
        assert not _accepted(revoked_key)
    clock[0] += 10.1
    with django_assert_num_queries(1):  # kept no longer than an accepted key
        assert _accepted(key)


def test_no_preload_with_zero_seconds(front_end, settings, django_assert_num_queries):
    settings.CLIENT_KEY_CACHE_SECONDS = 0
    _, key = front_end
    with django_assert_num_queries(0):
        assert services.portal_clients_accepted_preload() == 0
    with django_assert_num_queries(1):
        assert _accepted(key)

"""The operator's admin for OCPI peers: parties inline, the outbox read-only, tokens never shown."""

import pytest
from django.contrib.auth import get_user_model

from locations.models import Location
from ocpi.models import OutboxEntry
from tests.conftest import location_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser(username="operator", password="pw", email="op@example.com")
    client.force_login(user)
    return client


def test_peer_pages_show_parties_and_never_tokens(staff, connected_peer, invited_peer):
    connected_peer.token_out = "gAAAA-ciphertext"
    connected_peer.save()
    listing = staff.get("/admin/ocpi/peer/").content.decode()
    assert "Peer Alpha" in listing and "Invited Platform" in listing
    page = staff.get(f"/admin/ocpi/peer/{connected_peer.pk}/change/").content.decode()
    assert "ALP" in page and "parties-0-cpo" in page
    for secret in (connected_peer.token, connected_peer.token_in_digest, "gAAAA-ciphertext", invited_peer.token_a,
                   invited_peer.token_a_digest):
        assert secret not in page and secret not in listing


def test_the_outbox_is_read_only(staff, connected_peer, alpha):
    from locations import services

    services.location_upsert(cpo=alpha, data=location_payload(alpha))
    location = Location.objects.get()
    entry = OutboxEntry.objects.create(peer=connected_peer, module="locations", country_code="DE", party_id="ALP",
                                       object_id=location.ocpi_id, object_pk=location.pk)
    assert staff.get("/admin/ocpi/outboxentry/").status_code == 200
    assert staff.get("/admin/ocpi/outboxentry/add/").status_code == 403
    page = staff.get(f"/admin/ocpi/outboxentry/{entry.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content

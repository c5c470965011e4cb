"""The hub's operators publish and unpublish through the admin."""

import pytest

from locations import services
from locations.enums import Moderation
from locations.models import Evse, Location
from tests.conftest import location_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(alpha):
    return services.location_upsert(cpo=alpha, data=location_payload(alpha)).instance


def test_admin_publish_and_unpublish_actions(admin_client, pending):
    url = "/admin/locations/location/"
    response = admin_client.post(url, {"action": "publish_locations", "_selected_action": [pending.pk]})
    assert response.status_code == 302
    assert Location.objects.get().moderation == Moderation.PUBLISHED
    assert Evse.objects.get().moderation == Moderation.PUBLISHED
    admin_client.post(url, {"action": "unpublish_locations", "_selected_action": [pending.pk]})
    assert Location.objects.get().moderation == Moderation.UNPUBLISHED


def test_admin_evse_actions(admin_client, pending):
    evse = pending.evses.get()
    admin_client.post("/admin/locations/evse/", {"action": "publish_evses", "_selected_action": [evse.pk]})
    assert Evse.objects.get().moderation == Moderation.PUBLISHED


@pytest.mark.parametrize("page", ["location", "evse", "connector", "cpo", "facility", "connectortype", "tariff",
                                  "photo", "capability", "paymenttype", "parkingtypecode", "parkingrestriction"])
def test_admin_pages_render(admin_client, pending, page):
    assert admin_client.get(f"/admin/locations/{page}/").status_code == 200


def test_admin_location_change_page_renders(admin_client, pending):
    assert admin_client.get(f"/admin/locations/location/{pending.pk}/change/").status_code == 200


def test_the_admin_is_closed_to_anonymous_callers(anonymous, pending):
    response = anonymous.get("/admin/locations/location/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_portal_client_keys_are_issued_once_in_the_admin(admin_client):
    from emsp.models import PortalClient

    response = admin_client.post("/admin/emsp/portalclient/add/", {"name": "driver app"}, follow=True)
    assert response.status_code == 200
    client = PortalClient.objects.get(name="driver app")
    assert len(client.key_digest) == 64
    assert "shown once" in response.content.decode()

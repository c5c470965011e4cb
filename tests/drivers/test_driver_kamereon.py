"""Seed 001, the Kamereon model: readings by name, actions answered at once with a notificationId, and
the notifications in the seed's shape; a car's own capabilities decide; another driver's car is a 404."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.drivers.conftest import CAPTUR, car_of
from vehicles import services
from vehicles.models import ActionStatus, RemoteAction
from vehicles.providers.base import Snapshot

pytestmark = pytest.mark.django_db

VIN = "VF1ADA00000000001"
JSONAPI = "application/vnd.api+json"


def test_battery_status_in_kamereons_envelope_with_its_freshness(as_ada, ada_car):
    response = as_ada.get(f"/api/vehicles/{VIN}/battery-status")
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["type"] == "Car" and body["data"]["id"] == VIN
    attributes = body["data"]["attributes"]
    assert attributes["batteryLevel"] == 62 and attributes["batteryAutonomy"] == 201
    assert attributes["plugStatus"] == 1 and attributes["chargingStatus"] == 0.0
    meta = body["meta"]
    assert 25 <= meta["age_seconds"] <= 120 and meta["estimated"] is False
    assert meta["account"]["status"] == "ACTIVE" and meta["account"]["needs_relogin"] is False
    assert set(meta["account"]["quota"]) == {"tokens_left", "refills_at", "cooling_down", "cooldown_until"}


def test_cockpit_and_location(as_ada, ada_car):
    assert as_ada.get(f"/api/vehicles/{VIN}/cockpit").json()["data"]["attributes"]["totalMileage"] == 12345.0
    location = as_ada.get(f"/api/vehicles/{VIN}/location").json()["data"]["attributes"]
    assert (location["gpsLatitude"], location["gpsLongitude"]) == (48.8566, 2.3522)


def test_a_charging_cars_soc_is_estimated_and_marked(ada, as_ada):
    car = car_of(ada, VIN, soc=None)
    # Its one reading is an hour old, taken while charging at 10.4 kW.
    services.vehicle_sample_upsert(vehicle=car, snapshot=Snapshot(
        maker_timestamp=timezone.now() - timedelta(hours=1), soc=40.0, charging_state="CHARGING", plugged=True,
        charging_power_kw=10.4))
    attributes = as_ada.get(f"/api/vehicles/{VIN}/battery-status").json()["data"]["attributes"]
    assert attributes["estimated"] is True
    assert 59 <= attributes["batteryLevel"] <= 61  # 10.4 kW for an hour into 52 kWh: +20 %
    assert attributes["chargingStatus"] == 1.0


def test_the_seeds_readings_that_the_car_lacks_are_400_naming_the_capability(ada, as_ada):
    car_of(ada, VIN, capabilities=CAPTUR)
    for reading in ("lock-status", "notification-settings", "charge-history"):
        response = as_ada.get(f"/api/vehicles/{VIN}/{reading}")
        assert response.status_code == 400, reading
        assert response.json()["capability"] == reading
        assert reading in response.json()["message"]


def test_a_reading_before_the_cars_first_sync_is_404_naming_what_asks_for_it(ada, as_ada):
    car_of(ada, VIN, soc=None)
    response = as_ada.get(f"/api/vehicles/{VIN}/hvac-status")
    assert response.status_code == 404
    assert response.json()["error"] == "not_read_yet" and "refresh-hvac-status" in response.json()["message"]
    assert as_ada.get(f"/api/vehicles/{VIN}/battery-status").json()["error"] == "not_read_yet"


def test_a_stored_reading_is_served_as_the_maker_sent_it(as_ada, ada_car):
    services.vehicle_sample_upsert(vehicle=ada_car, snapshot=Snapshot(
        maker_timestamp=timezone.now(), soc=63.0, readings={"hvac-status": {"hvacStatus": "off",
                                                                            "externalTemperature": 8.0}}))
    body = as_ada.get(f"/api/vehicles/{VIN}/hvac-status").json()
    assert body["data"]["attributes"] == {"hvacStatus": "off", "externalTemperature": 8.0}
    assert body["meta"]["reading_fetched_at"].endswith("Z")


def test_notification_settings_reading(as_ada, ada_car):
    services.notification_settings_set(vehicle=ada_car, values={"charge_end": "SMS"})
    attributes = as_ada.get(f"/api/vehicles/{VIN}/notification-settings").json()["data"]["attributes"]
    assert attributes["charge_end"] == "SMS" and attributes["do_not_disturb"] is None


def test_unknown_reading_and_action_are_404(as_ada, ada_car):
    assert as_ada.get(f"/api/vehicles/{VIN}/trip-history").status_code == 404
    assert as_ada.post(f"/api/vehicles/{VIN}/actions/srp-initiates").status_code == 404


def test_action_answers_at_once_and_its_notifications_follow_the_seed(as_ada, ada_car, ada,
                                                                       django_capture_on_commit_callbacks):
    payload = '{"data": {"type": "HvacStart", "attributes": {"action": "start", "targetTemperature": 21}}}'
    with django_capture_on_commit_callbacks() as callbacks:
        response = as_ada.generic("POST", f"/api/vehicles/{VIN}/actions/hvac-start", payload, content_type=JSONAPI)
    assert response.status_code == 200
    body = response.json()
    notification_id = body["notificationId"]
    assert uuid.UUID(notification_id) and body["status"] == "PENDING"
    row = RemoteAction.objects.get(pk=notification_id)
    assert row.params == {"action": "start", "targetTemperature": 21}
    assert len(callbacks) == 1  # the core's task, enqueued once the action is committed

    pending = as_ada.get(f"/api/vehicles/{VIN}/notifications", {"notificationId": notification_id}).json()
    assert pending == [{"notificationId": notification_id, "notifDate": pending[0]["notifDate"], "vin": VIN,
                        "personId": str(ada.user.pk), "kmrUserId": str(ada.user.pk),
                        "actionType": "COMMAND_RESPONSE", "commandResponse": {"status": "PENDING"},
                        "commandType": "HVAC_START"}]
    services.vehicle_action_advance(action=row, status=ActionStatus.COMPLETED)
    done = as_ada.post(f"/api/vehicles/{VIN}/notifications?notificationId={notification_id}").json()
    assert [n["commandResponse"]["status"] for n in done] == ["PENDING", "COMPLETED"]
    assert done[1]["notifDate"] >= done[0]["notifDate"]


def test_an_action_without_a_body_and_a_timeout(as_ada, ada_car):
    response = as_ada.post(f"/api/vehicles/{VIN}/actions/refresh-battery-status")
    assert response.status_code == 200
    RemoteAction.objects.filter(pk=response.json()["notificationId"]).update(
        deadline_at=timezone.now() - timedelta(seconds=1))
    statuses = [n["commandResponse"]["status"] for n in as_ada.get(f"/api/vehicles/{VIN}/notifications").json()]
    assert statuses == ["PENDING", "TIMEOUT"]


def test_actions_the_car_lacks_are_400_naming_the_capability(ada, as_ada):
    car_of(ada, VIN, capabilities=CAPTUR)
    for action in ("refresh-lock-status", "lock-unlock", "horn-lights"):
        response = as_ada.post(f"/api/vehicles/{VIN}/actions/{action}")
        assert response.status_code == 400
        assert response.json()["capability"] == action
    assert not RemoteAction.objects.exists()


def test_preconditioning_below_the_battery_floor_is_refused(ada, as_ada):
    car_of(ada, VIN, soc=30.0, hvac_min_soc=45.0)
    response = as_ada.post(f"/api/vehicles/{VIN}/actions/hvac-start")
    assert response.status_code == 400
    assert "45" in response.json()["message"] and response.json()["capability"] == "hvac-start"


def test_an_account_that_needs_a_relogin_is_told(as_ada, ada_car):
    services.maker_account_status_set(account=ada_car.account, status="NEEDS_RELOGIN", error="refresh token revoked")
    response = as_ada.post(f"/api/vehicles/{VIN}/actions/charging-start")
    assert response.status_code == 409 and "login" in response.json()["message"]
    meta = as_ada.get(f"/api/vehicles/{VIN}/battery-status").json()["meta"]
    assert meta["account"]["needs_relogin"] is True and meta["account"]["relogin_hint"]


# --- isolation: ben never reads nor acts on ada's car ------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("get", "battery-status"), ("get", "cockpit"), ("get", "notification-settings"), ("get", "hvac-status"),
    ("post", "actions/hvac-start"), ("post", "actions/charging-start"), ("get", "notifications"),
    ("post", "notifications"),
])
def test_another_drivers_car_is_not_found(as_ben, ada_car, ben_car, method, path):
    response = getattr(as_ben, method)(f"/api/vehicles/{VIN}/{path}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert not RemoteAction.objects.filter(vehicle=ada_car).exists()


def test_another_drivers_notification_is_not_listed(as_ada, as_ben, ada_car, ben_car):
    mine = as_ada.post(f"/api/vehicles/{VIN}/actions/charging-start").json()["notificationId"]
    assert as_ben.get(f"/api/vehicles/{ben_car.vin}/notifications", {"notificationId": mine}).json() == []


def test_anonymous_and_portal_callers_are_401(ada_car):
    anonymous = APIClient()
    assert anonymous.get(f"/api/vehicles/{VIN}/battery-status").status_code == 401
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert anonymous.post(f"/api/vehicles/{VIN}/actions/hvac-start").status_code == 401


def test_an_action_on_a_bmw_says_bmw_offers_no_commands(ada, as_ada):
    car_of(ada, "WBY7Z0000000000BM", provider="bmw", brand="BMW", capabilities=["battery-status", "cockpit", "location"])
    response = as_ada.post("/api/vehicles/WBY7Z0000000000BM/actions/charging-start")
    assert response.status_code == 400
    assert response.json()["capability"] == "charging-start" and "read-only" in response.json()["message"]
    ze = as_ada.post("/api/vehicle/WBY7Z0000000000BM/charge")
    assert ze.status_code == 400 and "read-only" in ze.json()["message"]

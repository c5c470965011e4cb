"""Seed 002, the ZE Services calls: every curl of the seed sent as printed (the seed's own text where
../shared/seeds is present, our verbatim copy otherwise), answered in the seed's shapes; then what the old
service lacked, the capabilities a car lacks, and isolation between drivers."""

import base64
import json
import re
from datetime import datetime, timezone as dt_timezone

import pytest
from rest_framework.test import APIClient

from emsp.drivers.accounts import driver_create
from tests.drivers.conftest import ALL, CAPTUR, car_of
from tests.drivers.curls import FIXTURES, SEEDS, commands, seed_curls, send
from vehicles import services
from vehicles.models import ActionStatus, RemoteAction, Vehicle
from vehicles.providers.base import Snapshot

pytestmark = pytest.mark.django_db

VIN = "VF1ZOE00000000001"
OCT_2016 = datetime(2016, 10, 15, 8, 0, tzinfo=dt_timezone.utc)


def _jwt_payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _october_2016(vehicle: Vehicle) -> None:
    """A charge in October 2016, as the sync engine would have stored it, and a completed preconditioning."""
    for minute, state, soc, power in ((0, "NOT_CHARGING", 34.0, None), (10, "CHARGING", 35.0, 11.0),
                                      (200, "COMPLETE", 100.0, None)):
        services.vehicle_sample_upsert(vehicle=vehicle, snapshot=Snapshot(
            maker_timestamp=OCT_2016.replace(hour=8 + minute // 60, minute=minute % 60), soc=soc, range_km=soc * 1.2,
            charging_state=state, plugged=True, charging_power_kw=power))


@pytest.fixture
def terence(db):
    driver = driver_create(username="you@example.com", password="P4ssw0rd", email="you@example.com",
                           first_name="Terence", last_name="Eden", phone_number="+447700900123")
    vehicle = car_of(driver, VIN, provider="renault", hvac_min_soc=45.0)
    _october_2016(vehicle)
    services.vehicle_sample_upsert(vehicle=vehicle, snapshot=Snapshot(  # and its state now
        maker_timestamp=datetime.now(dt_timezone.utc), soc=62.0, range_km=201.0, charging_state="NOT_CHARGING",
        plugged=True))
    return driver


def test_our_copy_of_the_seeds_curls_is_the_seed():
    for name in ("000", "002"):
        found = sorted(SEEDS.glob(f"{name}_*.txt")) if SEEDS.is_dir() else []
        if not found:
            pytest.skip("../shared/seeds is absent (a user's clone has none)")
        assert "\n\n".join(commands(found[0].read_text(encoding="utf-8"))) + "\n" == \
            (FIXTURES / f"{name}.curl.txt").read_text(encoding="utf-8")


def test_every_curl_of_the_seed_as_printed(terence):
    curls = seed_curls("002")
    assert len(curls) == 15
    client = APIClient()
    tokens: dict[str, str] = {}

    def call(curl):
        replace = {"VVVV": VIN, "AAAA": tokens.get("token", "AAAA"), "DDDD": tokens.get("refresh_token", "DDDD")}
        return send(client, curl, replace)

    answers = []
    for curl in curls:
        if curl.path.endswith("/air-conditioning/last"):
            # Between the precondition and this call the worker ran it, in October 2016.
            action = RemoteAction.objects.get(action="hvac-start")
            services.vehicle_action_advance(action=action, status=ActionStatus.COMPLETED)
            RemoteAction.objects.filter(pk=action.pk).update(requested_at=OCT_2016)
        response = call(curl)
        assert response.status_code == 200, (curl.method, curl.path, response.content[:300])
        answers.append(response.json())
        if curl.path == "/api/user/login":
            tokens = {"token": response.json()["token"], "refresh_token": response.json()["refresh_token"]}

    (login, battery, precondition, scheduled, last, ac_history, charge, history, settings_put, settings_get,
     offboard, onboard, deploy, disabled, refreshed) = answers
    # Login: the seed's user, our driver and car.
    user = login["user"]
    assert set(user) >= {"id", "locale", "country", "timezone", "email", "first_name", "last_name", "phone_number",
                         "vehicle_details", "scopes", "active_account", "associated_vehicles", "gdc_uid"}
    assert (user["email"], user["first_name"], user["last_name"]) == ("you@example.com", "Terence", "Eden")
    assert user["vehicle_details"]["VIN"] == VIN and user["associated_vehicles"][0]["VIN"] == VIN
    assert {"BATTERY_CHARGE_STATUS", "AC_REMOTE_CONTROL", "BATTERY_CHARGE_SCHEDULING"} <= set(user["scopes"])
    assert _jwt_payload(login["token"])["exp"] > _jwt_payload(login["token"])["iat"]
    # Battery: plugged, not charging: a charging_point and no remaining_time.
    assert battery["charging"] is False and battery["plugged"] is True
    assert (battery["charge_level"], battery["remaining_range"]) == (62, 201.0)
    assert battery["charging_point"] == "INVALID" and "remaining_time" not in battery
    assert isinstance(battery["last_update"], int) and battery["last_update"] > 1.7e12
    assert "notificationId" in precondition and "notificationId" in charge and "notificationId" in deploy
    assert scheduled == {"start": "1753", "weekdays": [], "active": True}
    assert last == {"date": int(OCT_2016.timestamp() * 1000), "type": "USER_REQUEST", "result": "SUCCESS"}
    assert ac_history == [last]
    assert [entry["type"] for entry in history] == ["END_NOTIFICATION", "START_NOTIFICATION"]
    start = history[1]
    assert start["charging_point"] == "ACCELERATED" and start["charge_level"] == 35 and start["remaining_autonomy"] == 42
    assert start["remaining_time"] == round(65 / 100 * 52 / 11 * 60) * 60_000  # milliseconds, as the seed's
    assert history[0]["charge_level"] == 100 and history[0]["date"] > start["date"]
    expected = {"battery_status": "EMAIL", "charge_start": "SMS", "charge_end": "SMS", "charge_problem": "SMS",
                "low_battery": "SMS", "low_battery_reminder": "SMS", "do_not_disturb": None}
    assert settings_put == expected and settings_get == expected
    seed_schedule = {"mon": {"start": "0100", "duration": "0115"}, "tue": {"start": "0200", "duration": "0015"},
                     "wed": {"start": "0300", "duration": "0015"}, "thu": {"start": "1600", "duration": "0015"},
                     "fri": {"start": "1900", "duration": "0015"}, "sat": {"start": "1400", "duration": "0015"},
                     "sun": {"start": "1200", "duration": "0015"}}
    assert offboard["schedule"] == seed_schedule and onboard["schedule"] == seed_schedule
    assert onboard["enabled"] is False
    assert RemoteAction.objects.get(pk=deploy["notificationId"]).params["windows"][0] == {
        "weekday": 0, "start": "0100", "duration_minutes": 75}
    assert disabled["enabled"] is False
    # The refreshed token: same session, later expiry, and it opens the car.
    assert set(refreshed) == {"token"}
    assert _jwt_payload(refreshed["token"])["exp"] >= _jwt_payload(login["token"])["exp"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed['token']}")
    assert client.get(f"/api/vehicle/{VIN}/battery").status_code == 200
    # The refresh token stays good, as the seed says ("keep that one at hand").
    again = APIClient().post("/api/user/token/refresh", {"refresh_token": tokens["refresh_token"]}, format="json")
    assert again.status_code == 200


def test_do_not_disturb_as_the_seed_changes_it(terence):
    api = _as("you@example.com", "P4ssw0rd")
    body = '{"battery_status":"EMAIL","charge_start":"SMS","charge_end":"SMS","charge_problem":"SMS","low_battery":"SMS","low_battery_reminder":"SMS","do_not_disturb":{"start":"1710","end":"1811"}}'
    response = api.put(f"/api/vehicle/{VIN}/settings/notification", body, content_type="application/json;charset=UTF-8")
    assert response.status_code == 200
    assert response.json()["do_not_disturb"] == {"start": "1710", "end": "1811"}
    bad = api.put(f"/api/vehicle/{VIN}/settings/notification", {"charge_end": "PIGEON"}, format="json")
    assert bad.status_code == 400


def _as(username: str, password: str) -> APIClient:
    api = APIClient()
    token = api.post("/api/user/login", {"username": username, "password": password}, format="json").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api


def test_login_refusals_are_plain_json(terence):
    response = APIClient().post("/api/user/login", {"username": "you@example.com", "password": "nope"}, format="json")
    assert response.status_code == 401
    assert response.json()["message"] == "wrong username or password"
    assert APIClient().post("/api/user/token/refresh", {"refresh_token": "DDDD"}, format="json").status_code == 401
    assert APIClient().post("/api/user/token/refresh", {}, format="json").status_code == 400


def test_several_windows_a_day_and_overlaps_refused(terence):
    api = _as("you@example.com", "P4ssw0rd")
    body = {"mon": [{"start": "0100", "duration": "0115"}, {"start": "1800", "duration": "0400"}],
            "tue": {"start": "0200", "duration": "0015"}}
    response = api.put(f"/api/vehicle/{VIN}/charge/scheduler/offboard", body, format="json")
    assert response.status_code == 200
    assert response.json()["schedule"] == body
    onboard = api.get(f"/api/vehicle/{VIN}/charge/scheduler/onboard").json()
    assert onboard["schedule"] == body and onboard["deployed"] is False
    overlap = {"mon": [{"start": "0100", "duration": "0200"}, {"start": "0200", "duration": "0015"}]}
    assert api.put(f"/api/vehicle/{VIN}/charge/scheduler/offboard", overlap, format="json").status_code == 400
    for bad in ({"mon": {"start": "0110", "duration": "0015"}}, {"mon": {"start": "0100", "duration": "0010"}}, {}):
        response = api.put(f"/api/vehicle/{VIN}/charge/scheduler/offboard", bad, format="json")
        assert response.status_code == 400, bad
    enabled = api.put(f"/api/vehicle/{VIN}/charge/scheduler/onboard", {"enabled": True}, format="json").json()
    assert enabled["enabled"] is True and enabled["schedule"] == body


def test_a_scheduled_precondition_can_be_cancelled(terence):
    api = _as("you@example.com", "P4ssw0rd")
    assert api.post(f"/api/vehicle/{VIN}/air-conditioning/scheduler", {"start": "0730", "weekdays": [0, 4]},
                    format="json").json() == {"start": "0730", "weekdays": [0, 4], "active": True}
    assert api.get(f"/api/vehicle/{VIN}/air-conditioning/scheduler").json()["active"] is True
    assert api.delete(f"/api/vehicle/{VIN}/air-conditioning/scheduler").json() == {"cancelled": 1}
    assert api.get(f"/api/vehicle/{VIN}/air-conditioning/scheduler").json() == {
        "start": None, "weekdays": [], "active": False}
    assert RemoteAction.objects.filter(action="hvac-schedule-cancel").count() == 1
    assert api.post(f"/api/vehicle/{VIN}/air-conditioning/scheduler", {"start": "2460"},
                    format="json").status_code == 400


def test_preconditioning_is_refused_below_the_battery_floor(terence):
    services.vehicle_sample_upsert(vehicle=Vehicle.objects.get(vin=VIN), snapshot=Snapshot(
        maker_timestamp=datetime.now(dt_timezone.utc), soc=40.0, charging_state="NOT_CHARGING", plugged=False))
    response = _as("you@example.com", "P4ssw0rd").post(f"/api/vehicle/{VIN}/air-conditioning")
    assert response.status_code == 400
    assert response.json()["capability"] == "hvac-start" and "45" in response.json()["message"]
    assert not RemoteAction.objects.filter(action="hvac-start").exists()


def test_a_charging_battery_tells_its_remaining_time(terence):
    services.vehicle_sample_upsert(vehicle=Vehicle.objects.get(vin=VIN), snapshot=Snapshot(
        maker_timestamp=datetime.now(dt_timezone.utc), soc=50.0, charging_state="CHARGING", plugged=True,
        charging_power_kw=22.0))
    battery = _as("you@example.com", "P4ssw0rd").get(f"/api/vehicle/{VIN}/battery").json()
    assert battery["charging"] is True and battery["charging_point"] == "ACCELERATED"
    assert battery["remaining_time"] == round(0.5 * 52 / 22 * 60)


def test_bad_months_are_400(terence):
    api = _as("you@example.com", "P4ssw0rd")
    for query in ("begin=1316", "begin=10", "begin=1016&end=0916"):
        assert api.get(f"/api/vehicle/{VIN}/charge/history?{query}").status_code == 400, query


# --- a car without the capability: 400 naming it, never a 500 -------------------------------------------------

CALLS = [
    ("get", "battery", None, "battery-status"),
    ("post", "air-conditioning", None, "hvac-start"),
    ("get", "air-conditioning?begin=1016", None, "hvac-start"),
    ("get", "air-conditioning/last", None, "hvac-start"),
    ("post", "air-conditioning/scheduler", {"start": "1753"}, "hvac-schedule"),
    ("get", "air-conditioning/scheduler", None, "hvac-schedule"),
    ("delete", "air-conditioning/scheduler", None, "hvac-schedule"),
    ("post", "charge", None, "charging-start"),
    ("get", "charge/history?begin=1016", None, "charge-history"),
    ("get", "settings/notification", None, "notification-settings"),
    ("put", "settings/notification", {"charge_end": "SMS"}, "notification-settings"),
    ("put", "charge/scheduler/offboard", {"mon": {"start": "0100", "duration": "0115"}}, "charge-schedule"),
    ("get", "charge/scheduler/onboard", None, "charge-schedule"),
    ("put", "charge/scheduler/onboard", {"enabled": False}, "charge-schedule"),
    ("post", "charge/scheduler/offboard/deploy", None, "charge-schedule"),
]


@pytest.mark.parametrize("method,path,body,capability", CALLS)
def test_a_car_without_the_capability(ada, as_ada, method, path, body, capability):
    car_of(ada, VIN, capabilities=[])
    response = getattr(as_ada, method)(f"/api/vehicle/{VIN}/{path}", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["capability"] == capability


@pytest.mark.parametrize("method,path,body,capability", CALLS)
def test_another_drivers_car_is_not_found(ada, as_ben, ben_car, method, path, body, capability):
    car_of(ada, VIN, capabilities=ALL)
    response = getattr(as_ben, method)(f"/api/vehicle/{VIN}/{path}", body, format="json")
    assert response.status_code == 404
    assert not RemoteAction.objects.filter(vehicle__vin=VIN).exists()


@pytest.mark.parametrize("method,path,body,capability", CALLS)
def test_without_a_drivers_token(ada, method, path, body, capability):
    car_of(ada, VIN, capabilities=CAPTUR)
    assert getattr(APIClient(), method)(f"/api/vehicle/{VIN}/{path}", body, format="json").status_code == 401


def test_the_ze_refresh_token_is_a_drivers_own(terence, ada):
    login = APIClient().post("/api/user/login", {"username": "you@example.com", "password": "P4ssw0rd"},
                             format="json").json()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {login['token']}")
    assert api.post("/api/auth/v1/logout").status_code == 200
    response = APIClient().post("/api/user/token/refresh", {"refresh_token": login["refresh_token"]}, format="json")
    assert response.status_code == 401
    assert re.search("log in", response.json()["message"])

"""End to end on the simulated maker: a driver's account linked through the real login and discovery, its
car synced by the engine, then read and acted on through the drivers' endpoints, the actions run as the
worker runs them. Transactional: the engine reads the database from threads of its own."""

import os
import time
import uuid

import pytest
from django.db import connection
from rest_framework.test import APIClient

from emsp.drivers.accounts import driver_create
from tests.drivers.conftest import PASSWORD, as_driver
from tests.vehicles.sim import sync_now
from vehicles import services, sync
from vehicles.models import ActionStatus, MakerAccount, RemoteAction, VehicleState

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def sim():
    from vehicles.simulator_server import Config, ServerThread

    server = ServerThread(Config(speed=60, report_every=1, action_delay=0.2))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def engine(settings, sim):
    if not os.environ.get("REDIS_URL") or connection.vendor != "postgresql":
        pytest.skip("the sync engine needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    settings.VEHICLES_HTTP_TIMEOUT = 2.0
    settings.VEHICLES_QUOTA_WAIT_SECONDS = 0.0
    settings.VEHICLES_ACTION_CHECK_SECONDS = 0.1
    settings.VEHICLES_SIMULATOR_URL = sim.url
    sim.call(lambda cloud: setattr(cloud.config, "fault_rates", {}))
    return sim


def _linked(engine, username: str):
    driver = driver_create(username=username, password=PASSWORD)
    login = f"{username}-{uuid.uuid4().hex[:8]}@sim.example"
    engine.call(lambda cloud: cloud.account_add(login, "secret", [{"soc": 80.0, "phase": "plugged"}]))
    account = sync.account_connect(driver=driver.user, provider="simulator",
                                   credentials={"username": login, "password": "secret"},
                                   options={"base_url": engine.url})
    sync_now(account)
    return account.vehicles.get()


def _run_until_done(action_id: str) -> RemoteAction:
    """What the worker's `vehicles.action_run` task does, until the action ends."""
    for _ in range(50):
        action = sync.action_run(action_id=action_id)
        if action.status != ActionStatus.PENDING:
            return action
        time.sleep(0.1)
    raise AssertionError("the simulated car never answered")


def test_kamereon_reads_and_actions_on_a_simulated_car(engine):
    car = _linked(engine, "ada")
    api = as_driver("ada")
    state = VehicleState.objects.get(vehicle=car)
    battery = api.get(f"/api/vehicles/{car.vin}/battery-status").json()
    assert battery["data"]["attributes"]["batteryLevel"] == round(state.soc, 1) or \
        battery["data"]["attributes"]["estimated"] is True
    assert battery["meta"]["account"]["status"] == "ACTIVE"
    # The quota the sync drew from, and when it is full again: never hidden.
    quota = battery["meta"]["account"]["quota"]
    assert 0 <= quota["tokens_left"] < 24 and quota["refills_at"].endswith("Z")
    assert battery["meta"]["fetched_at"] and battery["meta"]["age_seconds"] < 60

    # Never synced as such: asked of the simulated maker now, then served as stored.
    hvac = api.get(f"/api/vehicles/{car.vin}/hvac-status")
    assert hvac.status_code == 200, hvac.content
    assert "hvacStatus" in hvac.json()["data"]["attributes"]
    again = api.get(f"/api/vehicles/{car.vin}/hvac-status").json()
    assert again["meta"]["reading_fetched_at"] == hvac.json()["meta"]["reading_fetched_at"]

    accepted = api.post(f"/api/vehicles/{car.vin}/actions/hvac-start",
                        '{"data": {"type": "HvacStart", "attributes": {"action": "start"}}}',
                        content_type="application/vnd.api+json").json()
    assert _run_until_done(accepted["notificationId"]).status == ActionStatus.COMPLETED
    told = api.get(f"/api/vehicles/{car.vin}/notifications", {"notificationId": accepted["notificationId"]}).json()
    assert [n["commandResponse"]["status"] for n in told] == ["PENDING", "COMPLETED"]
    assert told[0]["commandType"] == "HVAC_START"

    # Another driver sees none of it.
    driver_create(username="ben", password=PASSWORD)
    ben = as_driver("ben")
    assert ben.get(f"/api/vehicles/{car.vin}/battery-status").status_code == 404
    assert ben.get(f"/api/vehicles/{car.vin}/notifications").status_code == 404


def test_ze_services_on_a_simulated_car(engine):
    car = _linked(engine, "terence")
    login = APIClient().post("/api/user/login", {"username": "terence", "password": PASSWORD}, format="json").json()
    assert login["user"]["vehicle_details"]["VIN"] == car.vin
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {login['token']}")
    battery = api.get(f"/api/vehicle/{car.vin}/battery").json()
    assert set(battery) >= {"charging", "plugged", "charge_level", "remaining_range", "last_update"}
    charge = api.post(f"/api/vehicle/{car.vin}/charge").json()
    assert _run_until_done(charge["notificationId"]).status == ActionStatus.COMPLETED
    precondition = api.post(f"/api/vehicle/{car.vin}/air-conditioning").json()
    assert _run_until_done(precondition["notificationId"]).status == ActionStatus.COMPLETED
    last = api.get(f"/api/vehicle/{car.vin}/air-conditioning/last").json()
    assert last["type"] == "USER_REQUEST" and last["result"] == "SUCCESS"
    schedule = api.put(f"/api/vehicle/{car.vin}/charge/scheduler/offboard",
                       {"mon": [{"start": "0100", "duration": "0200"}, {"start": "1300", "duration": "0100"}]},
                       format="json")
    assert schedule.status_code == 200
    deploy = api.post(f"/api/vehicle/{car.vin}/charge/scheduler/offboard/deploy").json()
    assert _run_until_done(deploy["notificationId"]).status == ActionStatus.COMPLETED
    onboard = api.get(f"/api/vehicle/{car.vin}/charge/scheduler/onboard").json()
    assert onboard["deployed"] is True and len(onboard["schedule"]["mon"]) == 2


def test_a_failing_maker_is_a_503_with_retry_after_never_a_500(engine):
    car = _linked(engine, "ada")
    engine.call(lambda cloud: setattr(cloud.config, "fault_rates", {"500": 1.0}))
    response = as_driver("ada").get(f"/api/vehicles/{car.vin}/lock-status")
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) >= 1
    assert response.json()["error"] == "unavailable"


def test_link_relogin_and_unlink_a_maker_account_through_the_api(engine):
    driver_create(username="ada", password=PASSWORD)
    driver_create(username="ben", password=PASSWORD)
    login = f"ada-{uuid.uuid4().hex[:8]}@sim.example"
    password = f"pw-{uuid.uuid4().hex}"
    engine.call(lambda cloud: cloud.account_add(login, password, 2))
    api, ben = as_driver("ada"), as_driver("ben")
    body = {"provider": "simulator", "username": login, "password": password}

    assert api.post("/api/accounts", {**body, "password": "wrong"}, format="json").status_code == 403
    linked = api.post("/api/accounts", body, format="json")
    assert linked.status_code == 201, linked.content
    account = linked.json()["account"]
    assert account["status"] == "ACTIVE" and len(linked.json()["vehicles"]) == 2
    stored = MakerAccount.objects.get(pk=account["id"])
    assert password not in str(stored.__dict__)  # the password served the login only
    assert ben.post("/api/accounts", body, format="json").status_code == 409  # ada's account

    # The maker refuses the stored tokens: the driver is told, then logs in again.
    services.maker_account_status_set(account=MakerAccount.objects.get(pk=account["id"]), status="NEEDS_RELOGIN",
                                      error="refresh token revoked")
    told = api.get("/api/vehicles").json()["accounts"][0]
    assert told["needs_relogin"] is True and "POST /api/accounts" in told["relogin_hint"]
    assert api.post("/api/accounts", body, format="json").json()["account"]["needs_relogin"] is False

    assert api.post("/api/accounts", {**body, "provider": "bmw"}, format="json").status_code == 400
    assert ben.delete(f"/api/accounts/{account['id']}").status_code == 404
    assert api.delete(f"/api/accounts/{account['id']}").status_code == 204
    assert api.post("/api/get-user-devices").json() == []

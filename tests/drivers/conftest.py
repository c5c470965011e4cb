"""The drivers' cast: `ada` and her neighbour `ben`, who must never see or touch each other's cars."""

import pytest
from rest_framework.test import APIClient

from emsp.drivers.accounts import driver_create

PASSWORD = "volts and amps 2026"


@pytest.fixture
def ada(db):
    return driver_create(username="ada", password=PASSWORD, email="ada@example.com", first_name="Ada",
                         last_name="Lovelace", phone_number="+447700900123")


@pytest.fixture
def ben(db):
    return driver_create(username="ben", password=PASSWORD, email="ben@example.com")


def driver_login(username: str, password: str = PASSWORD):
    return APIClient().post("/api/auth/v1/login", {"username": username, "password": password}, format="json")


def as_driver(username: str) -> APIClient:
    api = APIClient()
    tokens = driver_login(username).json()["data"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    return api


@pytest.fixture
def as_ada(ada) -> APIClient:
    return as_driver("ada")


@pytest.fixture
def as_ben(ben) -> APIClient:
    return as_driver("ben")


# --- cars, made through the vehicles services as the sync engine makes them ----------------------------

ALL = ["battery-status", "cockpit", "location", "hvac-status", "lock-status", "charge-mode", "charge-history",
       "hvac-history", "notification-settings", "refresh-battery-status", "refresh-hvac-status",
       "refresh-location", "refresh-lock-status", "charging-start", "hvac-start", "lock-unlock", "horn-lights",
       "charge-schedule", "hvac-schedule", "hvac-schedule-cancel"]
# What seed 001 found working on a Captur plug-in: no lock status, no lock or horn.
CAPTUR = ["battery-status", "cockpit", "location", "hvac-status", "refresh-battery-status",
          "refresh-hvac-status", "refresh-location", "charging-start", "hvac-start"]


def car_of(driver, vin: str, *, provider: str = "simulator", capabilities=ALL, soc: float | None = 62.0,
           hvac_min_soc: float | None = None, external_id: str | None = None, **facts):
    from datetime import timedelta

    from django.utils import timezone

    from vehicles import services
    from vehicles.providers.base import DiscoveredVehicle, Snapshot, Tokens

    account = services.maker_account_link(driver=driver.user, provider=provider,
                                          external_id=external_id or f"{provider}-{driver.user.username}",
                                          tokens=Tokens(access_token="a", refresh_token="r"),
                                          label=driver.user.email)
    vehicle = services.vehicle_upsert(account=account, discovered=DiscoveredVehicle(
        vin=vin, maker_id=facts.pop("maker_id", f"id-{vin}"), brand=facts.pop("brand", "Renault"),
        model=facts.pop("model", "ZOE"), year=facts.pop("year", 2021),
        battery_capacity_kwh=facts.pop("battery_capacity_kwh", 52.0), capabilities=list(capabilities),
        hvac_min_soc=hvac_min_soc))
    if soc is not None:
        services.vehicle_sample_upsert(vehicle=vehicle, snapshot=Snapshot(
            maker_timestamp=timezone.now() - timedelta(seconds=30), soc=soc, range_km=201.0,
            charging_state=facts.pop("charging_state", "NOT_CHARGING"), plugged=facts.pop("plugged", True),
            charging_power_kw=facts.pop("charging_power_kw", None), latitude=48.8566, longitude=2.3522,
            odometer_km=12345.0))
    vehicle.refresh_from_db()
    return vehicle


@pytest.fixture
def ada_car(ada):
    return car_of(ada, "VF1ADA00000000001")


@pytest.fixture
def ben_car(ben):
    return car_of(ben, "VF1BEN00000000002")

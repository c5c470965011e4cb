"""Drivers `dora` and `eve` (who must never reach dora's car), each with a simulated car account."""

from datetime import datetime, timezone

import pytest
from django.contrib.auth import get_user_model

from vehicles import services
from vehicles.providers.base import READINGS, ACTIONS, DiscoveredVehicle, Tokens

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def _driver(username):
    return get_user_model().objects.create_user(username=username, password="x-" + username)


@pytest.fixture
def dora(db):
    return _driver("dora")


@pytest.fixture
def eve(db):
    return _driver("eve")


@pytest.fixture
def dora_car(dora):
    account = services.maker_account_link(driver=dora, provider="simulator", external_id="sim-dora",
                                          tokens=Tokens(access_token="access-token-of-dora", refresh_token="refresh-token-of-dora"), label="dora@example.com")
    return services.vehicle_upsert(account=account, discovered=DiscoveredVehicle(
        vin="VF1AG000000000001", maker_id="sim-1", brand="Renault", model="ZOE", year=2022,
        battery_capacity_kwh=52.0, capabilities=[*READINGS, *ACTIONS], hvac_min_soc=45.0))


@pytest.fixture(scope="session")
def sim_server():
    """One simulated cloud for the session: fast physics, a report a second, actions answered at once."""
    from vehicles.simulator_server import Config, ServerThread

    server = ServerThread(Config(speed=60, report_every=1, action_delay=0.2))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def engine(settings, sim_server):
    """The engine against the simulator, on real PostgreSQL and Redis, with small timeouts and backoffs."""
    import os

    from django.db import connection

    if not os.environ.get("REDIS_URL") or connection.vendor != "postgresql":
        pytest.skip("the sync engine's tests need PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    settings.VEHICLES_HTTP_TIMEOUT = 1.0
    settings.VEHICLES_QUOTA_WAIT_SECONDS = 0.0
    settings.VEHICLES_BACKOFF_SECONDS = 30
    sim_server.call(lambda cloud: setattr(cloud.config, "fault_rates", {}))
    return sim_server

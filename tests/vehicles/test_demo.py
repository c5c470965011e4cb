"""The demo driver's simulated car: linked before the simulator runs, and good when it does."""

import pytest
from django.contrib.auth import get_user_model

from vehicles import models as m
from vehicles import services
from vehicles.simulator_server import Config, ServerThread

from .sim import sync_now

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_car_is_linked_once_and_the_simulator_started_by_the_procfile_serves_it(engine, settings):
    driver, cars = services.demo_car_link()
    assert not driver.has_usable_password()  # the drivers' side sets it
    again, cars_again = services.demo_car_link()
    assert again.pk == driver.pk and [c.pk for c in cars_again] == [c.pk for c in cars]
    assert m.MakerAccount.objects.filter(driver=driver).count() == 1

    # What `oem_simulator --account demo-driver:demo-driver-simulator:1` serves, on a port of its own.
    server = ServerThread(Config(report_every=1))
    settings.VEHICLES_SIMULATOR_URL = server.start()
    try:
        username, password = services.DEMO_SIMULATOR_USER
        server.call(lambda cloud: cloud.account_add(username, password, 1))
        report = sync_now(cars[0])
    finally:
        server.stop()
    assert report.ok == 1
    assert m.VehicleState.objects.get(vehicle=cars[0]).soc is not None


def test_demo_car_goes_to_the_existing_demo_driver(db):
    user = get_user_model().objects.create_user(username="demo-driver", password="set-by-drivers-side")
    driver, _ = services.demo_car_link()
    assert driver.pk == user.pk and driver.check_password("set-by-drivers-side")


def test_demo_load_gives_the_demo_driver_a_simulated_car(db, tmp_path):
    import json

    from django.core.management import call_command

    call_command("demo_load", output=str(tmp_path / "demo-credentials.json"))
    credentials = json.loads((tmp_path / "demo-credentials.json").read_text())
    driver = get_user_model().objects.get(username="demo-driver")
    assert credentials["driver"]["username"] == "demo-driver" and driver.check_password(credentials["driver"]["password"])
    car = m.Vehicle.objects.get(account__driver=driver)
    assert car.account.provider == "simulator" and car.next_poll_at is not None

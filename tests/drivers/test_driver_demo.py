"""`make run`'s demo driver: in var/demo-credentials.json, and the login there works, run after run."""

import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.drivers.conftest import driver_login

pytestmark = pytest.mark.django_db


def test_demo_driver_logs_in_with_the_written_credentials(tmp_path):
    output = tmp_path / "demo-credentials.json"
    call_command("demo_load", output=str(output))
    driver = json.loads(output.read_text())["driver"]
    assert driver["username"] == "demo-driver"
    response = driver_login(driver["username"], driver["password"])
    assert response.status_code == 200 and response.json()["data"]["role"] == "DRIVER"
    # Its simulated car, in the device list (linked before the simulator runs: not synced yet).
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['data']['access_token']}")
    [car] = api.post("/api/get-user-devices").json()
    assert car["device_type"] == "simulator" and car["device_id"]
    assert api.get(f"/api/vehicles/{car['device_id']}/notifications").json() == []
    call_command("demo_load", output=str(output))
    assert json.loads(output.read_text())["driver"] == driver
    assert driver_login(driver["username"], driver["password"]).status_code == 200

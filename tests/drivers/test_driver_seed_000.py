"""Seed 000's two requests as printed: the closed BMW login is told how to link now; the device list
answers an unknown token 401 and the driver's own with the seed's device shape."""

import pytest
from rest_framework.test import APIClient

from tests.drivers.conftest import car_of, driver_login
from tests.drivers.curls import seed_curls, send

pytestmark = pytest.mark.django_db


def test_the_seeds_bmw_login_is_told_how_to_link_now():
    oauth = seed_curls("000")[0]
    assert oauth.path == "/api/bmw/oauth-token" and "password" in oauth.data
    response = send(APIClient(), oauth, {})
    assert response.status_code == 410
    body = response.json()
    assert body["error"] == "bmw_password_login_closed"
    assert "client_id" in body["message"] and "CarData" in body["message"] and "/api/auth/v1/login" in body["message"]


def test_the_closed_login_from_a_driver_too_and_an_empty_body(ada):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {driver_login('ada').json()['data']['access_token']}")
    assert api.post("/api/bmw/oauth-token", {"email": "a@b.example", "password": "x"}, format="json").status_code == 410
    assert api.post("/api/bmw/oauth-token", {}, format="json").status_code == 400
    assert api.post("/api/bmw/oauth-token", {"client_id": "no spaces allowed"}, format="json").status_code == 400


def test_linking_needs_a_driver():
    response = APIClient().post("/api/bmw/oauth-token", {"client_id": "6f1c2b0e-cardata-client"}, format="json")
    assert response.status_code == 401


def test_the_seeds_device_list_request(ada):
    car_of(ada, "WBY7Z0000000000BM", provider="bmw", brand="BMW", model="i3s 94 REX", year=2018, soc=82.0,
           capabilities=["battery-status"])
    devices = seed_curls("000")[1]
    assert devices.path == "/api/get-user-devices"
    # The seed's own token is no token of ours.
    assert send(APIClient(), devices, {}).status_code == 401
    seed_token = devices.headers["Authorization"].split()[1]
    ours = driver_login("ada").json()["data"]["access_token"]
    response = send(APIClient(), devices, {seed_token: ours})
    assert response.status_code == 200
    [device] = response.json()
    assert device["device_id"] == "WBY7Z0000000000BM" and device["charging_state"]["charge_percentage"] == "82"

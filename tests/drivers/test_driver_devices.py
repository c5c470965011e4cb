"""Seed 000's device list, for every maker, and each car's freshness and account state."""

import pytest
from rest_framework.test import APIClient

from tests.drivers.conftest import car_of

pytestmark = pytest.mark.django_db

DEVICE_KEYS = {"_id", "electric_range", "device_type", "user_id", "device_id", "id", "model", "year", "brand",
               "charging_state", "__v"}


def test_get_user_devices_as_the_seed_sends_it(ada, as_ada):
    car_of(ada, "WBY7Z0000000000BM", provider="bmw", brand="BMW", model="i3s 94 REX", year=2018, soc=82.0,
           maker_id="916ba1b2eeba4b4881ce9d829852d70e", capabilities=["battery-status"])
    car_of(ada, "VF1ADA00000000001", provider="renault", soc=None)
    # The seed's body: an email and password older clients send, ignored.
    response = as_ada.post("/api/get-user-devices", '{\n    "email":"test@test.com",\n    "password":"testing123"\n}',
                           content_type="application/json")
    assert response.status_code == 200
    devices = {d["device_id"]: d for d in response.json()}
    bmw = devices["WBY7Z0000000000BM"]
    assert DEVICE_KEYS <= set(bmw)
    assert bmw["device_type"] == "bmw" and bmw["id"] == "916ba1b2eeba4b4881ce9d829852d70e"
    assert (bmw["model"], bmw["year"], bmw["brand"], bmw["__v"]) == ("i3s 94 REX", 2018, "BMW", 0)
    assert bmw["user_id"] == str(ada.user.pk)
    assert bmw["electric_range"] == {"distance": {"value": 201, "units": "KILOMETERS"}}
    assert bmw["charging_state"] == {"charge_percentage": "82", "state": "NOT_CHARGING", "type": "CONDUCTIVE",
                                     "is_charger_connected": True}
    assert bmw["sync"]["account"]["quota"]["cooling_down"] is False
    renault = devices["VF1ADA00000000001"]
    assert renault["device_type"] == "renault" and renault["charging_state"]["charge_percentage"] is None
    assert renault["sync"]["fetched_at"] is None


def test_devices_are_the_callers_only(as_ada, ada_car, ben_car):
    assert [d["device_id"] for d in as_ada.post("/api/get-user-devices").json()] == [ada_car.vin]


def test_devices_need_a_driver(ada_car):
    response = APIClient().post("/api/get-user-devices", {"email": "a@b.c", "password": "x"}, format="json")
    assert response.status_code == 401


def test_cars_with_freshness_and_quota(as_ada, ada_car, ben_car):
    account = ada_car.account
    account.quota_tokens = 12.0
    account.save()
    body = as_ada.get("/api/vehicles").json()
    assert [a["quota"]["tokens_left"] for a in body["accounts"]] == [12.0]
    assert [v["device_id"] for v in body["vehicles"]] == [ada_car.vin]
    assert body["vehicles"][0]["sync"]["age_seconds"] >= 25


def test_queries_do_not_grow_with_the_cars(ada, as_ada):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    car_of(ada, "VF1ADA00000000001")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert as_ada.post("/api/get-user-devices").status_code == 200
            assert as_ada.get("/api/vehicles").status_code == 200
        return len(queries)

    one = count()
    for index in range(2, 6):
        car_of(ada, f"VF1ADA0000000000{index}", external_id=f"simulator-ada-{index}")
    assert count() == one


def test_a_format_other_than_json_is_406_as_the_seed_lists(as_ada, ada_car):
    response = as_ada.post("/api/get-user-devices", HTTP_ACCEPT="application/xml")
    assert response.status_code == 406
    assert response.json()["status"] == 406

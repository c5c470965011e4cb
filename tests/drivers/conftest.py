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

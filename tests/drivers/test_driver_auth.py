"""Drivers log in, refresh and log out as the portal's users do, on sessions that open only drivers' doors."""

import time

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tests.drivers.conftest import PASSWORD, driver_login
from emsp.services import portal_client_create
from tests.emsp.conftest import login as portal_login

pytestmark = pytest.mark.django_db


def test_login_answers_like_the_portal_with_the_driver_role(ada):
    response = driver_login("ada")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 200 and body["message"] == "SUCCESS"
    data = body["data"]
    assert set(data) == {"access_token", "access_expires_in", "refresh_token", "refresh_expires_in", "role"}
    assert data["role"] == "DRIVER"
    assert time.time() < data["access_expires_in"] < data["refresh_expires_in"]


def test_wrong_password_unknown_user_and_non_drivers_are_refused_alike(ada, alpha):
    User.objects.create_user(username="staff", password=PASSWORD)  # a user, not a driver
    for username, password in (("ada", "wrong"), ("nobody", PASSWORD), ("staff", PASSWORD)):
        response = driver_login(username, password)
        assert response.status_code == 401
        assert response.json() == {"status": 401, "data": [], "message": "Unauthorized: wrong username or password"}


def test_a_cpo_user_cannot_log_in_as_a_driver_nor_a_driver_at_the_portal(ada, alpha):
    _, client_key = portal_client_create(name="portal front end")
    cpo_user = User.objects.create_user(username="alpha-owner", password=PASSWORD)
    alpha.owner = cpo_user
    alpha.save()
    assert driver_login("alpha-owner").status_code == 401
    assert portal_login(APIClient(), client_key, "ada").status_code == 401


def test_driver_tokens_do_not_open_the_portal(ada):
    tokens = driver_login("ada").json()["data"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert api.get("/ocpi/cpo/2.2/details").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['refresh_token']}")
    assert api.get("/ocpi/cpo/api/auth/v1/refresh").status_code == 401


def test_failed_logins_are_throttled_per_username_and_address(ada, settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    for _ in range(3):
        assert driver_login("ada", "wrong").status_code == 401
    blocked = driver_login("ada")
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    assert "too many failed logins" in blocked.json()["message"]


def test_refresh_rotates_and_a_replayed_refresh_token_ends_the_session(ada):
    first = driver_login("ada").json()["data"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {first['refresh_token']}")
    second = api.get("/api/auth/v1/refresh")
    assert second.status_code == 200
    assert second.json()["data"]["role"] == "DRIVER"
    new = second.json()["data"]
    assert new["refresh_token"] != first["refresh_token"]
    replay = api.get("/api/auth/v1/refresh")
    assert replay.status_code == 401 and "already used" in replay.json()["message"]
    # The replay ended the session: the newest tokens stop working too.
    by_body = APIClient().post("/api/auth/v1/refresh", {"refresh_token": new["refresh_token"]}, format="json")
    assert by_body.status_code == 401


def test_refresh_by_body(ada):
    first = driver_login("ada").json()["data"]
    response = APIClient().post("/api/auth/v1/refresh", {"refresh_token": first["refresh_token"]}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["access_token"]


def test_refresh_refuses_an_access_token_and_garbage(ada):
    first = driver_login("ada").json()["data"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {first['access_token']}")
    assert api.get("/api/auth/v1/refresh").status_code == 401
    api.credentials(HTTP_AUTHORIZATION="Bearer not.a.token")
    assert api.get("/api/auth/v1/refresh").status_code == 401
    assert APIClient().get("/api/auth/v1/refresh").status_code == 401


def test_logout_ends_both_tokens(ada):
    tokens = driver_login("ada").json()["data"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    response = api.post("/api/auth/v1/logout")
    assert response.status_code == 200
    assert response.json() == {"status": 200, "data": [], "message": "Logged out successfully"}
    assert api.post("/api/auth/v1/logout").status_code == 401
    assert APIClient().post("/api/auth/v1/refresh", {"refresh_token": tokens["refresh_token"]},
                            format="json").status_code == 401


def test_logout_needs_a_driver(ada):
    assert APIClient().post("/api/auth/v1/logout").status_code == 401


def test_a_driver_logs_in_with_the_email_too_when_it_is_one_drivers(ada, ben):
    assert driver_login("ada@example.com").status_code == 200
    assert driver_login("ADA@example.com").status_code == 200
    assert driver_login("ada@example.com", "wrong").status_code == 401
    ben.user.email = "ada@example.com"  # two drivers with one address: the address names neither
    ben.user.save()
    assert driver_login("ada@example.com").status_code == 401
    assert driver_login("ada").status_code == 200

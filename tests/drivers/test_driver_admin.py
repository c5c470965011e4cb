"""The admin shows drivers, their sessions, and how many of their accounts wait for a re-login."""

import pytest

from vehicles import services

pytestmark = pytest.mark.django_db


def test_driver_and_session_admin_pages(admin_client, ada_car, ada):
    from tests.drivers.conftest import driver_login

    driver_login("ada")
    services.maker_account_status_set(account=ada_car.account, status="NEEDS_RELOGIN", error="refresh token revoked")
    page = admin_client.get("/admin/emsp/driver/")
    assert page.status_code == 200
    assert b"ada@example.com" in page.content
    sessions = admin_client.get("/admin/emsp/driversession/")
    assert sessions.status_code == 200 and b"ada" in sessions.content
    # The car's freshness and its account's quota and status, in the vehicles admin.
    accounts = admin_client.get("/admin/vehicles/makeraccount/")
    assert accounts.status_code == 200
    assert b"needs re-login" in accounts.content or b"NEEDS_RELOGIN" in accounts.content
    assert admin_client.get(f"/admin/vehicles/vehicle/{ada_car.pk}/change/").status_code == 200

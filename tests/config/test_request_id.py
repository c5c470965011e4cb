"""Every log line of a request carries its request id, which is echoed to the caller."""

import logging
import uuid

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def test_the_request_id_is_echoed_and_logged(anonymous, caplog):
    request_id = str(uuid.uuid4())
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = anonymous.get("/no-such-page/", HTTP_X_REQUEST_ID=request_id)
    assert response.status_code == 404
    assert response["X-Request-ID"] == request_id
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records and all(r.request_id == request_id for r in records)


def test_a_request_without_an_id_gets_one(anonymous):
    response = anonymous.get("/health/")
    assert len(response["X-Request-ID"]) == 32

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def test_openapi_docs_are_wired_and_served_without_internet(anonymous):
    page = anonymous.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html and "cdn.jsdelivr" not in html
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "evhub API"

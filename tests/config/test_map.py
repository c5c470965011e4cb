"""The map page for people: the page, its place lookup and its server-side search (config/map.py)."""

import json

import pytest
from django.core.cache import cache

from config import map as map_view
from locations import services
from locations.models import Location
from tests.conftest import location_payload

BERLIN = (52.52, 13.405)


def _place(cpo, ocpi_id, point, *, city="Berlin", name=None, moderated=True):
    payload = location_payload(cpo, ocpi_id, city=city, name=name or f"Station {ocpi_id}",
                               coordinates={"latitude": f"{point[0]:.6f}", "longitude": f"{point[1]:.6f}"})
    location = services.location_upsert(cpo=cpo, data=payload).instance
    if moderated:
        services.location_moderate(location=location, moderation="PUBLISHED")
    return Location.objects.get(pk=location.pk)


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def berlin(alpha):
    return [
        _place(alpha, "B1", (52.5200, 13.4050), name="Alexanderplatz"),
        _place(alpha, "B2", (52.5300, 13.4200), name="Prenzlauer Berg"),
        _place(alpha, "B3", (52.5100, 13.3900), name="Hidden", moderated=False),
    ]


def search(client, body, **extra):
    return client.post("/map/search", data=json.dumps(body) if not isinstance(body, str) else body,
                       content_type="application/json", **extra)


@pytest.mark.smoke
@pytest.mark.django_db
def test_the_page_renders_with_its_form(client):
    response = client.get("/map/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<form id="search"' in page and 'name="place"' in page and 'name="radius"' in page
    assert 'id="connector_type"' in page and 'value="TYPE_2"' in page  # lookups seeded by migration
    assert 'id="available"' in page and 'id="map"' in page
    assert "Basic " not in page  # no client key in the page
    assert "csrftoken" in response.cookies


@pytest.mark.smoke
@pytest.mark.django_db
def test_places_resolves_a_city_from_published_locations(client, berlin):
    response = client.get("/map/places", {"q": "berlin"})
    assert response.status_code == 200
    body = response.json()
    assert body["locations"] == 2  # the unpublished one is not counted
    assert body["lat"] == pytest.approx(52.525) and body["lng"] == pytest.approx(13.4125)


@pytest.mark.smoke
@pytest.mark.django_db
def test_places_reads_coordinates_and_refuses_nonsense(client):
    body = client.get("/map/places", {"q": "52.52, 13.40"}).json()
    assert (body["lat"], body["lng"]) == (52.52, 13.40)
    assert client.get("/map/places", {"q": ""}).status_code == 400
    assert client.get("/map/places", {"q": "100, 13"}).status_code == 400
    assert client.get("/map/places", {"q": "x" * 101}).status_code == 400
    missing = client.get("/map/places", {"q": "Atlantis"})
    assert missing.status_code == 404 and "Atlantis" in missing.json()["error"]


@pytest.mark.smoke
@pytest.mark.django_db
def test_search_returns_published_locations_nearest_first(client, berlin):
    response = search(client, {"lat": BERLIN[0], "lng": BERLIN[1], "radius": 10})
    assert response.status_code == 200, response.content
    body = response.json()
    assert [loc["name"] for loc in body["locations"]] == ["Alexanderplatz", "Prenzlauer Berg"]
    assert body["count"] == 2 and body["radius"] == 10
    first = body["locations"][0]
    assert first["distance"] == pytest.approx(0, abs=0.01)
    assert {c["standard"] for c in first["evses"][0]["connectors"]} == {"IEC_62196_T2", "IEC_62196_T2_COMBO"}


@pytest.mark.django_db
def test_search_filters(client, berlin):
    def names(**filters):
        response = search(client, {"lat": BERLIN[0], "lng": BERLIN[1], "radius": 10, **filters})
        assert response.status_code == 200, response.content
        return [loc["name"] for loc in response.json()["locations"]]

    assert names(connector_type="TYPE_2") == ["Alexanderplatz", "Prenzlauer Berg"]
    assert names(connector_type="CHADEMO") == []
    assert names(min_power_kw=150) == ["Alexanderplatz", "Prenzlauer Berg"]
    assert names(min_power_kw=151) == []
    assert names(available=True) == ["Alexanderplatz", "Prenzlauer Berg"]
    assert names(radius=1) == ["Alexanderplatz"]
    assert names(facilities=["PARKING_LOT"]) == []


@pytest.mark.smoke
@pytest.mark.django_db
@pytest.mark.parametrize("body, words", [
    ({"lat": 100, "lng": 13.4, "radius": 10}, "lat must be between -90 and 90"),
    ({"lat": 52.5, "lng": 13.4, "radius": -1}, "radius must be between 1 and 200"),
    ({"lat": 52.5, "lng": 13.4, "radius": 500}, "radius must be between 1 and 200"),
    ({"lat": 52.5, "lng": 13.4, "connector_type": "WARP_PLUG"}, "unknown connector_types code"),
    ({"lat": 52.5, "lng": 13.4, "facilities": "PARKING_LOT"}, "facilities must be a list"),
    ({"lat": 52.5, "lng": 13.4, "connector_type": ["TYPE_2"]}, "connector_type must be a code"),
    ({"lat": 52.5, "lng": 13.4, "facilities": ["NOPE"]}, "unknown facilities code"),
    ({"lat": "north", "lng": 13.4}, "lat must be a number"),
    ({"lng": 13.4}, "lat is required"),
    ({"lat": 52.5, "lng": 13.4, "available": "yes"}, "available must be true or false"),
    ({"lat": 52.5, "lng": 13.4, "min_power_kw": float("inf")}, "min_power_kw must be a number"),
    ([1, 2], "send a JSON object"),
    ("{not json", "not valid JSON"),
])
def test_search_refuses_bad_input_with_a_400(client, body, words):
    response = search(client, body)
    assert response.status_code == 400, response.content
    assert words in response.json()["error"]


@pytest.mark.smoke
@pytest.mark.django_db
def test_search_is_rate_limited_per_address(client, monkeypatch):
    monkeypatch.setattr(map_view, "RATE_LIMIT", 3)
    codes = [search(client, {"lat": 52.5, "lng": 13.4}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert search(client, {"lat": 52.5, "lng": 13.4}, REMOTE_ADDR="10.0.0.2").status_code == 200


@pytest.mark.smoke
@pytest.mark.django_db
def test_search_needs_post_and_the_csrf_token(client):
    assert client.get("/map/search").status_code == 405
    from django.test import Client
    strict = Client(enforce_csrf_checks=True)
    assert search(strict, {"lat": 52.5, "lng": 13.4}).status_code == 403
    strict.get("/map/")
    token = strict.cookies["csrftoken"].value
    assert search(strict, {"lat": 52.5, "lng": 13.4}, HTTP_X_CSRFTOKEN=token).status_code == 200

"""An app's POST /graphql goes past the browser's middleware (config.graphql.api_lane_middleware): the same
answer, status and headers as through the whole chain."""

import json

import pytest
from django.test import Client

from .conftest import BERLIN, place

pytestmark = pytest.mark.django_db

LANE = "config.graphql.api_lane_middleware"
SEARCH = "{ find_ev_filter_locations(lat: %s, lng: %s) { id name distance evses { uid } } }" % BERLIN


def _without_lane(settings):
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != LANE]


def _answer(client_key, body, **extra):
    response = Client(HTTP_AUTHORIZATION=f"Basic {client_key}").post("/graphql", body,
                                                                     content_type="application/json", **extra)
    headers = {name: value for name, value in response.headers.items() if name != "X-Request-ID"}
    return response.status_code, response.content, headers


@pytest.mark.smoke
@pytest.mark.parametrize("body", [
    json.dumps({"query": SEARCH}),  # compiled on PostgreSQL, graphene's on SQLite
    json.dumps({"query": "{ find_ev_locations { id name } find_ev_locations_count }"}),
    json.dumps({"query": "{ find_ev_locations { nope } }"}),  # a validation error: 400
    "{not json", json.dumps([{"query": "{ find_ev_locations_count }"}]),  # refused bodies
])
def test_the_lane_answers_as_the_whole_chain(client_key, alpha, settings, body):
    place(alpha, "L1", BERLIN)
    assert LANE in settings.MIDDLEWARE
    lane = _answer(client_key, body)
    _without_lane(settings)
    assert _answer(client_key, body) == lane
    status, _, headers = lane
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert int(headers["Content-Length"]) > 0 and status in (200, 400)


def test_a_host_not_allowed_is_refused_on_the_lane_too(client_key, settings):
    assert _answer(client_key, json.dumps({"query": SEARCH}), HTTP_HOST="evil.example")[0] == 400


def test_the_lane_takes_only_an_apps_post(client_key, alpha, monkeypatch):
    from config import graphql

    taken = []
    view = graphql.graphql_view
    monkeypatch.setattr(graphql, "graphql_view", lambda request: taken.append(request.path) or view(request))
    client = Client(HTTP_AUTHORIZATION=f"Basic {client_key}")
    client.post("/graphql", json.dumps({"query": SEARCH}), content_type="application/json")
    client.get("/graphql", HTTP_ACCEPT="text/html")  # GraphiQL: the whole chain (its CSRF cookie)
    client.post("/graphql?pretty=1", json.dumps({"query": SEARCH}), content_type="application/json")
    assert taken == ["/graphql"]

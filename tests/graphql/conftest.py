"""GraphQL callers (a front end with a client key, CPO users alpha and bravo) and a catalogue to search."""

import json

import pytest
from rest_framework.test import APIClient

from locations import services
from locations.models import Location
from tests.conftest import location_payload
from tests.emsp.conftest import (  # noqa: F401  (fixtures shared with the portal's tests)
    alpha_user,
    as_alpha,
    as_bravo,
    bravo_user,
    client_key,
)

# Known places (lat, lng), as Wikipedia gives the city centres: Berlin-Potsdam is about 26.5 km.
BERLIN = (52.52, 13.405)
POTSDAM = (52.4, 13.066667)
BRANDENBURG = (52.4, 12.55)
HAMBURG = (53.55, 10.0)


def gql(api: APIClient, query: str, variables: dict | None = None):
    body = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return api.post("/graphql", data=json.dumps(body), content_type="application/json")


def data_of(response, field: str):
    assert response.status_code == 200, response.content
    body = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"][field]


def error_of(response) -> dict:
    body = response.json()
    assert body.get("errors"), body
    return body["errors"][0]


def place(cpo, ocpi_id: str, point: tuple[float, float], *, moderated: bool = True, **overrides) -> Location:
    """A location of `cpo` at `point`, published by the hub unless `moderated` is False."""
    payload = location_payload(cpo, ocpi_id, coordinates={"latitude": f"{point[0]:.6f}",
                                                          "longitude": f"{point[1]:.6f}"}, **overrides)
    location = services.location_upsert(cpo=cpo, data=payload).instance
    if moderated:
        services.location_moderate(location=location, moderation="PUBLISHED")
    return Location.objects.get(pk=location.pk)


@pytest.fixture
def basic(client_key) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
    return api


@pytest.fixture
def anonymous_api() -> APIClient:
    return APIClient()

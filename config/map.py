"""The map page for people at `/map/`: a search form, markers on a plain background and a result list.

The page needs no internet (no CDN, no tiles): the template carries its own CSS and JavaScript and draws
the results with an equirectangular projection in an SVG. Three views:

- `GET /map/` serves the page (public).
- `GET /map/places?q=Berlin` turns a place into coordinates from the catalogue's own published locations
  (their average position in that city); "52.52, 13.40" is read as coordinates. No external geocoder.
- `POST /map/search` takes the form as JSON, checks it, and runs `find_ev_filter_locations` through the
  GraphQL schema on the server, as a trusted front end. The browser therefore never holds a client key:
  the page's own endpoint is the front end, lightly rate-limited per address. Bad input is a 400 with a
  message; nothing here answers 500.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time

from django.core.cache import cache
from django.db.models import Avg, Count
from django.db.models.functions import Upper
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from config.graphql import EvhubGraphQLView
from config.schema import schema
from emsp import throttle
from emsp.models import PortalClient
from locations import selectors

logger = logging.getLogger(__name__)

DEFAULT_PLACE = "52.52, 13.405"  # Berlin, where the demo data is
DEFAULT_RADIUS_KM = 10
MIN_RADIUS_KM, MAX_RADIUS_KM = 1, 200
MAX_POWER_KW = 1000
RESULT_LIMIT = 50
MAX_BODY_BYTES = 4096
MAX_PLACE_CHARS = 100
RATE_LIMIT = 60  # requests per address per window
RATE_WINDOW_S = 60

# The caller the page's searches run as: a front end of the hub itself, never stored, holding no key.
# locations.graphql only asks that a front end be present (`context.graphql_client`) for find_ev_*.
MAP_FRONT_END = PortalClient(name="evhub map page")

SEARCH_QUERY = """
query MapSearch($lat: Float!, $lng: Float!, $distance: Float!, $connector_types: [String!], $min_power: Int,
                $status: String, $facilities: [String!], $limit: Int) {
  find_ev_filter_locations(lat: $lat, lng: $lng, distance: $distance, connector_types: $connector_types,
                           min_power: $min_power, status: $status, facilities: $facilities, limit: $limit) {
    id name address city postal_code distance address_lat address_lng
    facilities { code description }
    evses { uid status connectors { standard connector_type power_type max_electric_power max_voltage
                                    max_amperage status } }
  }
  find_ev_filter_locations_count(lat: $lat, lng: $lng, distance: $distance, connector_types: $connector_types,
                                 min_power: $min_power, status: $status, facilities: $facilities)
}
"""

_COORDINATES = re.compile(r"^\s*(-?\d{1,3}(?:\.\d+)?)\s*[,;\s]\s*(-?\d{1,3}(?:\.\d+)?)\s*$")


class BadInput(ValueError):
    pass


def _bad(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


# --- The page ------------------------------------------------------------------------------------------

@require_GET
@ensure_csrf_cookie
def map_page(request):
    try:
        lookups = selectors.filters_all()
    except Exception:  # the page still works (without filter choices) if the lookups can't be read
        logger.exception("map page: could not read the filter lookups")
        lookups = {}
    return render(request, "map.html", {
        "connector_types": lookups.get("connector_types", []),
        "facilities": lookups.get("facilities", []),
        "default_place": DEFAULT_PLACE,
        "default_radius": DEFAULT_RADIUS_KM,
        "min_radius": MIN_RADIUS_KM,
        "max_radius": MAX_RADIUS_KM,
    })


# --- Places: the catalogue as its own gazetteer -----------------------------------------------------------

def parse_coordinates(text: str) -> tuple[float, float] | None:
    """"52.52, 13.40" (or "52.52 13.40") as (lat, lng); None when the text isn't a pair of numbers."""
    match = _COORDINATES.match(text or "")
    if not match:
        return None
    lat, lng = float(match.group(1)), float(match.group(2))
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise BadInput(f"coordinates out of range: latitude is -90 to 90, longitude -180 to 180 (got {lat}, {lng})")
    return lat, lng


@require_GET
def map_places(request):
    """The average position of the published locations in a city (case-insensitive exact name)."""
    q = (request.GET.get("q") or "").strip()
    if not q:
        return _bad("give a place: ?q=Berlin or ?q=52.52,13.405")
    if len(q) > MAX_PLACE_CHARS:
        return _bad(f"the place may be at most {MAX_PLACE_CHARS} characters long")
    try:
        point = parse_coordinates(q)
    except BadInput as exc:
        return _bad(str(exc))
    if point:
        return JsonResponse({"query": q, "name": f"{point[0]:.5f}, {point[1]:.5f}", "lat": point[0],
                             "lng": point[1], "locations": None})
    try:
        found = (selectors.visible_locations().alias(city_key=Upper("city")).filter(city_key=q.upper())
                 .aggregate(lat=Avg("address_lat"), lng=Avg("address_lng"), locations=Count("id")))
    except Exception:
        logger.exception("map places: lookup failed")
        return _bad("the place lookup failed; try again", status=503)
    if not found["locations"]:
        return _bad(f"no published charging locations in a city named {q!r}; try another city or "
                    "coordinates like 52.52, 13.405", status=404)
    return JsonResponse({"query": q, "name": q, "lat": round(found["lat"], 6), "lng": round(found["lng"], 6),
                         "locations": found["locations"]})


# --- Search ------------------------------------------------------------------------------------------------

def _number(body: dict, key: str, *, low: float, high: float, required: bool = False, default=None) -> float | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise BadInput(f"{key} is required")
        return default
    if isinstance(value, bool):
        raise BadInput(f"{key} must be a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise BadInput(f"{key} must be a number, not {value[:30]!r}") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadInput(f"{key} must be a number")
    if not low <= value <= high:
        raise BadInput(f"{key} must be between {low:g} and {high:g}, not {value:g}")
    return float(value)


def _codes(body: dict, key: str, *, many: bool) -> list[str] | None:
    value = body.get(key)
    if value in (None, "", []):
        return None
    values = value if many else [value]
    if (not isinstance(values, list) or len(values) > 30
            or not all(isinstance(item, str) and 0 < len(item.strip()) <= 40 for item in values)):
        example = '["PARKING_LOT"]' if many else '"TYPE_2"'
        raise BadInput(f"{key} must be {'a list of codes' if many else 'a code'}, e.g. {example}")
    return [item.strip().upper() for item in values]


def search_variables(body) -> dict:
    """The form's JSON as the query's variables; raises BadInput saying what is wrong."""
    if not isinstance(body, dict):
        raise BadInput("send a JSON object: {\"lat\": 52.52, \"lng\": 13.405, \"radius\": 10}")
    lat = _number(body, "lat", low=-90, high=90, required=True)
    lng = _number(body, "lng", low=-180, high=180, required=True)
    radius = _number(body, "radius", low=MIN_RADIUS_KM, high=MAX_RADIUS_KM, default=DEFAULT_RADIUS_KM)
    min_power_kw = _number(body, "min_power_kw", low=0, high=MAX_POWER_KW)
    available = body.get("available", False)
    if not isinstance(available, bool):
        raise BadInput("available must be true or false")
    return {
        "lat": lat, "lng": lng, "distance": radius,
        "connector_types": _codes(body, "connector_type", many=False),
        "min_power": round(min_power_kw * 1000) if min_power_kw else None,
        "status": "AVAILABLE" if available else None,
        "facilities": _codes(body, "facilities", many=True),
        "limit": RESULT_LIMIT,
    }


def _rate_limited(request) -> bool:
    """A fixed window per client address in the cache; if the cache is down, let the request through."""
    address = throttle.address_scope(throttle.client_address(request))
    key = f"map-search:{address}:{int(time.time() // RATE_WINDOW_S)}"
    try:
        if cache.add(key, 1, timeout=RATE_WINDOW_S + 5):
            return False
        return cache.incr(key) > RATE_LIMIT
    except Exception:
        logger.warning("map search: rate limit cache unavailable", exc_info=True)
        return False


@require_POST
@csrf_protect
def map_search(request):
    if _rate_limited(request):
        response = _bad(f"too many searches: at most {RATE_LIMIT} a minute; wait a little", status=429)
        response["Retry-After"] = str(RATE_WINDOW_S)
        return response
    if len(request.body) > MAX_BODY_BYTES:
        return _bad(f"the request is too large (at most {MAX_BODY_BYTES} bytes)")
    try:
        body = json.loads(request.body.decode("utf-8") or "null")
        variables = search_variables(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        message = str(exc) if isinstance(exc, BadInput) else "the body is not valid JSON"
        return _bad(message)

    # Run as config.graphql does for a `Basic` caller: the request is the context, its caller a front end.
    request.graphql_cpo, request.graphql_client, request.graphql_auth_error = None, MAP_FRONT_END, None
    try:
        result = schema.execute(SEARCH_QUERY, variable_values=variables, context_value=request)
    except Exception:
        logger.exception("map search: GraphQL execution failed")
        return _bad("the search failed; try again", status=503)
    if result.errors:
        errors = [EvhubGraphQLView.format_error(error) for error in result.errors]
        user_errors = [e for e in errors if (e.get("extensions") or {}).get("code") == "BAD_USER_INPUT"]
        if user_errors:
            return _bad(user_errors[0]["message"])
        logger.error("map search: GraphQL errors %s", errors)
        return _bad("the search failed; try again", status=503)
    return JsonResponse({
        "center": {"lat": variables["lat"], "lng": variables["lng"]},
        "radius": variables["distance"],
        "count": result.data["find_ev_filter_locations_count"],
        "limit": RESULT_LIMIT,
        "locations": result.data["find_ev_filter_locations"],
    })

"""`find_ev_filter_locations` compiled to one statement (locations/graphql_compiled.py) against graphene's path.

Every request is sent twice, once as it is and once with the compiler turned off, and the two answers
must be the same JSON with the same status; the tests also say which path answered, so that a change
that quietly sends everything to graphene (or compiles what it must not) fails.
"""

from datetime import datetime, timezone

import orjson
import pytest
from django.db import connection

from locations import graphql_compiled, selectors
from locations.models import Connector, ConnectorType, Evse, Location, Photo

from .conftest import BERLIN, gql, place
from .shapes import LOCATION
from .test_query_count import catalogue

pytestmark = pytest.mark.django_db

# The bench's query (bench/bench_graphql.py) as apps send it, with variables.
NEAR = ("query Near($lat: Float!, $lng: Float!) { find_ev_filter_locations(lat: $lat, lng: $lng, distance: 10, "
        "limit: 20) { id name address city postal_code country_code publish distance address_lat address_lng "
        "evses { uid status connectors { standard power_type max_electric_power } } } }")
# Every field the compiler serves, with aliases, a fragment, __typename and a merged field.
EVERYTHING = """
query Everything($lat: Float!, $lng: Float!, $km: Float, $first: Int) {
  near: find_ev_filter_locations(lat: $lat, lng: $lng, distance: $km, limit: $first, offset: 1) {
    __typename ...Where kind: __typename owner: cpo_owner_id date_created date_modified province region
    evses { __typename uid evse_id serial_number meter_type status cpo_location_id current_ws_connection_id
            server_id points: connectors { __typename id evse_uid connector_id standard format power_type
            max_voltage max_amperage watts: max_electric_power connector_type rate_setting status } }
    evses { uid }
    more: evses { fast: connectors { id standard } slow: connectors { power_type } }
  }
}
fragment Where on Location { id name address distance address_lat address_lng city postal_code country_code publish }
"""


@pytest.fixture
def answers(basic, monkeypatch):
    """(status, JSON, compiled?) of a request, after checking that graphene's path answers the same."""
    answered = []
    answer = graphql_compiled.answer

    def spy(*args):
        result = answer(*args)
        answered.append(result is not None)
        return result

    monkeypatch.setattr(graphql_compiled, "answer", spy)

    def ask(query: str, variables: dict | None = None):
        answered.clear()
        fast = gql(basic, query, variables)
        compiled = any(answered)
        with monkeypatch.context() as off:
            off.setattr(graphql_compiled, "plan_of", lambda *_: None)
            reference = gql(basic, query, variables)
        assert (fast.status_code, fast.json()) == (reference.status_code, reference.json()), query
        return fast.status_code, fast.json(), compiled

    return ask


@pytest.fixture
def stations(alpha):
    """25 locations near Mannheim (2 EVSEs x 2 connectors, lookups, images) and some odd ones in Berlin."""
    catalogue(alpha, 25)
    place(alpha, "B1", BERLIN, name="", city="100% Ökostrom")
    place(alpha, "B2", (BERLIN[0] + 0.003, BERLIN[1]), facilities=["WIFI"])
    place(alpha, "HIDDEN", (BERLIN[0] + 0.001, BERLIN[1]), moderated=False)
    evses = list(Evse.objects.filter(location__ocpi_id__in=["B1", "B2"]).order_by("id"))
    Evse.objects.filter(pk=evses[0].pk).update(status="REMOVED")
    connector = Connector.objects.filter(evse=evses[1]).order_by("id").first()
    Connector.objects.filter(pk=connector.pk).update(
        status="", rate_setting="0.3000", connector_type=ConnectorType.objects.order_by("id").first(),
        # isoformat: no fraction at 0 microseconds, six digits otherwise (PostgreSQL's JSON would write .12)
        date_created=datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc),
        date_modified=datetime(2024, 5, 1, 10, 0, 0, 120000, tzinfo=timezone.utc))
    b2 = Location.objects.get(ocpi_id="B2")
    for name in ("photos/b2-second.webp", "photos/b2-first.webp"):
        Photo.objects.create(location=b2, image=name, thumbnail=name.replace(".webp", "-t.webp"),
                             content_type="image/webp", width=800, height=600)
    return alpha


@pytest.fixture(autouse=True)
def _postgresql_only(request):
    if connection.vendor != "postgresql" and "smoke" not in request.keywords:
        pytest.skip("the compiled search is PostgreSQL's (on SQLite it steps aside: see the smoke test)")


@pytest.mark.smoke
def test_the_embedded_default_answers_through_graphene(answers, stations):
    """On SQLite (and on PostgreSQL without a point) the compiled search steps aside, and the answer is
    graphene's; with a point on PostgreSQL it is the compiled one, the same JSON either way."""
    status, body, compiled = answers(NEAR, {"lat": BERLIN[0], "lng": BERLIN[1]})
    assert status == 200 and len(body["data"]["find_ev_filter_locations"]) == 2
    assert compiled == (connection.vendor == "postgresql")
    status, body, compiled = answers('{ find_ev_filter_locations(city: "Berlin") { id } }')
    assert status == 200 and not compiled


@pytest.mark.parametrize("point", [(49.45, 8.5), BERLIN, (0.0, 0.0)])
def test_the_apps_search_is_compiled_and_answers_as_graphene(answers, stations, point):
    status, body, compiled = answers(NEAR, {"lat": point[0], "lng": point[1]})
    assert compiled and status == 200
    found = body["data"]["find_ev_filter_locations"]
    assert len(found) == {BERLIN: 2, (0.0, 0.0): 0}.get(point, 20)
    if point == BERLIN:  # the REMOVED EVSE left out, the other's connectors shown
        assert [len(location["evses"]) for location in found] == [0, 1]


@pytest.mark.parametrize("variables", [
    {"lat": 49.45, "lng": 8.5}, {"lat": 49.45, "lng": 8.5, "km": 50, "first": 30},
    {"lat": BERLIN[0], "lng": BERLIN[1], "km": 1, "first": 1}])
def test_every_compiled_field_aliases_fragments_and_typenames(answers, stations, variables):
    status, body, compiled = answers(EVERYTHING, variables)
    assert compiled and status == 200
    found = body["data"]["near"]
    assert found and list(found[0])[:3] == ["__typename", "id", "name"]
    if variables.get("km") == 1:  # Berlin: B2 (offset 1), whose connector has the odd values
        points = found[0]["evses"][0]["points"]
        assert points[0]["status"] is None and points[0]["rate_setting"] == 0.3 and points[0]["connector_type"]


@pytest.mark.parametrize("point", [(49.45, 8.5), BERLIN])
def test_the_contracts_whole_query_is_compiled(answers, stations, point):
    """The seed's own query (shared/seeds: every field of the contract, lookups, images and dates)."""
    status, body, compiled = answers(
        f"query Find_ev_filter_locations {{ find_ev_filter_locations(lat: {point[0]}, lng: {point[1]}) "
        f"{{ {LOCATION} }} }}")
    assert compiled and status == 200
    found = body["data"]["find_ev_filter_locations"]
    assert found and all(location["facilities"] is not None for location in found)
    if point == BERLIN:
        b2 = found[1]
        assert b2["images"][-2:] == [b2["images"][-2], b2["images"][-1]] and b2["images"][-1].endswith("b2-first.webp")
        dates = b2["evses"][0]["connectors"][0]
        assert (dates["date_created"], dates["date_modified"]) == ("2024-05-01T10:00:00+00:00",
                                                                   "2024-05-01T10:00:00.120000+00:00")
    else:
        assert found[0]["evses"][0]["capabilities"] and found[0]["images"] == ["https://cdn.example.com/x.jpg"]


@pytest.mark.parametrize("filters", [
    'facilities: ["CAFE"]', 'facilities: ["WIFI"]', 'city: "mannheim"', 'city: "100% Ökostrom"',
    'connector_types: ["TYPE_2"]', "min_power: 40000", 'status: "AVAILABLE"', 'payment_types: ["GCASH"]',
    'capabilities: ["QR_READER"], parking_types: ["OUTDOOR"]', 'province: "x"', "limit: 5, offset: 3",
    "limit: 500", "distance: 0.5"])
def test_filtered_searches(answers, stations, filters):
    for lat, lng in ((49.45, 8.5), BERLIN):
        status, body, compiled = answers(
            f"{{ find_ev_filter_locations(lat: {lat}, lng: {lng}, distance: 100, {filters}) "
            "{ id distance evses { uid connectors { id } } } }".replace("distance: 100, distance", "distance"))
        assert compiled and status == 200, body


def test_ties_at_the_page_edge_take_the_full_statement(answers, alpha):
    for i in range(30):
        place(alpha, f"S{i:02}", BERLIN)  # 30 locations on one point: every candidate ties
    for limit, offset in ((1, 0), (20, 0), (20, 15)):
        status, body, compiled = answers(
            f"{{ find_ev_filter_locations(lat: {BERLIN[0]}, lng: {BERLIN[1]}, limit: {limit}, offset: {offset}) "
            "{ id distance } }")
        assert compiled and status == 200
        ids = [location["id"] for location in body["data"]["find_ev_filter_locations"]]
        assert ids == sorted(ids) and len(ids) == min(limit, 30 - offset)


@pytest.mark.parametrize("query, variables", [
    ("{ find_ev_filter_locations(lat: 49.45, lng: 8.5) { id image_details { url } } }", None),
    ("{ find_ev_filter_locations(lat: 49.45, lng: 8.5) { id evses { locations { id } } } }", None),
    ("{ find_ev_filter_locations(city: \"Mannheim\") { id } }", None),  # no point: graphene's path
    ("{ find_ev_filter_locations(lat: 49.45, lng: 8.5) { id } find_ev_locations_count }", None),
    ("query($x: Boolean!) { find_ev_filter_locations(lat: 49.45, lng: 8.5) { id name @include(if: $x) } }",
     {"x": True}),
    ("{ find_ev_filter_locations(lat: 49.45, lng: 8.5, limit: 0) { id } }", None),
    ("{ find_ev_filter_locations(lat: 491.45, lng: 8.5) { id } }", None),
    ('{ find_ev_filter_locations(lat: 49.45, lng: 8.5, facilities: ["SAUNA"]) { id } }', None),
    ("query($lat: Float!) { find_ev_filter_locations(lat: $lat, lng: 8.5) { id } }", {"lat": "north"}),
    ("query($lat: Float!) { find_ev_filter_locations(lat: $lat, lng: 8.5) { id } }", None),
])
def test_what_it_does_not_compile_graphene_answers(answers, stations, query, variables):
    status, body, compiled = answers(query, variables)
    assert not compiled, body


def test_a_caller_without_a_client_key_gets_graphenes_error(stations, anonymous_api, monkeypatch):
    answered = []
    answer = graphql_compiled.answer
    monkeypatch.setattr(graphql_compiled, "answer", lambda *a: answered.append(answer(*a)) or answered[-1])
    response = gql(anonymous_api, NEAR, {"lat": 49.45, "lng": 8.5})
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert body["data"] == {"find_ev_filter_locations": None} and answered == [None]


@pytest.mark.parametrize("count", [1, 25])
def test_one_statement_whatever_the_number_of_results(basic, alpha, count, django_assert_num_queries):
    catalogue(alpha, count)
    gql(basic, "{ find_ev_locations_count }")  # the client key, now known to the process
    with django_assert_num_queries(1):
        response = gql(basic, NEAR, {"lat": 49.45, "lng": 8.5})
    found = response.json()["data"]["find_ev_filter_locations"]
    assert len(found) == min(count, 20) and all(len(location["evses"]) == 2 for location in found)


@pytest.mark.parametrize("getter", [
    lambda row: None,  # called with the row as a dict
    graphql_compiled._inline("None"),  # written into the page's loop as an expression
], ids=["called", "written"])
def test_a_null_in_a_non_null_field_is_graphenes_to_report(answers, stations, monkeypatch, getter):
    # A value the schema would refuse (here a getter giving None for the non-null `address`): the compiled
    # path steps aside and graphene answers (as it would report a null there, had it read one).
    monkeypatch.setitem(graphql_compiled.LOCATION_FIELDS, "address", (("address",), getter))
    graphql_compiled.plan_of.cache_clear()
    try:
        status, body, compiled = answers("{ find_ev_filter_locations(lat: 49.45, lng: 8.5) { id address } }")
    finally:
        graphql_compiled.plan_of.cache_clear()
    assert not compiled and status == 200
    assert all(location["address"] for location in body["data"]["find_ev_filter_locations"])


@pytest.mark.parametrize("query, variables, count", [
    (EVERYTHING, {"lat": 49.45, "lng": 8.5, "km": 50, "first": 30}, 24),
    (NEAR, {"lat": 49.45, "lng": 8.5}, 20),
    ("query($lat: Float!, $lng: Float!) { find_ev_filter_locations(lat: $lat, lng: $lng, distance: 5) "
     "{ id images publish date_created date_modified distance country_code kind: __typename name } }",
     {"lat": BERLIN[0], "lng": BERLIN[1]}, 2),
])
def test_the_written_loop_gives_what_the_getters_give(stations, query, variables, count):
    """`_builder`'s function against each member's getter over a dict of the row, on the page's rows (the
    Berlin ones: photos, an empty name, a removed EVSE, odd dates)."""
    from graphql import parse
    from graphql.execution.values import get_argument_values, get_variable_values

    from config.schema import schema
    from locations import graphql as types

    plan = graphql_compiled.plan_of(schema.graphql_schema, parse(query), None)
    assert plan is not None
    args = get_argument_values(schema.graphql_schema.query_type.fields["find_ev_filter_locations"], plan.field_node,
                               get_variable_values(schema.graphql_schema, plan.variable_definitions, variables))
    page = types._page(args.get("limit"), args.get("offset"))
    names, rows = selectors.locations_search_page_rows(
        location_fields=plan.location_fields, with_cpo=plan.with_cpo, json_columns=plan.json_columns,
        offset=page.start, limit=page.stop - page.start, **types._search_filters(args))
    assert len(rows) == count
    by_getters = [{name: getter(dict(zip(names, values))) for name, getter, _ in plan.members} for values in rows]
    written = graphql_compiled._builder(plan.members, tuple(names))(rows)
    assert [list(item) for item in written] == [[name for name, *_ in plan.members]] * len(rows)
    assert orjson.loads(orjson.dumps(written)) == orjson.loads(orjson.dumps(by_getters))


def test_the_rows_are_those_of_the_page(stations):
    """`locations_search_page_rows` against `locations_search_page`: ids, order and distances."""
    shape = selectors.Shape(location=frozenset({"cpo"}), evse=frozenset())
    for lat, lng, km, offset, limit in ((49.45, 8.5, 50, 0, 20), (49.45, 8.5, 50, 7, 5), (*BERLIN, 1, 0, 20)):
        page = selectors.locations_search_page(shape=shape, offset=offset, limit=limit, lat=lat, lng=lng,
                                               distance_km=km)
        names, rows = selectors.locations_search_page_rows(
            location_fields=frozenset({"name"}), with_cpo=True, json_columns=(), offset=offset, limit=limit,
            lat=lat, lng=lng, distance_km=km)
        found = [dict(zip(names, row)) for row in rows]
        assert [(r["id"], r["distance"], r["_cpo_country_code"]) for r in found] == [
            (loc.pk, loc.distance, loc.cpo.country_code) for loc in page]


HOSTILE = ("query($lat: Float!, $lng: Float!, $km: Float, $first: Int, $city: String, $codes: [String!]) { "
           "find_ev_filter_locations(lat: $lat, lng: $lng, distance: $km, limit: $first, city: $city, "
           "facilities: $codes) { id } }")


@pytest.mark.parametrize("variables", [
    {"lat": 1e308, "lng": 8.5}, {"lat": 49.45, "lng": 8.5, "city": "\x00"},
    {"lat": 49.45, "lng": 8.5, "first": 2**31}, {"lat": 49.45, "lng": 8.5, "first": -1},
    {"lat": 49.45, "lng": 8.5, "km": -5}, {"lat": 49.45, "lng": 8.5, "km": 1e9}, {"lat": "49.45", "lng": 8.5},
    {"lat": [49.45], "lng": 8.5}, {"lat": 49.45, "lng": 8.5, "codes": ["\ud800"]},
])
def test_bad_values_get_graphenes_error_never_a_500(answers, stations, variables):
    """What the compiled search cannot take is graphene's to refuse, as it refuses it (the fixture compares
    both paths): an error in GraphQL's format, never a 500, never a compiled answer."""
    status, body, compiled = answers(HOSTILE, variables)
    assert status in (200, 400) and body.get("errors") and not compiled, body


@pytest.mark.parametrize("variables, found", [
    ({"lat": 49.45, "lng": 8.5, "city": "x" * 10_000}, 0),  # a city no location has, however long
    ({"lat": 49.45, "lng": 8.5, "codes": ["CAFE"] * 5_000}, 20),  # one code, sent 5,000 times
])
def test_large_values_are_searched_as_graphene_searches_them(answers, stations, variables, found):
    status, body, compiled = answers(HOSTILE, variables)
    assert status == 200 and compiled and len(body["data"]["find_ev_filter_locations"]) == found, body

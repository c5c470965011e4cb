"""What a hostile or clumsy query text gets: a GraphQL error or a 400, never a 500 and never a crash."""

import json

import pytest
from django.test import Client
from graphql import get_introspection_query

from config import graphql as view

from .conftest import BERLIN, error_of, gql, place

pytestmark = pytest.mark.django_db


def post_raw(api, body, content_type="application/json"):
    return api.post("/graphql", data=body, content_type=content_type)


def refused(response, *, status=400, code=None, says=""):
    assert response.status_code == status, response.content
    error = error_of(response)
    if code:
        assert error.get("extensions", {}).get("code") == code, error
    assert says in error["message"], error
    return error


def nested(levels: int) -> str:
    """find_ev_locations { evses { locations { evses { ... uid } } } }, `levels` levels deep."""
    fields = ["find_ev_locations"] + ["evses" if i % 2 == 0 else "locations" for i in range(levels - 2)]
    leaf = "uid" if fields[-1] == "evses" else "id"
    return "{ " + " { ".join(fields) + f" {{ {leaf} " + "} " * len(fields) + "}"


# --- Limits -----------------------------------------------------------------------------------------------

@pytest.mark.smoke
def test_depth_limit(basic):
    assert view.MAX_DEPTH == 8
    assert gql(basic, nested(8)).status_code == 200
    refused(gql(basic, nested(9)), code="QUERY_TOO_COMPLEX", says="nested more than 8 levels deep")


def test_depth_counts_through_fragments(basic):
    query = ("{ find_ev_locations { ...L } } fragment L on Location { evses { locations { evses { locations { "
             "evses { locations { evses { uid } } } } } } } }")
    refused(gql(basic, query), code="QUERY_TOO_COMPLEX", says="nested more than 8 levels")


@pytest.mark.smoke
def test_alias_bomb(basic):
    query = "{ find_ev_locations { " + " ".join(f"a{i}: id" for i in range(21)) + " } }"
    refused(gql(basic, query), code="QUERY_TOO_COMPLEX", says="more than 20 aliases")
    query = "{ find_ev_locations { " + " ".join(f"a{i}: id" for i in range(20)) + " } }"
    assert gql(basic, query).status_code == 200


def test_top_level_fields_are_limited(basic):
    query = "{ " + " ".join(f"q{i}: find_ev_locations_count" for i in range(6)) + " }"
    refused(gql(basic, query), code="QUERY_TOO_COMPLEX", says="at most 5 top-level fields")
    many = " ".join(f"q{i}: find_ev_locations_count" for i in range(6))
    query = "{ ...Many } fragment Many on Query { " + many + " }"
    refused(gql(basic, query), code="QUERY_TOO_COMPLEX", says="at most 5 top-level fields")


def test_selection_bomb_through_fragments(basic):
    # Each fragment doubles the one before: 2^12 selections from a query of a few hundred characters.
    fragments = ["fragment F0 on Location { id name }"] + [
        f"fragment F{i} on Location {{ ...F{i - 1} evses {{ locations {{ ...F{i - 1} }} }} }}" for i in range(1, 13)]
    query = "{ find_ev_locations { ...F12 } } " + " ".join(fragments)
    refused(gql(basic, query), code="QUERY_TOO_COMPLEX")


def test_fragment_cycles_and_unknown_fragments_are_the_specs_errors(basic):
    refused(gql(basic, "{ find_ev_locations { ...A } } fragment A on Location { ...B } "
                       "fragment B on Location { ...A }"), says="Cannot spread fragment 'A' within itself")
    refused(gql(basic, "{ find_ev_locations { ...Nowhere } }"), says="Unknown fragment 'Nowhere'")


def test_long_chains_of_fragments_are_refused_not_a_crash(basic):
    def chain(length: int) -> str:
        return "{ find_ev_locations { ...F0 } } " + " ".join(
            f"fragment F{i} on Location {{ id ...F{i + 1} }}" for i in range(length)) + \
            f" fragment F{length} on Location {{ id }}"
    assert gql(basic, chain(150)).status_code == 200
    refused(gql(basic, chain(300)), says="Validation aborted")  # graphql-core's own nesting guard


def test_fragment_spreads_are_limited(basic, monkeypatch):
    monkeypatch.setattr(view, "MAX_FRAGMENT_SPREADS", 10)
    view._checked_document.cache_clear()  # validation outcomes are cached per query text
    query = "{ find_ev_locations { ...F0 } } " + " ".join(
        f"fragment F{i} on Location {{ ...F{i + 1} }}" for i in range(20)) + " fragment F20 on Location { id }"
    refused(gql(basic, query), code="QUERY_TOO_COMPLEX", says="more than 10 fragment spreads")


def test_huge_and_deeply_nested_texts(basic):
    refused(gql(basic, "{ find_ev_locations { id } }" + " " * 20_001), code="BAD_REQUEST",
            says="at most 20000 are accepted")
    refused(gql(basic, "{" + "a {" * 3000 + "b" + "}" * 3001), says="Syntax Error")


# --- The specification's own validation is kept --------------------------------------------------------

@pytest.mark.smoke
@pytest.mark.parametrize("query, says", [
    ("{ find_ev_locations { id nope } }", "Cannot query field 'nope' on type 'Location'"),
    ("{ nope }", "Cannot query field 'nope' on type 'Query'"),
    ('{ find_ev_locations(limit: "ten") { id } }', "Int cannot represent non-integer value: \"ten\""),
    ("{ find_ev_locations(limit: 99999999999) { id } }", "Int cannot represent non 32-bit signed integer"),
    ("{ location { id } }", "argument 'id' of type 'Int!' is required"),
    ("{ find_ev_locations }", "must have a selection of subfields"),
    ("{ find_ev_locations { id", "Syntax Error"),
    ("mutation { x }", "Schema is not configured to execute mutation operation"),
    ("query A { find_ev_locations_count } query A { find_ev_locations_count }",
     "There can be only one operation named 'A'"),
])
def test_invalid_queries_are_400_with_the_specs_message(basic, query, says):
    refused(gql(basic, query), says=says)


def test_an_infinite_float_is_an_argument_error(basic):
    refused(gql(basic, "{ find_ev_filter_locations(lat: 1e400, lng: 1) { id } }"), status=200,
            code="BAD_USER_INPUT", says="lat must be a latitude between -90 and 90, not inf")


def test_wrong_variables_are_errors(basic):
    query = "query($lat: Float!, $lng: Float!) { find_ev_filter_locations(lat: $lat, lng: $lng) { id } }"
    refused(gql(basic, query, {"lat": "north", "lng": 1}), says="Float cannot represent")
    refused(gql(basic, query, {"lng": 1}), says="Variable '$lat' of required type 'Float!' was not provided")
    refused(post_raw(basic, '{"query": "%s", "variables": {"lat": NaN, "lng": 1}}' % query), says="")


# --- Transport ---------------------------------------------------------------------------------------------

@pytest.mark.smoke
def test_batching_is_refused(basic):
    body = json.dumps([{"query": "{ find_ev_locations_count }"}, {"query": "{ find_ev_locations_count }"}])
    refused(post_raw(basic, body), says="batched queries are not supported")


@pytest.mark.parametrize("body, content_type, status, says", [
    ("{not json", "application/json", 400, "the body is not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "application/json", 400, ""),  # batching or recursion: never a crash
    ('"a string"', "application/json", 400, "the body must be a JSON object"),
    ("{}", "application/json", 400, "send a query"),
    ('{"query": 5}', "application/json", 400, "query must be a string"),
    ('{"query": ["{ find_ev_locations_count }"]}', "application/json", 400, "query must be a string"),
    ('{"query": "{ find_ev_locations_count }", "variables": [1]}', "application/json", 400,
     "variables must be a JSON object"),
    ('{"query": "{ find_ev_locations_count }", "variables": "{nope"}', "application/json", 400,
     "Variables are invalid JSON"),
    ('{"query": "{ find_ev_locations_count }", "operationName": 7}', "application/json", 400,
     "operationName must be a string"),
    (b"\xff\xfe", "application/json", 400, "the body is not valid JSON"),
    ("{ find_ev_locations_count }", "text/plain", 400, "send a query"),
])
def test_malformed_requests_are_400(basic, body, content_type, status, says):
    refused(post_raw(basic, body, content_type), status=status, says=says)


def test_deeply_nested_variables_are_not_a_crash(basic):
    body = '{"query": "{ find_ev_locations_count }", "variables": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    assert post_raw(basic, body).status_code == 400


def test_application_graphql_and_get_work(basic, alpha):
    place(alpha, "L1", BERLIN)
    response = post_raw(basic, "{ find_ev_locations_count }", "application/graphql")
    assert response.status_code == 200 and response.json() == {"data": {"find_ev_locations_count": 1}}
    response = basic.get("/graphql", {"query": "{ find_ev_locations_count }"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and response.json() == {"data": {"find_ev_locations_count": 1}}


def test_other_methods_are_405(basic):
    assert basic.put("/graphql", data="{}", content_type="application/json").status_code == 405


def test_no_csrf_token_needed(client_key):
    browserless = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Basic {client_key}")
    response = browserless.post("/graphql", data={"query": "{ find_ev_locations_count }"},
                                content_type="application/json")
    assert response.status_code == 200


def test_a_bug_in_a_resolver_is_an_error_without_internals(basic, monkeypatch):
    def broken():
        raise RuntimeError("password=hunter2 in SELECT secret FROM table")
    monkeypatch.setattr("locations.selectors.visible_locations", broken)
    response = gql(basic, "{ find_ev_locations_count }")
    assert response.status_code == 200
    error = refused(response, status=200, code="INTERNAL_SERVER_ERROR", says="Internal server error")
    assert error["path"] == ["find_ev_locations_count"]
    assert b"hunter2" not in response.content and b"Traceback" not in response.content


# --- Introspection and GraphiQL ----------------------------------------------------------------------------

@pytest.mark.smoke
def test_introspection_is_a_setting_and_graphiqls_query_passes(basic, settings):
    from config import settings as evhub_settings

    assert evhub_settings.GRAPHQL_INTROSPECTION is evhub_settings.DEBUG  # off by default, on in DEBUG
    settings.GRAPHQL_INTROSPECTION = True  # as `make run` asks, for GraphiQL
    response = gql(basic, get_introspection_query(descriptions=True, input_value_deprecation=True))
    assert response.status_code == 200, response.content
    names = {t["name"] for t in response.json()["data"]["__schema"]["types"]}
    assert {"Location", "Evse", "Connector", "Facility", "Capability", "PaymentType", "ParkingType",
            "ParkingRestriction"} <= names


@pytest.mark.smoke
def test_introspection_can_be_switched_off(basic, settings):
    settings.GRAPHQL_INTROSPECTION = False
    refused(gql(basic, "{ __schema { queryType { name } } }"), code="INTROSPECTION_DISABLED",
            says="introspection is disabled")
    refused(gql(basic, '{ __type(name: "Location") { name } }'), code="INTROSPECTION_DISABLED")
    response = gql(basic, "{ __typename find_ev_locations_count }")
    assert response.status_code == 200 and response.json()["data"]["__typename"] == "Query"


def test_introspection_bombs_are_refused(basic, settings):
    settings.GRAPHQL_INTROSPECTION = True
    aliased = "{ " + " ".join(f'a{i}: __type(name: "Location") {{ name fields {{ name }} }}' for i in range(200)) + " }"
    refused(gql(basic, aliased), says="at most 2 of __schema and __type")
    refused(gql(basic, '{ a: __type(name: "Location") { name } b: __type(name: "Evse") { name } '
                       'c: __type(name: "Connector") { name } }'), says="at most 2 of __schema and __type")
    many = "{ __schema { " + " ".join(f"q{i}: queryType {{ name }}" for i in range(25)) + " } }"
    refused(gql(basic, many), says="aliases")
    query = "{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }"
    refused(gql(basic, query), says="Maximum introspection depth exceeded")


@pytest.mark.smoke
def test_graphiql_renders_for_a_browser(anonymous_api):
    for path in ("/graphql", "/graphql/"):
        response = anonymous_api.get(path, HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        assert b"graphiql" in response.content.lower()


def test_a_get_without_query_for_a_program_is_400(anonymous_api):
    refused(anonymous_api.get("/graphql", HTTP_ACCEPT="application/json"), says="send a query")


def test_no_query_text_makes_a_500(basic, as_alpha, alpha):
    """Mangled versions of real queries, sent by both kinds of caller: always a 200 or a 400."""
    import random

    place(alpha, "L1", BERLIN)
    seeds = [
        '{ find_ev_filter_locations(lat: 52.5, lng: 13.4, distance: 5, facilities: ["CAFE"], min_power: 1000, '
        'status: "AVAILABLE", limit: 3) { id distance evses { uid connectors { id connector_type } } } }',
        '{ evse(location_name: "x", order_by: "location", order: "ASC") { uid locations { id images image_details { url } } } }',
        "query Q($id: Int!) { location(id: $id) { id ...F } } fragment F on Location { name facilities { code } }",
    ]
    pieces = ["{", "}", "(", ")", "[", "]", ":", "$id", "...F", "@skip(if: true)", '"', "\\u0000", "-1", "1e999",
              "2147483648", "null", "__schema", "__typename", "a: ", "!", "#", "\n", "fragment", "on", "é", "\x00"]
    rng = random.Random(4)
    for _ in range(300):
        text = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text))
            if rng.random() < 0.5:
                del text[at]
            else:
                text.insert(at, rng.choice(pieces))
        variables = rng.choice([None, {"id": 1}, {"id": "x"}, {"id": 2**40}, {"id": None}, {}])
        for api in (basic, as_alpha):
            response = gql(api, "".join(text), variables)
            assert response.status_code in (200, 400), (response.status_code, "".join(text), response.content)


@pytest.mark.smoke
def test_graphiql_gets_its_csrf_cookie_and_an_apps_post_the_same_answer_either_way(basic, client_key):
    page = Client().get("/graphql", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert page.status_code == 200 and "csrftoken" in page.cookies
    body = json.dumps({"query": "{ find_ev_locations_count nope: find_ev_locations(limit: 0) { id } }"})
    short = basic.post("/graphql", data=body, content_type="application/json")  # an app: the short way
    full = basic.post("/graphql?raw", data=body, content_type="application/json")  # a query string: the full view
    assert short.status_code == full.status_code == 200
    assert short.content == full.content and short["Content-Type"] == full["Content-Type"]
    bad = "{not json"
    assert (basic.post("/graphql", data=bad, content_type="application/json").content
            == basic.post("/graphql?raw", data=bad, content_type="application/json").content)
    browser = Client(HTTP_AUTHORIZATION=f"Basic {client_key}")
    html = browser.post("/graphql", data=body, content_type="application/json", HTTP_ACCEPT="text/html")
    assert html["Content-Type"].startswith("text/html")  # a browser asking for HTML still gets GraphiQL

"""The GraphQL API, fuzzed with queries built from its own schema (read in process from config.schema, as
introspection is off by default): root fields with arguments of the right and of the wrong types, as
literals or variables, random selections of fields down through the object types, aliases, inline and
named fragments, directives; then the same texts mangled, and texts no parser should accept.

Each is POSTed to /graphql by a front end (`Basic <client key>`) and a CPO user (`Bearer <access token>`)
over a small published catalogue. Every answer is no 5xx, JSON with `data` and/or a non-empty `errors`
list, and no error is a bug reported as "Internal server error".
"""

from __future__ import annotations

import json
import string
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from graphql import (GraphQLEnumType, GraphQLInterfaceType, GraphQLList, GraphQLNonNull, GraphQLObjectType,
                     GraphQLScalarType, GraphQLUnionType)
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.test import APIClient

from config.schema import schema
from emsp import accounts
from emsp.services import portal_client_create
from tests.fuzz.conftest import fuzz_settings
from tests.graphql.conftest import BERLIN, HAMBURG, POTSDAM, place

pytestmark = pytest.mark.django_db

SCHEMA = schema.graphql_schema
QUERY = SCHEMA.query_type
PASSWORD = "fuzzing is believing 2026"

# --- values of every kind, for arguments of the right and the wrong type ---------------------------------

INTS = st.one_of(st.integers(1, 20), st.integers(-5, 500),
                 st.sampled_from([0, -1, 1, 100, 101, 2**31 - 1, -(2**31), 10_000_000]))
LOCATION_ID = "__LOCATION_ID__"  # a stored location's id, put in by the test (ids differ from test to test)
FLOATS = st.one_of(st.floats(-200, 200, allow_nan=False), st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 52.52,
                                                                           13.405, 1e6, 1.7976931348623157e308]))
STRINGS = st.one_of(
    st.sampled_from(["", " ", "Berlin", "berlin", "AVAILABLE", "TYPE_2", "IEC_62196_T2", "location", "date_created",
                     "ASC", "DESC", "%", "_", "\\", "'", '"', "' OR 1=1 --", "\x00", "\u2028", "😀", "a" * 300]),
    st.text(max_size=20),
)
SCALARS = {"Int": INTS, "Float": FLOATS, "String": STRINGS, "Boolean": st.booleans(), "ID": STRINGS}
# Of the wrong type, or out of every type's range.
ANY_VALUE = st.one_of(INTS, FLOATS, STRINGS, st.booleans(), st.none(), st.lists(STRINGS, max_size=3),
                      st.sampled_from([2**31, -(2**31) - 1, 2**53, 10**30, "\ud800", "\udfff x"]))


def _literal(value) -> str:
    """A Python value as a GraphQL literal (strings JSON-escaped, which GraphQL reads the same way)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text if text not in ("inf", "-inf", "nan") else "1e999"
    if isinstance(value, int):
        return str(value)
    if value == LOCATION_ID:
        return value
    if isinstance(value, str):
        # Characters as they are (GraphQL reads no surrogate pairs in \\u escapes), a lone surrogate escaped.
        return json.dumps(value, ensure_ascii=not _utf8(value))
    if isinstance(value, list):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    return json.dumps(str(value))


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unwrap(gql_type):
    while isinstance(gql_type, (GraphQLNonNull, GraphQLList)):
        gql_type = gql_type.of_type
    return gql_type


def _type_name(gql_type) -> str:
    if isinstance(gql_type, GraphQLNonNull):
        return _type_name(gql_type.of_type) + "!"
    if isinstance(gql_type, GraphQLList):
        return "[" + _type_name(gql_type.of_type) + "]"
    return gql_type.name


@st.composite
def values_of(draw, gql_type):
    """A value of the type, mostly; now and then one of any other type (the wrong one)."""
    if one_in(draw, 25):
        return draw(ANY_VALUE)
    return draw(right_values_of(gql_type))


def right_values_of(gql_type) -> st.SearchStrategy:
    if isinstance(gql_type, GraphQLNonNull):
        right = right_values_of(gql_type.of_type).filter(lambda value: value is not None)
    elif isinstance(gql_type, GraphQLList):
        right = st.one_of(st.lists(right_values_of(gql_type.of_type), max_size=4), right_values_of(gql_type.of_type))
    elif isinstance(gql_type, GraphQLEnumType):
        right = st.sampled_from(list(gql_type.values))
    elif isinstance(gql_type, GraphQLScalarType):
        right = SCALARS.get(gql_type.name, STRINGS)
    else:
        right = st.none()
    return right


# --- documents --------------------------------------------------------------------------------------------

NAMES = st.text(string.ascii_lowercase, min_size=1, max_size=6)


def one_in(draw, n: int) -> bool:
    """True about once in n draws (Hypothesis starts from the smallest choices: 0 would be every time)."""
    return draw(st.integers(1, n)) == n


class Document:
    """What one query needs besides its operation: variables, their definitions, named fragments."""

    def __init__(self):
        self.variables: dict = {}
        self.definitions: list[str] = []
        self.fragments: list[str] = []

    def variable(self) -> str:
        return f"v{len(self.definitions)}"


@st.composite
def arguments(draw, field, doc: Document) -> str:
    parts = []
    for name, argument in field.args.items():
        if not isinstance(argument.type, GraphQLNonNull) and not one_in(draw, 3):
            continue  # left out (a required one is sometimes left out below)
        value = draw(values_of(argument.type))
        if name == "id" and not one_in(draw, 3):
            value = LOCATION_ID
        if one_in(draw, 4):
            variable = doc.variable()
            declared = _type_name(argument.type)
            if one_in(draw, 10):
                declared = draw(st.sampled_from(["String", "Int", "[Float]", "Boolean!", "Location"]))
            doc.definitions.append(f"${variable}: {declared}")
            if not one_in(draw, 5):
                doc.variables[variable] = value
            parts.append(f"{name}: ${variable}")
        else:
            parts.append(f"{name}: {_literal(value)}")
    if one_in(draw, 150):
        parts.append(f"{draw(st.sampled_from(['bogus', 'limit', 'id', 'lat']))}: {_literal(draw(ANY_VALUE))}")
    if parts and one_in(draw, 60):
        parts.pop(draw(st.integers(0, len(parts) - 1)))  # a required argument may go missing too
    return "(" + ", ".join(parts) + ")" if parts else ""


def _is_object(gql_type) -> bool:
    return isinstance(_unwrap(gql_type), (GraphQLObjectType, GraphQLInterfaceType, GraphQLUnionType))


@st.composite
def selection(draw, parent_type, doc: Document, depth: int, max_depth: int) -> str:
    """A selection set on an object or interface type: some of its fields, each perhaps aliased, with
    arguments and its own selection one level deeper (leaves only at `max_depth`), perhaps inside an
    inline or a named fragment."""
    fields = sorted(parent_type.fields)
    if depth >= max_depth:
        fields = [name for name in fields if not _is_object(parent_type.fields[name].type)] or fields
    most = 3 if parent_type is QUERY else 6  # at most 5 root fields are allowed
    chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=min(most, len(fields)), unique=True))
    if one_in(draw, 60):
        chosen.append(chosen[0])  # the same field twice (with other arguments, a conflict)
    parts = []
    for name in chosen:
        field = parent_type.fields[name]
        text = name
        if one_in(draw, 5):
            text = f"{draw(NAMES)}: {name}"
        text += draw(arguments(field, doc))
        if one_in(draw, 100):
            text += draw(st.sampled_from([" @include(if: true)", " @skip(if: false)", " @skip(if: true)",
                                          " @deprecated", " @include"]))
        if _is_object(field.type):
            if not one_in(draw, 200):  # an object without a selection, now and then
                text += " " + draw(selection(_unwrap(field.type), doc, depth + 1, max_depth))
        elif one_in(draw, 300):
            text += " { id }"  # a selection on a scalar
        parts.append(text)
    if one_in(draw, 8):
        parts.append("__typename")
    if one_in(draw, 8):
        parts = [f"... on {parent_type.name} {{ {' '.join(parts)} }}"]
    elif one_in(draw, 8):
        fragment = f"F{len(doc.fragments)}"
        on = parent_type.name if not one_in(draw, 10) else draw(st.sampled_from(["Location", "Evse", "Query"]))
        doc.fragments.append(f"fragment {fragment} on {on} {{ {' '.join(parts)} }}")
        parts = [f"...{fragment}"]
    return "{ " + " ".join(parts) + " }"


@st.composite
def queries(draw) -> tuple[str, dict | None]:
    """A query document built from the schema's root fields, and its variables."""
    doc = Document()
    body = draw(selection(QUERY, doc, depth=1, max_depth=draw(st.sampled_from([2, 3, 4, 5, 9]))))
    name = draw(st.sampled_from(["", "", "query", "query Fuzz"]))
    if one_in(draw, 20):
        name = draw(st.sampled_from(["mutation", "subscription S"]))
    if doc.definitions:
        name = (name or "query") + f"({', '.join(doc.definitions)})"
    text = " ".join([f"{name} {body}".strip(), *doc.fragments])
    variables = doc.variables if doc.variables or draw(st.booleans()) else None
    return text, variables


@st.composite
def mangled(draw) -> tuple[str, dict | None]:
    """A built query with some characters cut, doubled or replaced."""
    text, variables = draw(queries())
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        at = draw(st.integers(0, len(text) - 1))
        action = draw(st.sampled_from(["cut", "insert", "double", "truncate"]))
        if action == "cut":
            text = text[:at] + text[at + 1:]
        elif action == "insert":
            text = text[:at] + draw(st.sampled_from(list('{}()[]:$@!"\\#.,=') + ["...", "\x00", "\ud800", "😀",
                                                                              '"""', "query"])) + text[at:]
        elif action == "double":
            text = text[:at] + text[at:] + text[at:]
        else:
            text = text[:at]
    return text, variables


HOSTILE_TEXTS = st.sampled_from([
    "", " ", "{", "}", "{ }", "{ __typename }", "query", "{ find_ev_locations }", "{ location { id } }",
    "{ location(id: 1) }", "{ __schema { types { name fields { name } } } }", '{ __type(name: "Location") { name } }',
    "{" * 5000 + "}" * 5000, "{ find_ev_locations { " + "evses { locations { " * 20 + "id" + " } }" * 20 + " } }",
    "{ " + " ".join(f"a{i}: find_ev_locations_count" for i in range(300)) + " }",
    "fragment A on Query { ...B } fragment B on Query { ...A } { ...A }",
    "query ($x: Int = 1e999) { find_ev_locations(limit: $x) { id } }",
    "{ find_ev_locations(limit: 99999999999999999999) { id } }", '{ location(id: "1") { id } }',
    "{ find_ev_filter_locations(lat: 52.52, lng: 13.405, distance: 1e308) { id distance } }",
    '{ find_ev_filter_locations(city: "\\u0000") { id } }', '{ evse(order_by: "\\ud800") { uid } }',
    "# only a comment", "\ufeff{ __typename }", "{ find_ev_locations_count } { find_ev_locations_count }",
    "x" * 25_000,
])


@st.composite
def bodies(draw, texts) -> str | bytes:
    """The JSON body of a POST (or, rarely, a body that is no such JSON)."""
    text, variables = draw(texts)
    body = {"query": text}
    if variables is not None:
        body["variables"] = variables
    if one_in(draw, 8):
        body["operationName"] = draw(st.sampled_from(["Fuzz", "S", "", None, 1]))
    if one_in(draw, 15):
        return draw(st.sampled_from([
            "", "null", "[]", '[{"query": "{ __typename }"}]', '{"query": 1}', '{"query": "{ __typename }", '
            '"variables": "x"}', '{"query": "{ __typename }", "variables": {"a": NaN}}', "{" * 2000,
            '{"query": "\\ud800"}', b"\xff\xfe{}",
        ]))
    return json.dumps(body, ensure_ascii=draw(st.booleans()) or not _utf8(json.dumps(body, ensure_ascii=False)))


# --- callers and the catalogue they query ---------------------------------------------------------------


class Callers:
    def __init__(self, client_key: str, access_token: str, location_id: int):
        self.location_id = location_id
        self.basic, self.bearer = APIClient(), APIClient()
        self.basic.credentials(HTTP_AUTHORIZATION=f"Basic {client_key}")
        self.bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token}")

    def with_ids(self, text):
        if not isinstance(text, str):
            return text
        return text.replace(f'"{LOCATION_ID}"', str(self.location_id)).replace(LOCATION_ID, str(self.location_id))


@pytest.fixture
def callers(alpha, bravo) -> Callers:
    alpha.owner = User.objects.create_user(username="alpha-owner", password=PASSWORD)
    alpha.save()
    berlin = place(alpha, "BER1", BERLIN, facilities=["HOTEL", "CAFE"], parking_type="ON_STREET")
    place(alpha, "POT1", POTSDAM)
    place(alpha, "PEND", POTSDAM, moderated=False)
    place(bravo, "HAM1", HAMBURG)
    _, key = portal_client_create(name="fuzzed app")
    session = accounts.session_login(username="alpha-owner", password=PASSWORD, client_address=None)
    return Callers(key, session.access_token, berlin.pk)


def answer_of(response, request) -> dict:
    assert response.status_code < 500, (request, response.status_code, response.content[:2000])
    assert response["Content-Type"].startswith("application/json"), (request, response["Content-Type"],
                                                                     response.content[:500])
    body = json.loads(response.content)
    assert isinstance(body, dict) and ("data" in body or "errors" in body), (request, body)
    assert set(body) <= {"data", "errors", "extensions"}, (request, body)
    errors = body.get("errors")
    if errors is not None:
        assert isinstance(errors, list) and errors, (request, body)
        for error in errors:
            assert isinstance(error, dict) and isinstance(error.get("message"), str), (request, body)
            assert "internal server error" not in error["message"].lower(), (request, body)
            assert (error.get("extensions") or {}).get("code") != "INTERNAL_SERVER_ERROR", (request, body)
    if body.get("data") is None:
        assert errors, (request, body)
    return body


def post(callers: Callers, body) -> None:
    body = callers.with_ids(body)
    for api in (callers.basic, callers.bearer):
        answer_of(api.post("/graphql", data=body, content_type="application/json"), body)


@given(body=bodies(queries()))
@fuzz_settings(4)
def test_posted_queries(callers, body):
    post(callers, body)


@given(body=bodies(st.one_of(mangled(), HOSTILE_TEXTS.map(lambda text: (text, None)))))
@fuzz_settings(4)
def test_posted_mangled_texts(callers, body):
    post(callers, body)


@given(query=st.one_of(queries(), mangled()))
@fuzz_settings(4)
def test_queries_in_the_url(callers, query):
    """The same through GraphiQL's way in (GET with the query in the URL), which reads variables itself."""
    text, variables = query
    params = {"query": callers.with_ids(text)}
    if variables is not None:
        params["variables"] = callers.with_ids(json.dumps(variables))
    # Encoded by hand: a lone surrogate goes as the bytes a careless client would send.
    url = "/graphql?" + urlencode({key: value.encode("utf-8", "surrogatepass") for key, value in params.items()})
    answer_of(callers.basic.get(url), params)

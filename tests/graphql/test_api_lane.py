"""An app's POST /graphql takes the lane (config/api_lane.py), past URL resolution and the browser's
middleware: the same status, headers and body as through Django's own handler and the whole chain, and every
other request takes the whole chain."""

import json
from pathlib import Path

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory

from config import api_lane, graphql
from config.wsgi import application
from tests.fuzz.conftest import in_test_transaction

from .conftest import BERLIN, place

pytestmark = pytest.mark.django_db

django_application = WSGIHandler()  # Django's own handler: settings.MIDDLEWARE for every request
SEARCH = "{ find_ev_filter_locations(lat: %s, lng: %s) { id name distance evses { uid } } }" % BERLIN


def _environ(key, body, *, path="/graphql", method="post", content_type="application/json", **extra):
    factory = getattr(RequestFactory(), method)
    if method == "post":
        return factory(path, body, content_type=content_type, HTTP_AUTHORIZATION=f"Basic {key}", **extra).environ
    return factory(path, HTTP_AUTHORIZATION=f"Basic {key}", **extra).environ


def _spied_lane() -> tuple[api_lane.ApiLaneHandler, list]:
    """A new lane handler, and the requests (method, path) its whole chain is given."""
    handler, given = api_lane.ApiLaneHandler(), []
    whole_chain = handler.whole_chain

    def spy(request):
        given.append((request.method, request.path_info))
        return whole_chain(request)

    handler.whole_chain = spy
    return handler, given


def _call(app, environ):
    """(status, headers without the request id's value, body) of one request to the WSGI `app`."""
    started = []
    body = b"".join(in_test_transaction(app)(environ, lambda status, headers, *_: started.append((status, headers))))
    status, headers = started[0]
    names = [name for name, _ in headers]
    assert len(names) == len(set(names)), headers
    headers = dict(headers)
    assert len(headers.pop("X-Request-ID")) == 32
    return status, headers, body


@pytest.mark.smoke
@pytest.mark.parametrize("body", [
    json.dumps({"query": SEARCH}),  # compiled on PostgreSQL, graphene's on SQLite
    json.dumps({"query": "{ find_ev_locations { id name } find_ev_locations_count }"}),
    json.dumps({"query": "{ find_ev_locations { nope } }"}),  # a validation error: 400
    "{not json", json.dumps([{"query": "{ find_ev_locations_count }"}]),  # refused bodies
    json.dumps({"query": "{ find_ev_locations_count }", "pad": "x" * 3_000_000}),  # past the body's size limit
])
def test_the_lane_answers_as_djangos_handler(client_key, alpha, body):
    place(alpha, "L1", BERLIN)
    lane = _call(application, _environ(client_key, body))
    assert lane == _call(django_application, _environ(client_key, body))
    status, headers, answer = lane
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin" and headers["Access-Control-Expose-Headers"] == "X-Request-ID"
    assert int(headers["Content-Length"]) == len(answer) > 0 and status[:3] in ("200", "400")


SEED_SEARCH = (Path(__file__).resolve().parents[2] / "config" / "seed_queries" / "Find_ev_filter_locations.graphql"
               ).read_text(encoding="utf-8")
DEEP = "{ find_ev_locations { evses { locations { evses { locations { evses { locations { evses { uid } } } } } } } } }"


LONE_SURROGATE = json.dumps({"query": "query Q($c: String) { find_ev_filter_locations(lat: 52.52, lng: 13.405, "
                                      "city: $c) { id } }", "variables": {"c": "\ud800"}})  # JSON's \\ud800 escape


@pytest.mark.parametrize("body, refused", [
    (json.dumps({"query": SEED_SEARCH}), False),  # the seed's query as printed
    (json.dumps({"query": SEED_SEARCH.replace("lat: 14.559192", "lat: 1e300")}), True),  # too large
    (json.dumps({"query": SEED_SEARCH.replace("lat: 14.559192", 'lat: "north"')}), True),  # wrong type
    (json.dumps({"query": SEED_SEARCH.replace("lng: 121.017516", 'lng: 121.017516, city: "%s"' % ("x" * 100_000))}),
     True),  # too long
    (LONE_SURROGATE, True),
    (json.dumps({"query": DEEP}), True),  # nested past the limit
])
def test_seed_search_and_bad_values_on_the_lane_as_by_django(client_key, alpha, body, refused):
    place(alpha, "L1", BERLIN)
    lane = _call(application, _environ(client_key, body))
    assert lane == _call(django_application, _environ(client_key, body))
    status, _, answer = lane
    assert status[:3] in ("200", "400"), answer[:300]
    assert bool(json.loads(answer).get("errors")) is refused, answer[:300]


def test_a_charset_in_the_content_type_still_takes_the_lane(client_key, alpha):
    place(alpha, "L1", BERLIN)
    lane, given = _spied_lane()
    body, content_type = json.dumps({"query": SEARCH}), "application/json; charset=utf-8"
    answer = _call(lane, _environ(client_key, body, content_type=content_type))
    assert given == [] and answer == _call(django_application, _environ(client_key, body, content_type=content_type))
    assert answer[0] == "200 OK" and json.loads(answer[2])["data"]["find_ev_filter_locations"][0]["name"]


def test_a_wrong_key_is_refused_and_counted_on_the_lane_as_by_django(client_key, alpha):
    body = json.dumps({"query": SEARCH})
    lane = _call(application, _environ("not-a-key", body))
    assert lane == _call(django_application, _environ("not-a-key", body))
    assert b"UNAUTHENTICATED" in lane[2]


def test_the_callers_request_id_is_kept_and_a_bad_one_replaced(client_key):
    given = "0123456789abcdef0123456789abcdef"
    for sent, kept in ((given, True), ("not a uuid <script>", False)):
        started = []
        environ = _environ(client_key, json.dumps({"query": SEARCH}), HTTP_X_REQUEST_ID=sent)
        b"".join(in_test_transaction(application)(environ, lambda status, headers, *_: started.append(headers)))
        answered = dict(started[0])["X-Request-ID"]
        assert (answered == sent) is kept and len(answered) == 32


def test_a_host_not_allowed_and_an_insecure_request_go_to_django(client_key, settings):
    body = json.dumps({"query": SEARCH})
    started = []
    b"".join(in_test_transaction(application)(_environ(client_key, body, HTTP_HOST="evil.example"),
                                              lambda status, headers, *_: started.append(status)))
    assert started == ["400 Bad Request"]
    settings.SECURE_SSL_REDIRECT = True  # read when the middleware is made: a new handler
    status, headers, _ = _call(api_lane.ApiLaneHandler(), _environ(client_key, body))
    assert status.startswith("301") and headers["Location"] == "https://testserver/graphql"


def test_the_lane_takes_only_an_apps_post(client_key, alpha):
    lane, given = _spied_lane()
    body = json.dumps({"query": SEARCH})
    for environ in (_environ(client_key, body), _environ(client_key, body, path="/graphql/")):
        assert _call(lane, environ)[0].startswith("200")
    assert given == []
    others = [
        _environ(client_key, None, method="get", HTTP_ACCEPT="text/html"),  # GraphiQL: its CSRF cookie
        _environ(client_key, body, path="/graphql?pretty=1"),
        _environ(client_key, body, HTTP_ACCEPT="text/html"),
        _environ(client_key, "query=%7B%7D", content_type="application/x-www-form-urlencoded"),
        _environ(client_key, body, path="/health/"),
    ]
    for environ in others:
        in_test_transaction(lane)(environ, lambda *_: None)
    assert given == [("GET", "/graphql"), ("POST", "/graphql"), ("POST", "/graphql"), ("POST", "/graphql"),
                     ("POST", "/health/")]


def test_a_query_string_of_too_many_fields_is_djangos_400_not_a_500(client_key):
    path = "/graphql?" + "&".join(f"f{i}=1" for i in range(5_000))
    status, _, _ = _call(application, _environ(client_key, json.dumps({"query": SEARCH}), path=path))
    assert status == "400 Bad Request"


def test_a_failure_in_the_view_is_djangos_500_with_the_same_headers(client_key, monkeypatch):
    def broken(_request):
        raise RuntimeError("boom")

    monkeypatch.setattr(graphql, "_serve_api_post", broken)
    body = json.dumps({"query": SEARCH})
    lane = _call(application, _environ(client_key, body))
    assert lane == _call(django_application, _environ(client_key, body))
    assert lane[0] == "500 Internal Server Error" and lane[1]["X-Frame-Options"] == "DENY"


def test_the_request_signals_are_sent_once_each(client_key):
    sent = []

    def started(**_kwargs):
        sent.append("started")

    def finished(**_kwargs):
        sent.append("finished")

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        _call(application, _environ(client_key, json.dumps({"query": SEARCH})))
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert sent == ["started", "finished"]

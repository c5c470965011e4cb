"""config/postgresql: a connection kept from an earlier request is checked by its socket before the request's
first query (no SELECT 1 while it is quiet), and one the server closed is replaced before that query, by
Django's cursor and by the app's search, which takes its cursor past Django's (locations.selectors)."""

import json
import select
import time

import psycopg
import pytest
from django.db import connection
from django.test import RequestFactory

from config.postgresql.base import socket_quiet
from config.wsgi import application
from tests.emsp.conftest import client_key  # noqa: F401 - a fixture
from tests.graphql.conftest import BERLIN, place

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's backend; SQLite has no connection to lose"),
    pytest.mark.django_db(transaction=True),  # no test transaction: the connection is idle between requests
]

SEARCH = "{ find_ev_filter_locations(lat: %s, lng: %s) { id name distance } }" % BERLIN


@pytest.fixture
def round_trips(monkeypatch):
    """The health checks that went to the server (Django's `is_usable`: SELECT 1), counted; the real one runs."""
    asked = []
    is_usable = connection.is_usable

    def counted():
        usable = is_usable()
        asked.append(usable)
        return usable

    monkeypatch.setattr(connection, "is_usable", counted)
    return asked


def _next_request() -> None:
    """What Django does at a request's start for a connection it keeps (`close_old_connections`)."""
    connection.close_if_unusable_or_obsolete()
    assert connection.connection is not None and not connection.health_check_done


def _terminated() -> int:
    """Has the server end this connection's backend, as a restart or an administrator does; its pid. Returns once
    the server's goodbye has reached the socket."""
    pid = connection.connection.info.backend_pid
    settings = connection.get_connection_params()
    with psycopg.connect(**settings, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
    poller = select.poll()
    poller.register(connection.connection.fileno(), select.POLLIN)
    assert poller.poll(5000), "the server's goodbye never reached the socket"
    return pid


def test_a_quiet_kept_connection_is_used_without_a_round_trip(round_trips):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    pid = connection.connection.info.backend_pid
    assert socket_quiet(connection.connection)
    for _ in range(3):
        _next_request()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone() == (pid,)
        assert connection.health_check_done
    assert round_trips == []


def test_a_connection_the_server_closed_is_replaced_before_the_query(round_trips):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    old = _terminated()
    assert not socket_quiet(connection.connection)
    _next_request()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (new,) = cursor.fetchone()
    assert new != old
    assert round_trips == [False]  # the socket had spoken: Django's SELECT 1 asked, failed, and a new one came


def test_a_connection_in_a_transaction_is_not_judged_by_its_socket():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    raw = connection.connection
    raw.autocommit = False
    try:
        raw.execute("SELECT 1")  # a transaction open, as psycopg sees it
        assert not socket_quiet(raw)
    finally:
        raw.rollback()
        raw.autocommit = True
    assert socket_quiet(raw)
    connection.close()
    assert not socket_quiet(raw)  # closed


def _search(key: str) -> dict:
    """One app's search through the WSGI application, with Django's request signals as a server sends them."""
    environ = RequestFactory().post("/graphql", json.dumps({"query": SEARCH}), content_type="application/json",
                                    HTTP_AUTHORIZATION=f"Basic {key}", REMOTE_ADDR="127.0.0.1").environ
    started = []
    response = application(environ, lambda status, headers, *_: started.append(status))
    try:
        body = b"".join(response)
    finally:
        response.close()
    assert started == ["200 OK"], body[:300]
    return json.loads(body)


def test_the_search_after_a_lost_connection_answers_as_ever(alpha, client_key, round_trips):
    place(alpha, "L1", BERLIN)
    answer = _search(client_key)
    assert [row["name"] for row in answer["data"]["find_ev_filter_locations"]] and "errors" not in answer
    assert connection.connection is not None  # kept past the request (CONN_MAX_AGE)
    kept = connection.connection.info.backend_pid
    assert _search(client_key) == answer and connection.connection.info.backend_pid == kept
    assert round_trips == []

    old = _terminated()
    started = time.monotonic()
    assert _search(client_key) == answer  # before: an INTERNAL_SERVER_ERROR for this one search
    assert connection.connection.info.backend_pid != old and round_trips == [False]
    assert time.monotonic() - started < 5

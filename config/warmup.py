"""Build, before the first request, what Django and graphene otherwise build on it.

gunicorn loads the application in its master (`preload_app`, config/gunicorn.conf.py) and calls `warm_master`
before it forks the workers, so each worker starts with the URL resolver, the GraphQL schema and the parsed
and validated documents of the apps' queries, DRF's and drf-spectacular's settings, the template loaders and
the models' field caches already built, shared copy-on-write. Without it each worker's first request paid
the import of the URLconf (and through it every view, serializer and the GraphQL schema) and of redis-py:
795-975 ms for the first search of each worker against a warm p50 of 17-26 ms. Warmed in the master only,
74-209 ms; with `warm_worker` too, 10-25 ms against a warm p50 of 8-24 ms in the same runs; with the
throttle's read warmed as well, 8-13 ms against 4.4-18.8 ms (bench/bench_cold_start.py: 100,000
locations, 2 workers, 3-6 restarts, load average 3.4-4.5 on 2 cores). Once the search became one prepared
statement (locations.graphql_compiled; warm p50 3.2-6.9 ms at 100,000 locations, by load), its preparation and first
plans and the client key's lookup were most of what a worker's first search paid more: 1.86-3.14x the warm
p50 (each worker's first, median of 10) and 2.58-3.58x the same search sent again warm. So `warm_worker` also
runs the compiled search WARM_SEARCHES times and keeps the active client keys (~13 ms of its ~60 ms):
1.21-1.73x and 1.43-1.59x (3 runs x 5 restarts each way; load 1.0-3.9 before, 4.0-4.6 after). What is left is not copy-on-write:
a worker's first search takes 174 minor page faults, its fifth 6-20. `gc.freeze()` before the fork did not
change the first searches (6 restarts each way), but it takes the application's objects out of each
worker's first full collection, which a request within its first 250 paid (`freeze_before_fork`).
`warm_http` then sends the apps' queries through the worker's own request handling (gunicorn's parser and
response writing, the API lane), which nothing else ran before the first client: each worker's first
search 2.16x the warm p50 before (median of 5 restarts, max 2.54x), 1.94x after (max 2.52x), one run each
at load 0.2-0.8.

Nothing here opens a database connection or a cache connection: a socket opened in the master would be
shared by every forked worker. `warm_master` checks this itself and closes any that something opened
anyway. `warm_worker` runs in each worker after the fork and opens the worker's own database connection
(kept CONN_MAX_AGE seconds), so that its first request does not pay the connection's set-up either.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# The paths served most: resolving them imports their views (and the modules those import).
WARM_PATHS = ("/graphql", "/health/", "/ocpi/versions", "/ocpi/2.2.1/locations", "/api/schema/")

# The apps' query documents (docs/graphql.md): parsed and validated once per distinct text
# (config.graphql._checked_document caches them), so these never cost a first request its parse. The first
# is an app's map search (bench_graphql's, compiled: locations.graphql_compiled); the others are the
# front end's own find_ev_* queries as the seed prints them (config/seed_queries/, the contract tests'
# fixtures too): its find_ev_filter_locations is compiled, its find_ev_locations graphene's.
WARM_QUERIES = (
    "query Near($lat: Float!, $lng: Float!) { find_ev_filter_locations(lat: $lat, lng: $lng, distance: 10, "
    "limit: 20) { id name address city postal_code country_code publish distance address_lat address_lng "
    "evses { uid status connectors { standard power_type max_electric_power } } } }",
    *((Path(__file__).parent / "seed_queries" / f"{name}.graphql").read_text(encoding="utf-8")
      for name in ("Find_ev_filter_locations", "Find_ev_locations")),
)
WARM_VARIABLES = {"lat": 52.52, "lng": 13.405}  # Berlin; an empty catalogue answers [] just as well
# Executions of each compiled search in a worker before its first request. Its statement is prepared on the
# connection; PostgreSQL plans the first 5 executions with their values (custom plans) and from the 6th uses
# the generic plan if it is no dearer, which for this statement it is (selectors._knn_scan_sql): after 6, a
# request neither prepares nor plans it.
WARM_SEARCHES = 6


def warm_master() -> dict[str, float]:
    """Build the lazy parts of the application in this process, opening no connection; milliseconds per step."""
    steps: dict[str, float] = {}
    for name, step in (("urls", _urls), ("models", _models), ("graphql", _graphql), ("rest", _rest),
                       ("templates", _templates), ("caches", _caches)):
        started = time.perf_counter()
        try:
            step()
        except Exception:  # noqa: BLE001 - a warm-up failure must not stop the server; the request will tell
            logger.exception("warm-up step %s failed", name)
        steps[name] = (time.perf_counter() - started) * 1000
    _close_connections()
    return steps


def warm_worker() -> dict[str, float]:
    """In a forked worker, before its first request: open its own database and cache connections and run the
    apps' searches on them; milliseconds per step. A new PostgreSQL backend starts with empty catalogue
    caches and plans, which cost the worker's first search 30 ms of SQL (of 70 ms; 8-10 ms warm) in an
    in-process profile; the compiled search's prepared statement, 2.6 ms of its first execution's 5.8 ms
    (1.1-1.4 ms warm; 100,000 locations). Every step logs its failure and the worker starts all the same."""
    from django.core.cache import caches
    from django.db import connections

    steps: dict[str, float] = {}
    started = time.perf_counter()
    for cache in caches.all():
        try:
            cache.get("evhub:warm-up")
        except Exception:  # noqa: BLE001 - Redis may be down at start; requests will retry
            logger.warning("warm-up: cache unavailable", exc_info=True)
    for connection in connections.all():
        try:
            connection.ensure_connection()
        except Exception:  # noqa: BLE001 - the database may be down at start; requests will retry
            logger.warning("warm-up: database %s unavailable", connection.alias, exc_info=True)
            steps["connect"] = (time.perf_counter() - started) * 1000
            return steps
    steps["connect"] = (time.perf_counter() - started) * 1000
    for name, step in (("search", _search), ("compiled", _compiled_search), ("client keys", _client_keys)):
        started = time.perf_counter()
        try:
            step()
        except Exception:  # noqa: BLE001 - e.g. a database not migrated yet: the requests will tell
            logger.exception("warm-up %s failed", name)
        steps[name] = (time.perf_counter() - started) * 1000
    return steps


def freeze_before_fork() -> int:
    """Move every object of this process out of the collector's reach (`gc.freeze`), after a collection;
    how many. gunicorn's master calls it last before forking: a worker's full (generation 2) collection
    then walks only what the worker made, not the ~155,000 objects of the loaded application, whose walk
    wrote to every page holding one (copy-on-write) and cost the request that met it 83-88 ms of CPU,
    160-205 ms of wall time, within the first 250 requests of each worker once the warm-up made more
    garbage (100,000 locations, load ~6 on 2 cores, 4 workers' logs). A master's garbage that has become
    unreachable is collected first, so that none is kept for good."""
    import gc

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _search() -> None:
    """The apps' searches twice each, reads only: once through the whole WSGI application without a credential (the
    middleware, the view, authentication; the field answers UNAUTHENTICATED, no guess is recorded without a
    key), once through the GraphQL view for a stand-in caller (the resolvers and their SQL), after the `Basic`
    key lookup with a key that matches nothing."""
    from django.core import signals
    from django.db import close_old_connections
    from django.test import RequestFactory

    from config.graphql import EvhubGraphQLView
    from config.wsgi import application
    from emsp import throttle
    from emsp.services import portal_client_authenticate

    # As Django's test client does: the request's start and end must not close the connection just opened
    # (they would with CONN_MAX_AGE=0, and inside a test's transaction).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        for query in WARM_QUERIES:
            body = json.dumps({"query": query, "variables": WARM_VARIABLES})
            environ = RequestFactory().post("/graphql", body, content_type="application/json").environ
            statuses = []
            response = application(environ, lambda status, headers, *_: statuses.append(status))
            b"".join(response)
            response.close()
            if not statuses[0].startswith("200"):
                logger.warning("warm-up request answered %s", statuses[0])
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)

    # The `Basic` path the anonymous request skipped, reads only: the address's guess counter (one cache
    # read) and the key lookup with a key that matches nothing; no failure is recorded.
    throttle.guessing_blocked(throttle.CLIENT_KEY, "192.0.2.1")  # TEST-NET-1: nobody's address
    portal_client_authenticate(key="evhub-warm-up")
    view = EvhubGraphQLView()
    for query in WARM_QUERIES:
        text, status = view.get_response(_stand_in_request(), {"query": query, "variables": WARM_VARIABLES})
        if status != 200 or '"errors"' in text:  # the JSON text graphene-django answers
            logger.warning("warm-up search answered %s: %s", status, text[:300])


def _compiled_search() -> None:
    """Each compiled app query (`locations.graphql_compiled`, as config.graphql's view calls it) WARM_SEARCHES
    times at different points, on this worker's connection, for a stand-in caller: the statement prepared and
    its plan settled, and the Python of the compiled path run once. Reads only."""
    from django.conf import settings

    from config import graphql
    from config.schema import schema
    from locations import graphql_compiled

    points = _warm_points()
    request = _stand_in_request()
    for query in WARM_QUERIES:
        document, errors = graphql._checked_document(query, settings.GRAPHQL_INTROSPECTION)
        plan = None if errors else graphql_compiled.plan_of(schema.graphql_schema, document, None)
        if plan is None:
            continue  # graphene's to answer: _search warmed it
        for lat, lng in points:
            if graphql_compiled.answer(plan, request, {"lat": lat, "lng": lng}) is None:
                break  # graphene's path answers here (SQLite; a failure answer() logged): _search warmed it


def _stand_in_request():
    """A `POST /graphql` as the view leaves it for a front end's caller (config.graphql._authenticate): the
    resolvers and the compiled search ask only whether there is a caller."""
    from django.test import RequestFactory

    request = RequestFactory().post("/graphql", content_type="application/json")
    request.graphql_cpo = request.graphql_auth_error = None
    request.graphql_client = object()
    return request


def _client_keys() -> None:
    """The front ends' active keys kept as accepted (emsp.services): the worker's first search with a key does
    not look it up. Last, so that the warm-up's own lookups do not use up the time they are kept for."""
    from emsp.services import portal_clients_accepted_preload

    portal_clients_accepted_preload()


def _warm_points() -> list[tuple[float, float]]:
    """WARM_SEARCHES points: where the catalogue's first and last locations are (two reads by primary key;
    a search there finds rows, so the EVSEs' JSON is made too), then around WARM_VARIABLES' point."""
    from locations.models import Location

    ends = [*Location.objects.order_by("id").values_list("address_lat", "address_lng")[:2],
            *Location.objects.order_by("-id").values_list("address_lat", "address_lng")[:2]]
    points = [(lat, lng) for lat, lng in ends if lat is not None and lng is not None]
    lat, lng = WARM_VARIABLES["lat"], WARM_VARIABLES["lng"]
    points += [(lat + 0.01 * i, lng + 0.01 * i) for i in range(WARM_SEARCHES)]
    return points[:WARM_SEARCHES]


def _urls() -> None:
    from django.urls import Resolver404, get_resolver

    resolver = get_resolver()
    resolver.reverse_dict  # noqa: B018 - builds the reverse tables (imports every urls module and view)
    for path in WARM_PATHS:
        try:
            resolver.resolve(path)
        except Resolver404:
            pass


def _models() -> None:
    from django.apps import apps

    for model in apps.get_models():
        model._meta.get_fields()
        model._meta.concrete_fields  # noqa: B018


def _graphql() -> None:
    from graphql import validate_schema

    from django.conf import settings

    from config import graphql
    from config.schema import schema
    from locations import graphql_compiled

    validate_schema(schema.graphql_schema)
    for query in WARM_QUERIES:
        document, errors = graphql._checked_document(query, settings.GRAPHQL_INTROSPECTION)  # the view's cache key
        if errors:
            logger.warning("warm-up query does not validate: %s", errors[0])
            continue
        graphql_compiled.plan_of(schema.graphql_schema, document, None)  # compiled or not (None), cached per document


def _rest() -> None:
    from drf_spectacular.settings import spectacular_settings
    from rest_framework.settings import api_settings
    from rest_framework_simplejwt.settings import api_settings as jwt_settings

    for settings in (api_settings, spectacular_settings, jwt_settings):
        for name in settings.defaults:
            getattr(settings, name)  # imports the classes named by dotted paths


def _templates() -> None:
    from django.template import engines
    from django.template.loader import get_template

    for engine in engines.all():
        engine.engine.template_loaders  # noqa: B018
    for name in ("map.html", "emsp/set_password.html"):
        get_template(name)


def _caches() -> None:
    """Build each cache's client without connecting: Django's Redis backend imports redis-py (70 ms) on the
    first cache call, which the first request makes (emsp.throttle)."""
    from django.core.cache import caches

    for cache in caches.all():
        getattr(cache, "_cache", None)  # RedisCache: the client and its (unconnected) pools


def _close_connections() -> None:
    """Close what the warm-up (or an import) opened: a forked worker must not share the master's sockets."""
    from django.core.cache import caches
    from django.db import connections

    opened = [c.alias for c in connections.all(initialized_only=True) if c.connection is not None]
    if opened:
        logger.warning("warm-up opened database connections %s; closed before the fork", opened)
    connections.close_all()
    for cache in caches.all(initialized_only=True):
        cache.close()


def warm_http(worker) -> dict[str, float]:
    """In a gunicorn worker, after `warm_worker`: the apps' queries sent through the worker's own request
    handling (`worker.handle`: gunicorn's parser, its WSGI environ, the API lane, the response's writing) on a
    socket pair, without a credential (UNAUTHENTICATED, nothing recorded), and not logged as clients'
    requests. Milliseconds per step."""
    import socket

    from django.conf import settings

    host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h.strip(".*")), "localhost")
    started = time.perf_counter()
    access, worker.log.access = worker.log.access, lambda *args, **kwargs: None
    try:
        for query in WARM_QUERIES:
            body = json.dumps({"query": query, "variables": WARM_VARIABLES}).encode()
            head = (f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    f"User-Agent: evhub-warm-up\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            ours, theirs = socket.socketpair()
            try:
                theirs.sendall(head + body)
                theirs.shutdown(socket.SHUT_WR)  # nothing more: gunicorn's closing drain ends at once
                worker.handle(worker.sockets[0], ours, ("127.0.0.1", 0))  # closes `ours`
                answer = b""
                while chunk := theirs.recv(65536):
                    answer += chunk
                if not answer.startswith(b"HTTP/1.1 200"):
                    logger.warning("warm-up request through gunicorn answered %r", answer[:200])
            finally:
                theirs.close()
    finally:
        worker.log.access = access
    return {"http": (time.perf_counter() - started) * 1000}

"""Cold starts: gunicorn loads and warms the application in its master (config/gunicorn.conf.py,
config/warmup.py), which must open no connection that the forked workers would share."""

import logging
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.urls import get_resolver

from config import graphql, warmup
from config.schema import schema
from emsp.services import portal_client_create
from locations import graphql_compiled
from locations import services as location_services
from tests.conftest import location_payload
from tests.contract.seeds import query as contract_query

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "gunicorn.conf.py"
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def _closable(connection) -> bool:
    """The smoke run's test database is SQLite in memory, which Django never closes (it would be lost)."""
    return not (connection.vendor == "sqlite" and connection.is_in_memory_db())


def test_the_config_preloads_and_warms_before_and_after_the_fork():
    values = runpy.run_path(str(CONFIG))
    assert values["preload_app"] is True
    assert callable(values["when_ready"]) and callable(values["post_worker_init"])


def test_the_master_freezes_its_objects_before_the_fork_so_no_worker_collection_walks_them():
    import gc

    assert "freeze_before_fork()" in CONFIG.read_text()  # when_ready, after warm_master
    try:
        frozen = warmup.freeze_before_fork()
        assert frozen == gc.get_freeze_count() > 0
        assert len(gc.get_objects()) < frozen  # what a collection walks now: the objects made since
    finally:
        gc.unfreeze()  # this test process is no master


def test_gunicorn_reads_the_config_as_the_procfile_and_the_peer_servers_pass_it():
    printed = subprocess.run([GUNICORN, "-c", str(CONFIG), "--print-config", "config.wsgi"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60, check=True).stdout
    settings = {key.strip(): value.strip() for key, value in
                (line.split(" = ", 1) for line in printed.splitlines() if " = " in line)}
    assert settings["preload_app"] == "True"
    assert "when_ready" in settings["when_ready"] and "post_worker_init" in settings["post_worker_init"]
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    assert "-c config/gunicorn.conf.py" in web
    assert '"-c", "config/gunicorn.conf.py"' in (ROOT / "tests" / "ocpi" / "peer_server.py").read_text()


@pytest.mark.smoke
def test_warming_the_master_opens_no_database_connection(monkeypatch, caplog):
    connections.close_all()
    opened = []
    for connection in connections.all():
        monkeypatch.setattr(connection, "connect", lambda alias=connection.alias: opened.append(alias))
    graphql._checked_document.cache_clear()

    with caplog.at_level(logging.WARNING, logger="config.warmup"):
        steps = warmup.warm_master()

    assert opened == []
    assert all(connection.connection is None for connection in connections.all() if _closable(connection))
    assert set(steps) == {"urls", "models", "graphql", "rest", "templates", "caches"}
    failures = [record.getMessage() for record in caplog.records
                if _closable(connections["default"]) or "closed before the fork" not in record.getMessage()]
    assert not failures  # no step failed
    assert get_resolver()._populated
    # The apps' query is parsed and validated already: the view's next call is a cache hit.
    hits = graphql._checked_document.cache_info().hits
    graphql._checked_document(warmup.WARM_QUERIES[0], settings.GRAPHQL_INTROSPECTION)
    assert graphql._checked_document.cache_info().hits == hits + 1


@pytest.mark.smoke
def test_warming_the_master_closes_a_connection_something_opened(django_db_blocker, caplog):
    if not _closable(connections["default"]):
        pytest.skip("an in-memory SQLite test database is never closed")
    with django_db_blocker.unblock():
        connections["default"].ensure_connection()
        assert connections["default"].connection is not None
        with caplog.at_level(logging.WARNING, logger="config.warmup"):
            warmup.warm_master()
    assert connections["default"].connection is None
    assert any("closed before the fork" in record.getMessage() for record in caplog.records)


@pytest.mark.smoke
@pytest.mark.django_db
def test_warming_a_worker_opens_its_connection_and_searches_without_error(caplog):
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    # An execute wrapper, not the query log: the warm-up's WSGI request resets the log when it starts.
    with caplog.at_level(logging.WARNING, logger="config.warmup"), connections["default"].execute_wrapper(record):
        warmup.warm_worker()
    assert connections["default"].connection is not None
    assert not caplog.records, [record.getMessage() for record in caplog.records]
    assert any("emsp_portalclient" in sql for sql in statements), statements  # the key lookup
    assert any("locations_location" in sql for sql in statements), statements  # the search
    writes = ("INSERT ", "UPDATE ", "DELETE ")
    assert not [sql for sql in statements if any(w in sql.upper() for w in writes)]  # reads only


def _prepared_executions() -> list[int]:
    """How often each statement prepared on this connection has run (PostgreSQL counts its plans)."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT generic_plans + custom_plans FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def _postgresql_only():
    if connections["default"].vendor != "postgresql":
        pytest.skip("the compiled search and its prepared statement are PostgreSQL's")


def test_the_master_compiles_the_apps_queries_before_the_fork():
    graphql_compiled.plan_of.cache_clear()
    warmup.warm_master()
    misses = graphql_compiled.plan_of.cache_info().misses
    assert misses == len(warmup.WARM_QUERIES)  # the app's search and the seed's two, compiled or not (None)
    for query in warmup.WARM_QUERIES:
        document, errors = graphql._checked_document(query, settings.GRAPHQL_INTROSPECTION)
        assert not errors
        graphql_compiled.plan_of(schema.graphql_schema, document, None)
    assert graphql_compiled.plan_of.cache_info().misses == misses  # the view's next call is a cache hit
    document = graphql._checked_document(warmup.WARM_QUERIES[0], False)[0]
    assert graphql_compiled.plan_of(schema.graphql_schema, document, None) is not None


def test_the_seed_queries_warmed_are_the_front_ends_own():
    assert warmup.WARM_QUERIES[1:] == (contract_query("Find_ev_filter_locations"), contract_query("Find_ev_locations"))


@pytest.mark.django_db
def test_a_worker_settles_the_compiled_search_on_its_connection_and_its_first_search_is_one_query(
        alpha, client, django_assert_num_queries, caplog):
    _postgresql_only()
    location_services.location_upsert(cpo=alpha, data=location_payload(alpha))
    _, key = portal_client_create(name="map app")

    with caplog.at_level(logging.WARNING):
        steps = warmup.warm_worker()

    assert set(steps) == {"connect", "search", "compiled", "client keys"}
    assert not caplog.records, [record.getMessage() for record in caplog.records]
    # The compiled page statement, prepared on this connection, has run WARM_SEARCHES times: PostgreSQL has
    # chosen the plan it keeps, and no request prepares or plans it again.
    assert max(_prepared_executions()) >= warmup.WARM_SEARCHES
    body = {"query": warmup.WARM_QUERIES[0], "variables": warmup.WARM_VARIABLES}
    with django_assert_num_queries(1):  # the page only: the key was kept by the warm-up, not looked up
        response = client.post("/graphql", body, content_type="application/json", HTTP_AUTHORIZATION=f"Basic {key}")
    assert response.status_code == 200 and "errors" not in response.json()


@pytest.mark.smoke
@pytest.mark.django_db
def test_a_worker_warms_an_empty_catalogue_without_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        steps = warmup.warm_worker()
    assert set(steps) == {"connect", "search", "compiled", "client keys"}
    assert not caplog.records, [record.getMessage() for record in caplog.records]
    if connections["default"].vendor == "postgresql":
        assert max(_prepared_executions()) >= warmup.WARM_SEARCHES


@pytest.mark.django_db
def test_a_worker_starts_on_a_database_not_migrated(caplog):
    """The catalogue's table missing (as before `migrate`): every step logs its failure, none stops the worker."""
    _postgresql_only()
    with connections["default"].cursor() as cursor:  # undone with the test's transaction
        cursor.execute("ALTER TABLE locations_location RENAME TO locations_location_not_yet")
    with caplog.at_level(logging.WARNING):
        steps = warmup.warm_worker()
    assert set(steps) == {"connect", "search", "compiled", "client keys"}
    assert any(record.levelno >= logging.ERROR and "compiled" in record.getMessage() for record in caplog.records)


@pytest.mark.django_db
def test_a_worker_sends_the_apps_queries_through_its_own_request_handling_unlogged(tmp_path, caplog, monkeypatch):
    """warm_http: gunicorn's parser, environ and response writing and the API lane, on a socket pair."""
    import socket

    from gunicorn.config import Config
    from gunicorn.glogging import Logger
    from gunicorn.workers.sync import SyncWorker

    from config.wsgi import application
    from tests.fuzz.conftest import in_test_transaction

    access_log = tmp_path / "access.log"
    cfg = Config()
    cfg.set("accesslog", str(access_log))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    answered = []
    serve = graphql._serve_api_post
    monkeypatch.setattr(graphql, "_serve_api_post", lambda request: answered.append(request.path) or serve(request))
    try:
        worker = SyncWorker(0, 0, [listener], None, 30, cfg, Logger(cfg))
        worker.wsgi = in_test_transaction(application)
        with caplog.at_level(logging.WARNING):
            steps = warmup.warm_http(worker)
        worker.tmp.close()
    finally:
        listener.close()
    assert set(steps) == {"http"} and steps["http"] > 0
    assert not caplog.records, [record.getMessage() for record in caplog.records]  # each answered 200
    assert answered == ["/graphql"] * len(warmup.WARM_QUERIES)
    assert not access_log.exists() or access_log.read_text() == ""  # not a client's request
    assert "warm_http(worker)" in CONFIG.read_text()  # post_worker_init, after warm_worker

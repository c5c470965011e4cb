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

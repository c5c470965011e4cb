"""The fuzz suite: generated requests on every way in (portal and webhooks from the OpenAPI schema the app
serves, OCPI Locations to the receiver, GraphQL queries built from the schema), each answered without a 5xx,
inside its interface's format, and never leaving anything half-written.

Every test here is marked `fuzz` (run with the full suite on PostgreSQL; `-m "not fuzz"` leaves them out).
The number of examples is bounded and the generation derandomized (`FUZZ_SETTINGS`), so that a run is the
same run every time and the whole suite stays within a couple of minutes on two cores. When hunting:
FUZZ_EXAMPLES=500 asks for more examples, FUZZ_RANDOM=1 for new ones on every run (Hypothesis prints the
seed of a failure to replay it), FUZZ_SHRINK=1 for the smallest failing example (up to minutes a failure).
"""

from __future__ import annotations

import os

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
RANDOM = os.environ.get("FUZZ_RANDOM", "") not in ("", "0")
SHRINK = os.environ.get("FUZZ_SHRINK", "") not in ("", "0")

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    print_blob=True,
    # A failure is reported as found (its request and answer are in the assertion): shrinking it replays
    # hundreds of requests, minutes of a test run.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target] + ([Phase.shrink] if SHRINK else []),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def fuzz_settings(scale: int) -> settings:
    """FUZZ_SETTINGS with `scale` times the examples, for tests whose requests are cheap."""
    return settings(FUZZ_SETTINGS, max_examples=EXAMPLES * scale)


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: generated requests (tests/fuzz); bounded, derandomized examples")


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.fuzz)


def in_test_transaction(app):
    """The WSGI application as the test client runs it: inside the test's transaction. Django closes the
    database connection at the start and end of each request (`close_old_connections`), which would end
    the test's transaction; its own test client disconnects it the same way. The caller's address is the
    test client's too (a server always gives one; werkzeug's test environment none)."""

    def wsgi(environ, start_response):
        environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                if hasattr(response, "close"):
                    response.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)

    return wsgi

"""Django's PostgreSQL backend (`ENGINE = "config.postgresql"`, config/settings.py), whose health check asks
the connection's socket before it asks the server.

With CONN_HEALTH_CHECKS, Django checks a connection kept from an earlier request before the request's first
query: `SELECT 1`, a round trip to the server (0.13 ms of a request's wall time and 0.07-0.09 ms of its CPU
here, plus the server's). Here the socket is asked first, without waiting: a server that closed the
connection (a restart, `pg_terminate_backend`, `idle_session_timeout`, a pooler letting go) has sent its
error and end of stream, so the socket is readable, and the check then runs Django's `SELECT 1`, which
fails and has the connection replaced. A socket with nothing to read, on a connection psycopg holds as
healthy and idle, is taken as usable, as `SELECT 1` would find it. What neither check can see quickly (a
peer gone without a word: a cable pulled) is left to TCP, as before. The same liveness test is what
urllib3 does before it reuses a kept-alive HTTP connection.

The app's search calls this check too (locations.selectors._prepared_cursor): it takes its cursor from the
psycopg connection, past Django's, and without the check a connection lost between two requests answered
the next search with an internal error.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if (self.connection is not None and self.health_check_enabled and not self.health_check_done
                and not self.pool and socket_quiet(self.connection)):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()


def socket_quiet(raw) -> bool:
    """Whether a psycopg connection is idle, held healthy by psycopg, and its socket has nothing to read
    (no error, notice or end of stream from the server), asked without waiting."""
    if raw.closed or raw.broken or raw.info.transaction_status != TransactionStatus.IDLE:
        return False
    if not hasattr(select, "poll"):  # not on Linux or macOS: Django's SELECT 1
        return False
    try:
        poller = select.poll()
        poller.register(raw.fileno(), select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False

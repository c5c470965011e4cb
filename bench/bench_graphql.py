"""GraphQL geo search over HTTP: `find_ev_filter_locations` (10 km, 20 results with EVSEs and connectors).

Builds a fresh catalogue of N published locations (about 2 EVSEs x 2 connectors each) jittered around
real German station coordinates (`bench/generate.py`), serves it with gunicorn, and measures latency
(sequential requests) and throughput (concurrent clients) against the targets of issue 4:

- PostgreSQL, 1,000,000 locations, 2 gunicorn workers: p50 <= 15 ms, p95 <= 40 ms, >= 150 requests/s;
- embedded SQLite, 100,000 locations: p50 <= 30 ms.

The backend follows DATABASE_URL, as for the other benches of `scripts/bench.sh`:
- PostgreSQL: the database named in DATABASE_URL is only used to (re)create `evhub_bench` next to it
  (dropped again at the end unless --keep); the catalogue is loaded with COPY.
- unset: `$EVHUB_VAR_DIR/bench.sqlite3` (default var/bench/), loaded with executemany.

    .venv/bin/python bench/bench_graphql.py [COUNT] [--keep] [--reuse] [--concurrency 6] [--duration 20]
                                            [--bench-db evhub_bench]

`--bench-db` names the PostgreSQL bench database (default evhub_bench), so that two people sharing a
server do not drop each other's.

On PostgreSQL the same run measures the floor (issue 14): one SQL statement through psycopg, nearest first
over the GiST index (locations 0007), EVSEs and connectors as JSON, the same points, plain and with a
facility filter (CAFE: 7.5% of the generated locations), each point's statement right after evhub's
request for it (`paired`: both meet the same load); its answers are checked against evhub's. Every
figure is printed beside its floor, the ratio, the CPU milliseconds per search of the gunicorn workers and
of their PostgreSQL backends (from /proc), and the load average (bench/report.py; --json FILE).

`--scale 100000,1000000,10000000` runs the whole bench once per size (each a fresh database, dropped
after; 1,000,000: 3.4 min and 2.2 GB here, 10,000,000: 22.5 min and ~22 GB: check `df -h` first) and prints how the
figures grow.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from report import Report, proc_cpu_seconds  # noqa: E402  (bench/ is on the path above)

BENCH_DB = "evhub_bench"
QUERY = (
    "query Near($lat: Float!, $lng: Float!) { find_ev_filter_locations(lat: $lat, lng: $lng, distance: 10, "
    "limit: 20) { id name address city postal_code country_code publish distance address_lat address_lng "
    "evses { uid status connectors { standard power_type max_electric_power } } } }"
)
FILTER_FACILITY = "CAFE"  # the generator gives each of its 6 facilities to 7.5% of the locations
QUERY_FILTERED = QUERY.replace("limit: 20)", f'limit: 20, facilities: ["{FILTER_FACILITY}"])')


# Issue 14: within 2x of the floor (checked against the floor in the report's ratio column) and >= 300/s.
TARGETS_OF = {"postgresql": {"p50": ("<=", 15.0), "p95": ("<=", 40.0), "rps": (">=", 300.0)},
              "sqlite": {"p50": ("<=", 30.0)}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, help="locations (default 1,000,000 PostgreSQL, 100,000 SQLite)")
    parser.add_argument("--bench-db", default=BENCH_DB, help=f"PostgreSQL bench database (default {BENCH_DB})")
    parser.add_argument("--keep", action="store_true", help="keep the bench database at the end")
    parser.add_argument("--reuse", action="store_true",
                        help="serve the bench database left by --keep, migrated; no load, and it is kept at the end")
    parser.add_argument("--no-shared", action="store_true", help="seed only from the shipped sample")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--sequential", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the throughput run")
    parser.add_argument("--max-requests", type=int, default=20_000, help="cap of the throughput run")
    parser.add_argument("--profile", type=int, default=100,
                        help="in-process requests to split SQL from Python time, and EXPLAIN ANALYZE (0: skip)")
    parser.add_argument("--checks", type=int, default=60, help="points whose answers are compared with the floor's")
    parser.add_argument("--scale", metavar="COUNTS",
                        help="comma-separated sizes (e.g. 100000,1000000,10000000): one fresh run each, then "
                             "how the figures grow")
    Report.add_argument(parser)
    return parser.parse_args()


# --- The bench database --------------------------------------------------------------------------------

def bench_database(reuse: bool, name: str = BENCH_DB) -> tuple[str, str, str, callable]:
    """(backend, DATABASE_URL of the bench, where, drop) after (re)creating an empty bench database."""
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith(("postgres://", "postgresql://", "pgsql://")):
        import psycopg

        parts = urlsplit(base)
        bench_url = urlunsplit(parts._replace(path="/" + name))
        admin = urlunsplit(parts._replace(scheme="postgresql"))

        def drop() -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        if not reuse:
            drop()
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        return "postgresql", bench_url, f"{parts.hostname}:{parts.port}/{name}", drop
    var_dir = Path(os.environ["EVHUB_VAR_DIR"])
    path = var_dir / "bench.sqlite3"
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]

    def drop() -> None:
        for file in files:
            file.unlink(missing_ok=True)

    if not reuse:
        drop()
    return "sqlite", f"sqlite:///{path}", str(path), drop


def migrate(env: dict) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v0"], env=env, check=True,
                   cwd=ROOT)


def check_columns(generator) -> None:
    """The generator's columns must be exactly the table's (a migration without a model change, or the reverse)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for plan in generator.plans:
            actual = {c.name for c in connection.introspection.get_table_description(cursor, plan.table)}
            if actual != set(plan.columns):
                raise SystemExit(f"{plan.table}: table columns {sorted(actual ^ set(plan.columns))} differ from the model")


def load(count: int, seeds, backend: str) -> dict[str, int]:
    """Generate and load `count` locations; returns rows per table. Prints the timings."""
    from django.core.management.color import no_style
    from django.db import connection, transaction

    from generate import CatalogueGenerator
    from locations import services
    from locations.models import Capability, Facility

    cpo, _ = services.cpo_create(country_code="DE", party_id="BCH", owner_name="Bench CPO")
    facilities = list(Facility.objects.filter(
        code__in=["HOTEL", "RESTAURANT", "CAFE", "SUPERMARKET", "PARKING_LOT", "WIFI"]).values_list("id", flat=True))
    capabilities = list(Capability.objects.filter(
        code__in=["RFID_READER", "REMOTE_START_STOP_CAPABLE", "CREDIT_CARD_PAYABLE", "RESERVABLE"]
    ).values_list("id", flat=True))
    generator = CatalogueGenerator(connection=connection, cpo_id=cpo.pk, seeds=seeds, facility_ids=facilities,
                                   capability_ids=capabilities)
    check_columns(generator)
    totals = {plan.table: 0 for plan in generator.plans}
    tables = list(totals)
    started = time.perf_counter()
    connection.ensure_connection()
    if backend == "postgresql":
        with connection.cursor() as cursor:
            raw = cursor.cursor
            # Plain indexes are built once at the end (constraint indexes stay); FK triggers and
            # locations_publicevses's are off during the load (ids are consistent by construction; the
            # public EVSEs are written once after the COPY).
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
                           "AND indexname NOT IN (SELECT conname FROM pg_constraint)", [tables])
            indexes = cursor.fetchall()
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
            cursor.execute("SET session_replication_role = replica")
            for block in generator.blocks(count):
                for plan in generator.plans:
                    rows = block.rows[plan.table]
                    if rows:
                        with raw.copy(f"COPY {plan.table} ({', '.join(plan.columns)}) FROM STDIN") as copy:
                            for row in rows:
                                copy.write_row(row)
                        totals[plan.table] += len(rows)
            cursor.execute("SET session_replication_role = origin")
            # The triggers that keep each location's public EVSEs (locations 0008) were off: all at once.
            cursor.execute("SELECT locations_public_evses_rebuild()")
            copied = time.perf_counter()
            print(f"  generate + COPY            {copied - started:8.1f} s")
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for _, definition in indexes:
                cursor.execute(definition)
            indexed = time.perf_counter()
            print(f"  CREATE INDEX ({len(indexes):2d} indexes)   {indexed - copied:8.1f} s")
            for sql in connection.ops.sequence_reset_sql(no_style(), [plan.model for plan in generator.plans]):
                cursor.execute(sql)
            cursor.execute("VACUUM ANALYZE")
            print(f"  VACUUM ANALYZE             {time.perf_counter() - indexed:8.1f} s")
    else:
        raw = connection.connection
        for block in generator.blocks(count):
            with transaction.atomic():
                for plan in generator.plans:
                    rows = block.rows[plan.table]
                    if rows:
                        marks = ", ".join("?" * len(plan.columns))
                        raw.executemany(f"INSERT INTO {plan.table} ({', '.join(plan.columns)}) VALUES ({marks})", rows)
                        totals[plan.table] += len(rows)
        inserted = time.perf_counter()
        print(f"  generate + executemany     {inserted - started:8.1f} s")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"  ANALYZE                    {time.perf_counter() - inserted:8.1f} s")
    print(f"  load total                 {time.perf_counter() - started:8.1f} s   "
          + ", ".join(f"{table.removeprefix('locations_')} {n:,}" for table, n in totals.items()))
    return totals


# --- Serving and load ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(env: dict, workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with open(log, "ab") as out:
        # The Procfile's config (config/gunicorn.conf.py): the application loaded and warmed before the fork.
        proc = subprocess.Popen([str(gunicorn), "config.wsgi", "-c", "config/gunicorn.conf.py", "--workers", str(workers),
                                 "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited ({proc.returncode}); see {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health/")
            conn.getresponse().read()
            conn.close()
            return proc, port
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"gunicorn did not answer within 60 s; see {log}")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # its own session: the master and its workers
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Client:
    """POST /graphql over HTTP/1.1, one request per connection (gunicorn's sync workers close each), as a load
    tool sends it: the request's bytes in one write, the response read by its Content-Length (or to the
    end), its status line and headers parsed. Python's http.client spent 0.37-0.40 ms of CPU per search here
    (its header objects and e-mail parser) where this spends 0.15: client time inside every latency
    measured, and not evhub's. `cpu` adds up this client's CPU seconds (its thread's), printed beside the
    floor's psycopg."""

    def __init__(self, port: int, key: str):
        self.port = port
        self.head = (f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                     f"Authorization: Basic {key}\r\n").encode()
        self.cpu = 0.0

    def post(self, body: bytes) -> tuple[float, int, bytes]:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            status, data = self._exchange(b"%sContent-Length: %d\r\n\r\n%s" % (self.head, len(body), body))
        finally:
            self.cpu += time.thread_time() - cpu
        return (time.perf_counter() - start) * 1000, status, data

    def _exchange(self, request: bytes) -> tuple[int, bytes]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(30)
            conn.connect(("127.0.0.1", self.port))
            conn.sendall(request)
            received = bytearray()
            while (end := received.find(b"\r\n\r\n")) < 0:
                received += _recv(conn)
            head = bytes(received[:end]).split(b"\r\n")
            version, code, *_ = head[0].split(b" ", 2)
            if not version.startswith(b"HTTP/1.") or not code.isdigit():
                raise BadResponse(f"not an HTTP/1 response: {head[0][:100]!r}")
            length = None
            for line in head[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    if not value.strip().isdigit():
                        raise BadResponse(f"bad Content-Length: {value[:40]!r}")
                    length = int(value)
            body = received[end + 4:]
            while length is None or len(body) < length:
                chunk = conn.recv(262144)
                if not chunk:
                    if length is None:
                        break
                    raise BadResponse(f"connection closed after {len(body)} of {length} bytes")
                body += chunk
            return int(code), bytes(body)


class BadResponse(OSError):
    """The server's answer is not a whole HTTP/1 response."""


def _recv(conn: socket.socket) -> bytes:
    chunk = conn.recv(262144)
    if not chunk:
        raise BadResponse("connection closed before the response's headers")
    return chunk


def results_of(status: int, data: bytes) -> int:
    payload = json.loads(data)
    if status != 200 or payload.get("errors"):
        raise SystemExit(f"bad response {status}: {data[:500]!r}")
    return len(payload["data"]["find_ev_filter_locations"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def sequential(port: int, key: str, bodies: list[bytes], warmup: int, count: int) -> dict:
    client = Client(port, key)
    for body in bodies[:warmup]:
        results_of(*client.post(body)[1:])
    latencies, results = [], []
    for i in range(count):
        ms, status, data = client.post(bodies[(warmup + i) % len(bodies)])
        latencies.append(ms)
        results.append(results_of(status, data))
    return {"n": count, "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99), "mean": statistics.fmean(latencies), "max": max(latencies),
            "results": statistics.fmean(results), "empty": sum(1 for r in results if r == 0)}


def concurrent(port: int, key: str, bodies: list[bytes], threads: int, duration: float, cap: int) -> dict:
    lock = threading.Lock()
    issued = [0]
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + duration

    def run(offset: int) -> None:
        client = Client(port, key)
        mine, i = [], offset
        while time.perf_counter() < deadline:
            with lock:
                if issued[0] >= cap:
                    break
                issued[0] += 1
            try:
                ms, status, _ = client.post(bodies[i % len(bodies)])
            except OSError:
                errors[0] += 1
                continue
            if status != 200:
                errors[0] += 1
            mine.append(ms)
            i += 7
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=run, args=(n * 997,)) for n in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    return {"n": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed, "errors": errors[0],
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99)}


# --- CPU per search: gunicorn's workers and their PostgreSQL backends ------------------------------------

class CpuMeter:
    """CPU seconds spent between `start()` and `per_op(n)` by gunicorn (master and workers) and by the
    PostgreSQL backends of the bench database (their /proc entries: the server is local; Django keeps its
    connections, CONN_MAX_AGE), per operation, in ms. Other databases' backends are not counted."""

    def __init__(self, gunicorn_pid: int | None, monitor, exclude: tuple[int, ...] = ()):
        self.gunicorn_pid, self.monitor, self.exclude = gunicorn_pid, monitor, set(exclude)
        self.web, self.pg = 0.0, {}

    def _backends(self) -> dict[int, float]:
        if self.monitor is None:
            return {}
        pids = [pid for (pid,) in self.monitor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
        return {pid: proc_cpu_seconds(pid, children=False) for pid in pids if pid not in self.exclude}

    def start(self) -> CpuMeter:
        self.web = proc_cpu_seconds(self.gunicorn_pid) if self.gunicorn_pid else 0.0
        self.pg = self._backends()
        return self

    def per_op(self, n: int) -> tuple[float, float]:
        web = (proc_cpu_seconds(self.gunicorn_pid) - self.web) if self.gunicorn_pid else 0.0
        pg = sum(cpu - self.pg.get(pid, 0.0) for pid, cpu in self._backends().items())
        return web * 1000 / max(n, 1), pg * 1000 / max(n, 1)


# --- The floor: one SQL statement through psycopg, nearest first over the GiST index ---------------------

def floor_sql(filtered: bool) -> str:
    """The search as one statement: the 20 nearest visible locations within 10 km by the GiST index of
    locations 0007 (KNN), haversine distance, their public EVSEs and connectors as JSON text."""
    from locations.selectors import EARTH_RADIUS_KM, GEO_POINT_SQL

    point = GEO_POINT_SQL.replace('"locations_location".', "l.")
    facility = ("AND EXISTS (SELECT 1 FROM locations_location_facilities f WHERE f.location_id = l.id "
                "AND f.facility_id = %(facility)s)") if filtered else ""
    return f"""
SELECT p.id, p.name, p.address, p.city, p.postal_code, c.country_code, p.publish, p.distance, p.address_lat,
       p.address_lng,
       (SELECT coalesce(json_agg(json_build_object('uid', e.uid, 'status', e.status, 'connectors',
                (SELECT coalesce(json_agg(json_build_object('standard', n.standard, 'power_type', n.power_type,
                                                            'max_electric_power', n.max_electric_power)
                                          ORDER BY n.id), '[]') FROM locations_connector n WHERE n.evse_id = e.id))
                         ORDER BY e.id), '[]')
          FROM locations_evse e WHERE e.location_id = p.id AND e.moderation = 'PUBLISHED' AND e.status <> 'REMOVED'
       )::text AS evses
FROM (SELECT l.id, l.name, l.address, l.city, l.postal_code, l.publish, l.address_lat, l.address_lng, l.cpo_id,
             {2 * EARTH_RADIUS_KM!r} * asin(least(1.0, sqrt(
                 power(sin((radians(l.address_lat) - %(phi)s) / 2), 2)
                 + cos(%(phi)s) * cos(radians(l.address_lat)) * power(sin((radians(l.address_lng) - %(lam)s) / 2), 2))))
             AS distance
      FROM locations_location l
      WHERE l.moderation = 'PUBLISHED' AND l.publish {facility}
        AND {point} <@ cube_enlarge(cube(ARRAY[%(x)s, %(y)s, %(z)s]::float8[]), %(chord)s, 3)
      ORDER BY {point} <-> cube(ARRAY[%(x)s, %(y)s, %(z)s]::float8[]) LIMIT 20) p
JOIN locations_cpo c ON c.id = p.cpo_id
WHERE p.distance <= 10
ORDER BY p.distance, p.id"""


def floor_params(point, facility_id: int | None) -> dict:
    import math

    from locations.selectors import chord_of_km, unit_point

    x, y, z = unit_point(point.lat, point.lng)
    return {"phi": math.radians(point.lat), "lam": math.radians(point.lng), "x": x, "y": y, "z": z,
            "chord": chord_of_km(10.0), "facility": facility_id}


def paired(port: int, key: str, bodies: list[bytes], url: str, points: list, facility_id: int | None,
           warmup: int, count: int, meter: "CpuMeter") -> tuple[dict, dict]:
    """evhub's search over HTTP and the floor's statement, one after the other for each point, so that both
    meet the same load (a busy machine moves both alike; measured apart, minutes apart, the ratio moved
    with the load: 2.6x quiet, 3.5x with other benches running). Returns (evhub, floor): latencies as
    `sequential` gives them, and the CPU per search of each side: gunicorn and its PostgreSQL backends
    (`meter`, the floor's backend excluded), the floor's psycopg (this process, its calls only) and its
    backend. The floor's statement is prepared by psycopg after its fifth execution, as in production
    a driver would."""
    import psycopg

    sql = floor_sql(facility_id is not None)
    client = Client(port, key)
    with psycopg.connect(url) as conn:
        backend = conn.info.backend_pid
        meter.exclude.add(backend)
        for i in range(warmup):
            results_of(*client.post(bodies[i % len(bodies)])[1:])
            conn.execute(sql, floor_params(points[i % len(points)], facility_id)).fetchall()
        ours, theirs, results, floor_client = [], [], [], 0.0
        meter.start()
        pg = proc_cpu_seconds(backend, children=False)
        client.cpu = 0.0
        for i in range(count):
            index = (warmup + i) % len(bodies)
            # Whichever goes second finds the point's pages in PostgreSQL's buffers and the CPU's caches
            # (the floor measured 0.89 ms after evhub, 1.03 ms alone): each goes first every other point.
            for side in ((0, 1) if i % 2 else (1, 0)):
                if side == 0:
                    ms, status, data = client.post(bodies[index])
                    ours.append(ms)
                    results.append(results_of(status, data))
                else:
                    params = floor_params(points[index], facility_id)
                    cpu, start = time.process_time(), time.perf_counter()
                    conn.execute(sql, params).fetchall()
                    theirs.append((time.perf_counter() - start) * 1000)
                    floor_client += time.process_time() - cpu
        web_cpu, pg_cpu = meter.per_op(count)
        pg = (proc_cpu_seconds(backend, children=False) - pg) * 1000 / count
    evhub = {"n": count, "p50": percentile(ours, 50), "p95": percentile(ours, 95), "p99": percentile(ours, 99),
             "mean": statistics.fmean(ours), "max": max(ours), "results": statistics.fmean(results),
             "empty": sum(1 for r in results if r == 0), "web_cpu": web_cpu, "pg_cpu": pg_cpu,
             "client_cpu_ms": client.cpu * 1000 / count}
    floor = {"n": count, "p50": percentile(theirs, 50), "p95": percentile(theirs, 95),
             "mean": statistics.fmean(theirs), "client_cpu_ms": floor_client * 1000 / count, "pg_cpu_ms": pg}
    return evhub, floor


def floor_concurrent(url: str, points: list, threads: int, duration: float) -> dict:
    """The floor's throughput: `threads` connections (psycopg waits for the server without the GIL)."""
    import psycopg

    sql = floor_sql(False)
    done = [0] * threads
    deadline = time.perf_counter() + duration

    def run(n: int) -> None:
        with psycopg.connect(url) as conn:
            i = n * 997
            while time.perf_counter() < deadline:
                conn.execute(sql, floor_params(points[i % len(points)], None)).fetchall()
                done[n] += 1
                i += 7

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"n": sum(done), "rps": sum(done) / (time.perf_counter() - start)}


def check_answers(url: str, port: int, key: str, points: list, facility_id: int, count: int) -> tuple[int, list]:
    """Compares evhub's answers (HTTP) with the floor's for `count` points, plain and filtered:
    ids in order, distances, each EVSE's uid and status, its connectors. Returns (checks, mismatches)."""
    import psycopg

    client = Client(port, key)
    checks, bad = 0, []
    with psycopg.connect(url) as conn:
        for point in points[:count]:
            for query, fid in ((QUERY, None), (QUERY_FILTERED, facility_id)):
                body = json.dumps({"query": query, "variables": {"lat": point.lat, "lng": point.lng}}).encode()
                _, status, data = client.post(body)
                results_of(status, data)
                ours = json.loads(data)["data"]["find_ev_filter_locations"]
                rows = conn.execute(floor_sql(fid is not None), floor_params(point, fid)).fetchall()
                theirs = [{"id": r[0], "distance": r[7], "evses": json.loads(r[10])} for r in rows]
                # The API gives the distance in km to 3 decimals (metres).
                same = [o["id"] for o in ours] == [t["id"] for t in theirs] and all(
                    abs(o["distance"] - t["distance"]) <= 5e-4 + 1e-9 and o["evses"] == t["evses"]
                    for o, t in zip(ours, theirs))
                checks += 1
                if not same:
                    bad.append((point.lat, point.lng, fid))
    return checks, bad


# --- Where the time goes (in-process) --------------------------------------------------------------------

def profile(key: str, bodies: list[bytes], count: int, backend: str) -> None:
    """Per request: wall time in Django's test client vs time in SQL; then EXPLAIN ANALYZE of each query."""
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    client = DjangoClient(HTTP_AUTHORIZATION=f"Basic {key}")
    for body in bodies[:10]:
        client.post("/graphql", body, content_type="application/json")
    walls, sqls, counts, cpus = [], [], [], []
    last = None
    for body in bodies[10:10 + count]:
        with CaptureQueriesContext(connection) as ctx:
            start, cpu = time.perf_counter(), time.process_time()
            client.post("/graphql", body, content_type="application/json")
            walls.append((time.perf_counter() - start) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        sqls.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
        counts.append(len(ctx.captured_queries))
        last = ctx.captured_queries
    print(f"\nIn-process profile ({count} requests, Django test client, no HTTP/gunicorn):")
    print(f"  wall per request      mean {statistics.fmean(walls):6.1f} ms  p50 {percentile(walls, 50):6.1f} ms")
    print(f"  SQL per request       mean {statistics.fmean(sqls):6.1f} ms  p50 {percentile(sqls, 50):6.1f} ms"
          f"  ({statistics.fmean(counts):.1f} queries)")
    print(f"  Python (wall - SQL)   mean {statistics.fmean(walls) - statistics.fmean(sqls):6.1f} ms")
    # CPU of this process (the web side, with the query log's small overhead): steadier than wall time
    # on a busy machine, the measure to compare changes by.
    print(f"  CPU per request       mean {statistics.fmean(cpus):6.2f} ms  p50 {percentile(cpus, 50):6.2f} ms")
    if last:
        print("  queries of the last request (ms):")
        for q in last:
            print(f"    {float(q['time']) * 1000:6.1f}  {(q['sql'] or '(a prepared statement: its text is not logged)')[:160]}")
        if backend == "postgresql":
            with connection.cursor() as cursor:
                for q in last:
                    if q["sql"] and q["sql"].lstrip().upper().startswith("SELECT"):
                        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + q["sql"])
                        print("\n  EXPLAIN ANALYZE " + q["sql"][:100] + " ...")
                        for (line,) in cursor.fetchall():
                            print("    " + line)
        else:
            with connection.cursor() as cursor:
                for q in last:
                    if not q["sql"]:
                        continue
                    cursor.execute("EXPLAIN QUERY PLAN " + q["sql"])
                    print("\n  EXPLAIN QUERY PLAN " + q["sql"][:100] + " ...")
                    for row in cursor.fetchall():
                        print("    ", row[-1])


# --- Main ----------------------------------------------------------------------------------------------------

def main() -> None:
    args = parse_args()
    if args.scale:
        return scale(args)
    os.environ.setdefault("EVHUB_VAR_DIR", str(ROOT / "var" / "bench"))
    Path(os.environ["EVHUB_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    backend, bench_url, where, drop = bench_database(args.reuse, args.bench_db)
    count = args.count or (1_000_000 if backend == "postgresql" else 100_000)
    os.environ["DATABASE_URL"] = bench_url
    os.environ["DJANGO_DEBUG"] = "0"
    proc = monitor = None
    try:
        import django

        migrate(dict(os.environ))  # a reused database too: to the code's schema (a no-op when it is)
        django.setup()
        from django.db import DatabaseError, connection

        from emsp.services import portal_client_create
        from generate import seed_stations
        from locations.models import Facility, Location

        seeds = seed_stations(use_shared=not args.no_shared)
        print(f"find_ev_filter_locations bench on {backend} ({where}), {os.cpu_count()} cores, "
              f"{platform.machine()}, Python {platform.python_version()}")
        print(f"{len(seeds):,} seed stations (shipped sample{'' if args.no_shared else ' + ../shared if present'})")
        if args.reuse:
            try:
                count = Location.objects.count()
            except DatabaseError:
                count = 0
            if not count:
                raise SystemExit(f"--reuse: no bench catalogue in {where}; load one first (without --reuse, "
                                 "with --keep)")
            print(f"reusing {count:,} locations")
        else:
            print(f"loading {count:,} locations:")
            load(count, seeds, backend)
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()" if backend == "postgresql" else "SELECT 'SQLite ' || sqlite_version()")
            version = cursor.fetchone()[0].split(" on ")[0]
        _, key = portal_client_create(name=f"bench-{time.time_ns()}")
        facility_id = Facility.objects.get(code=FILTER_FACILITY).pk
        connection.close()
        postgresql = backend == "postgresql"
        psycopg_url = urlunsplit(urlsplit(bench_url)._replace(scheme="postgresql"))
        if postgresql:
            import psycopg

            monitor = psycopg.connect(psycopg_url, autocommit=True)

        rng = random.Random(11)
        points = [rng.choice(seeds) for _ in range(3000)]

        def bodies_of(query):
            return [json.dumps({"query": query, "variables": {"lat": p.lat, "lng": p.lng}}).encode() for p in points]

        bodies, filtered_bodies = bodies_of(QUERY), bodies_of(QUERY_FILTERED)
        log = Path(os.environ["EVHUB_VAR_DIR"]) / "gunicorn-bench.log"
        proc, port = start_gunicorn(dict(os.environ), args.workers, log)
        print(f"gunicorn: {args.workers} sync workers on 127.0.0.1:{port} (pid {proc.pid})")
        meter = CpuMeter(proc.pid, monitor)
        # Warm up both queries on both workers first, so that no measure pays another's first requests.
        warm = Client(port, key)
        for body in filtered_bodies[:args.warmup]:
            results_of(*warm.post(body)[1:])
        floors = {}
        if postgresql:  # evhub and the floor point by point (`paired`)
            seq, floors["plain"] = paired(port, key, bodies, psycopg_url, points, None, args.warmup, args.sequential,
                                          meter)
            seqf, floors["filtered"] = paired(port, key, filtered_bodies, psycopg_url, points, facility_id,
                                              args.warmup, args.sequential, meter)
        else:
            meter.start()
            seq = sequential(port, key, bodies, args.warmup, args.sequential)
            seq["web_cpu"], seq["pg_cpu"] = meter.per_op(args.warmup + args.sequential)
            meter.start()
            seqf = sequential(port, key, filtered_bodies, args.warmup, args.sequential)
            seqf["web_cpu"], seqf["pg_cpu"] = meter.per_op(args.warmup + args.sequential)
        meter.start()
        con = concurrent(port, key, bodies, args.concurrency, args.duration, args.max_requests)
        con["web_cpu"], con["pg_cpu"] = meter.per_op(con["n"])
        checks, mismatches = (check_answers(psycopg_url, port, key, points, facility_id, args.checks)
                              if postgresql and args.checks else (0, []))
        stop(proc)
        proc = None
        if postgresql:
            floors["rps"] = floor_concurrent(psycopg_url, points, args.concurrency, min(args.duration, 10.0))

        print("\n=== find_ev_filter_locations, 10 km, limit 20, with EVSEs + connectors ===")
        print(f"machine: {os.cpu_count()} cores {platform.machine()}, {platform.system()} {platform.release()}; "
              f"{version}; {count:,} locations; gunicorn {args.workers} workers; load {os.getloadavg()[0]:.2f}")
        print(f"{'measure':<44} {'evhub':>14} {'floor':>9} {'ratio':>6}  CPU ms/search (web + PostgreSQL)")

        def line(label, value, unit, floor=None, cpu=None, higher=False):
            ratio = "" if not floor else f"{(floor / value if higher else value / floor):5.2f}x"
            floor_text = "" if floor is None else f"{floor:9.2f}"
            cpu_text = "" if cpu is None else f"{cpu[0]:.2f} + {cpu[1]:.2f}"
            print(f"{label:<44} {value:>9.2f} {unit:<4} {floor_text:>9} {ratio:>6}  {cpu_text}")

        plain, sparse = floors.get("plain", {}), floors.get("filtered", {})
        line(f"p50, {seq['n']} sequential", seq["p50"], "ms", plain.get("p50"), (seq["web_cpu"], seq["pg_cpu"]))
        line("p95", seq["p95"], "ms", plain.get("p95"))
        line(f"p50, facility {FILTER_FACILITY} (7.5%)", seqf["p50"], "ms", sparse.get("p50"),
             (seqf["web_cpu"], seqf["pg_cpu"]))
        line(f"p95, facility {FILTER_FACILITY}", seqf["p95"], "ms", sparse.get("p95"))
        if plain:
            print(f"{'  floor CPU ms/search (psycopg + PostgreSQL)':<44} plain {plain['client_cpu_ms']:.2f} + "
                  f"{plain['pg_cpu_ms']:.2f}, {FILTER_FACILITY} {sparse['client_cpu_ms']:.2f} + {sparse['pg_cpu_ms']:.2f}")
            print(f"{'  evhub client CPU ms/search (HTTP)':<44} plain {seq['client_cpu_ms']:.2f}, "
                  f"{FILTER_FACILITY} {seqf['client_cpu_ms']:.2f}")
        line(f"throughput, {args.concurrency} clients, {con['seconds']:.0f} s", con["rps"], "/s",
             floors.get("rps", {}).get("rps"), (con["web_cpu"], con["pg_cpu"]), higher=True)
        print(f"{'  requests / errors; p50 / p95 under load':<44} {con['n']} / {con['errors']}; "
              f"{con['p50']:.0f} / {con['p95']:.0f} ms")
        print(f"{'results per response (mean), empty':<44} {seq['results']:.1f}, {seq['empty']}; "
              f"{FILTER_FACILITY}: {seqf['results']:.1f}, {seqf['empty']}")
        if checks:
            print(f"{'same answers as the floor':<44} {checks - len(mismatches)} of {checks}"
                  + (f"; differ at {mismatches[:5]}" if mismatches else ""))

        report = Report.from_args("bench_graphql", args, backend=backend, dataset=f"{count:,} locations")
        web_db = (lambda m: m["web_cpu"] + m["pg_cpu"])
        note = "CPU: gunicorn workers + their PostgreSQL backends; floor: psycopg + its backend"
        for name, measured, floor_of, target in (
                ("p50", seq, plain, TARGETS_OF.get(backend, {}).get("p50")),
                ("p95", seq, plain, TARGETS_OF.get(backend, {}).get("p95")),
                (f"p50 {FILTER_FACILITY}", seqf, sparse, None), (f"p95 {FILTER_FACILITY}", seqf, sparse, None)):
            metric = name.split()[0]
            report.add(f"find_ev 10 km {name}", measured[metric], "ms", target=target, floor=floor_of.get(metric),
                       cpu_ms=web_db(measured), note=note if name == "p50" else "")
        report.add("find_ev throughput", con["rps"], "req/s", target=TARGETS_OF.get(backend, {}).get("rps"),
                   floor=floors.get("rps", {}).get("rps"), higher=True, cpu_ms=web_db(con))
        if checks:
            report.add("answers same as floor", checks - len(mismatches), "checks", target=(">=", checks))
        report.write()
        if args.profile:
            profile(key, bodies, args.profile, backend)
    finally:
        stop(proc)
        if monitor is not None:
            monitor.close()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not be set up yet
            pass
        if args.keep or args.reuse:  # --reuse never drops what it did not load
            print(f"kept the bench database {where} (--reuse serves it again)")
        else:
            drop()


def scale(args: argparse.Namespace) -> None:
    """One fresh run per size (this script, --json to a file), then the figures side by side."""
    import tempfile

    from report import read_figures

    counts = [int(text.replace("_", "")) for text in args.scale.split(",") if text.strip()]
    passed = ["--bench-db", args.bench_db, "--workers", str(args.workers), "--warmup", str(args.warmup),
              "--sequential", str(args.sequential), "--concurrency", str(args.concurrency), "--duration",
              str(args.duration), "--max-requests", str(args.max_requests), "--profile", "0",
              "--checks", str(args.checks), *(["--no-shared"] if args.no_shared else [])]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            out = Path(tmp) / f"{count}.json"
            print(f"\n##### {count:,} locations (disk free: {_free_gb():.0f} GB, load {os.getloadavg()[0]:.2f})",
                  flush=True)
            subprocess.run([sys.executable, __file__, str(count), *passed, "--json", str(out)], check=True)
            rows.append((count, {f.name: f for f in read_figures([out])}))
    print("\n=== how the figures grow (evhub / floor, ms or req/s) ===")
    names = list(rows[0][1])
    print(f"{'locations':>12}  " + "  ".join(f"{name.removeprefix('find_ev '):>22}" for name in names))
    for count, figures in rows:
        cells = []
        for name in names:
            f = figures.get(name)
            cells.append("-" if f is None else f"{f.value:,.1f}" + ("" if f.floor is None else f" / {f.floor:,.1f}"))
        print(f"{count:>12,}  " + "  ".join(f"{cell:>22}" for cell in cells))
    if args.json:
        args.json.write_text(json.dumps([[count, {k: v.value for k, v in figures.items()}] for count, figures in rows]))


def _free_gb() -> float:
    import shutil

    return shutil.disk_usage(ROOT).free / 1e9


if __name__ == "__main__":
    main()

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

BENCH_DB = "evhub_bench"
QUERY = (
    "query Near($lat: Float!, $lng: Float!) { find_ev_filter_locations(lat: $lat, lng: $lng, distance: 10, "
    "limit: 20) { id name address city postal_code country_code publish distance address_lat address_lng "
    "evses { uid status connectors { standard power_type max_electric_power } } } }"
)
TARGETS = {  # backend -> [(label, metric, comparison, bound)]
    "postgresql": [("p50 latency", "p50", "<=", 15.0), ("p95 latency", "p95", "<=", 40.0),
                   ("throughput", "rps", ">=", 150.0)],
    "sqlite": [("p50 latency", "p50", "<=", 30.0)],
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, help="locations (default 1,000,000 PostgreSQL, 100,000 SQLite)")
    parser.add_argument("--bench-db", default=BENCH_DB, help=f"PostgreSQL bench database (default {BENCH_DB})")
    parser.add_argument("--keep", action="store_true", help="keep the bench database at the end")
    parser.add_argument("--reuse", action="store_true",
                        help="serve the bench database left by --keep; no load, and it is kept at the end")
    parser.add_argument("--no-shared", action="store_true", help="seed only from the shipped sample")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--sequential", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the throughput run")
    parser.add_argument("--max-requests", type=int, default=20_000, help="cap of the throughput run")
    parser.add_argument("--profile", type=int, default=100,
                        help="in-process requests to split SQL from Python time, and EXPLAIN ANALYZE (0: skip)")
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
            # Plain indexes are built once at the end (constraint indexes stay); FK triggers are off
            # during the load (ids are consistent by construction).
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
        proc = subprocess.Popen([str(gunicorn), "config.wsgi", "--workers", str(workers), "--bind",
                                 f"127.0.0.1:{port}", "--log-level", "warning"],
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
    """One keep-alive connection (gunicorn's sync workers close it; http.client then reconnects)."""

    def __init__(self, port: int, key: str):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Content-Type": "application/json", "Authorization": f"Basic {key}"}

    def post(self, body: bytes) -> tuple[float, int, bytes]:
        start = time.perf_counter()
        try:
            self.conn.request("POST", "/graphql", body, self.headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise
        return (time.perf_counter() - start) * 1000, response.status, data


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
            except (http.client.HTTPException, OSError):
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
            print(f"    {float(q['time']) * 1000:6.1f}  {q['sql'][:160]}")
        if backend == "postgresql":
            with connection.cursor() as cursor:
                for q in last:
                    if q["sql"].lstrip().upper().startswith("SELECT"):
                        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + q["sql"])
                        print("\n  EXPLAIN ANALYZE " + q["sql"][:100] + " ...")
                        for (line,) in cursor.fetchall():
                            print("    " + line)
        else:
            with connection.cursor() as cursor:
                for q in last:
                    cursor.execute("EXPLAIN QUERY PLAN " + q["sql"])
                    print("\n  EXPLAIN QUERY PLAN " + q["sql"][:100] + " ...")
                    for row in cursor.fetchall():
                        print("    ", row[-1])


# --- Main ----------------------------------------------------------------------------------------------------

def main() -> None:
    args = parse_args()
    os.environ.setdefault("EVHUB_VAR_DIR", str(ROOT / "var" / "bench"))
    Path(os.environ["EVHUB_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    backend, bench_url, where, drop = bench_database(args.reuse, args.bench_db)
    count = args.count or (1_000_000 if backend == "postgresql" else 100_000)
    os.environ["DATABASE_URL"] = bench_url
    os.environ["DJANGO_DEBUG"] = "0"
    proc = None
    try:
        import django

        if not args.reuse:
            migrate(dict(os.environ))
        django.setup()
        from django.db import connection

        from emsp.services import portal_client_create
        from generate import seed_stations
        from locations.models import Location

        seeds = seed_stations(use_shared=not args.no_shared)
        print(f"find_ev_filter_locations bench on {backend} ({where}), {os.cpu_count()} cores, "
              f"{platform.machine()}, Python {platform.python_version()}")
        print(f"{len(seeds):,} seed stations (shipped sample{'' if args.no_shared else ' + ../shared if present'})")
        if args.reuse:
            count = Location.objects.count()
            print(f"reusing {count:,} locations")
        else:
            print(f"loading {count:,} locations:")
            load(count, seeds, backend)
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()" if backend == "postgresql" else "SELECT 'SQLite ' || sqlite_version()")
            version = cursor.fetchone()[0].split(" on ")[0]
        _, key = portal_client_create(name=f"bench-{time.time_ns()}")
        connection.close()

        rng = random.Random(11)
        points = [rng.choice(seeds) for _ in range(3000)]
        bodies = [json.dumps({"query": QUERY, "variables": {"lat": s.lat, "lng": s.lng}}).encode() for s in points]
        log = Path(os.environ["EVHUB_VAR_DIR"]) / "gunicorn-bench.log"
        proc, port = start_gunicorn(dict(os.environ), args.workers, log)
        print(f"gunicorn: {args.workers} sync workers on 127.0.0.1:{port} (pid {proc.pid})")
        seq = sequential(port, key, bodies, args.warmup, args.sequential)
        con = concurrent(port, key, bodies, args.concurrency, args.duration, args.max_requests)
        stop(proc)
        proc = None

        print("\n=== find_ev_filter_locations, 10 km, limit 20, with EVSEs + connectors ===")
        print(f"machine: {os.cpu_count()} cores {platform.machine()}, {platform.system()} {platform.release()}; "
              f"{version}; {count:,} locations; gunicorn {args.workers} workers")
        print(f"{'measure':<40} {'value':>12}")
        rows = [
            (f"sequential p50 ({seq['n']} after {args.warmup} warm-up)", f"{seq['p50']:.1f} ms"),
            ("sequential p95", f"{seq['p95']:.1f} ms"), ("sequential p99", f"{seq['p99']:.1f} ms"),
            ("sequential mean / max", f"{seq['mean']:.1f} / {seq['max']:.0f} ms"),
            ("results per response (mean)", f"{seq['results']:.1f}"), ("empty responses", f"{seq['empty']}"),
            (f"throughput, {args.concurrency} clients, {con['seconds']:.0f} s", f"{con['rps']:.1f} req/s"),
            ("  requests / errors", f"{con['n']} / {con['errors']}"),
            ("  p50 / p95 under load", f"{con['p50']:.0f} / {con['p95']:.0f} ms"),
        ]
        for label, value in rows:
            print(f"{label:<40} {value:>12}")
        metrics = {"p50": seq["p50"], "p95": seq["p95"], "rps": con["rps"]}
        print("\ntargets:")
        for label, metric, op, bound in TARGETS[backend]:
            value = metrics[metric]
            ok = value <= bound if op == "<=" else value >= bound
            unit = "req/s" if metric == "rps" else "ms"
            print(f"  {label:<14} {value:8.1f} {unit:<6} {op} {bound:g} {unit:<6} {'PASS' if ok else 'MISS'}")
        if args.profile:
            profile(key, bodies, args.profile, backend)
    finally:
        stop(proc)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not be set up yet
            pass
        if args.keep or args.reuse:  # --reuse never drops what it did not load
            print(f"kept the bench database {where} (--reuse serves it again)")
        else:
            drop()


if __name__ == "__main__":
    main()

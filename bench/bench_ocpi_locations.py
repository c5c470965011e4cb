"""OCPI Locations over HTTP: the sender's list (GET of a page of 100) and the receiver's PUT of a location.

Builds a catalogue of N published locations (default 100,000; about 2 EVSEs x 2 connectors each) with the
COPY loader of bench/bench_graphql.py, serves it with gunicorn (2 sync workers) and measures:

- GET /ocpi/2.2.1/cpo/locations?offset=..&limit=100 by a connected eMSP: sequential latency, p50/p95, at
  random offsets over the whole list and on the first page; target p50 <= 60 ms;
- pages at any depth: at offsets 0, N/2 and 0.99 N (500,000 and 990,000 of 1,000,000), p50/p95 and the ratio
  to the first page, reached (a) by the Link's keyset cursor, (b) by a client-built offset that continues
  a page we served (cached anchor) and (c) by a cold client-built offset (OFFSET and count, linear);
- PUT /ocpi/2.2.1/emsp/locations/DE/PSH/{id} of a location with 2 EVSEs (2 connectors each) by a
  connected CPO, from concurrent clients: throughput of creates (new ids) and of replacements (the same
  ids, a newer last_updated and another status); target >= 300 PUTs/s;

then profiles the PUT in-process (cProfile, Django test client) to show where its time goes.

    .venv/bin/python bench/bench_ocpi_locations.py [COUNT] [--keep] [--reuse] [--concurrency 4]
                                                   [--duration 15] [--bench-db evhub_bench_ocpi]

The bench database is dropped at the end unless `--keep`; `--reuse` serves the one a `--keep` left (no load)
and keeps it again: a run never drops what it did not load (the same meaning in every bench).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import http.client
import io
import json
import os
import platform
import pstats
import random
import statistics
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench_graphql import bench_database, load, migrate, percentile, start_gunicorn, stop  # noqa: E402

BENCH_DB = "evhub_bench_ocpi"
EMSP_TOKEN = "bench-emsp-token"
CPO_TOKEN = "bench-cpo-token"
PUT_BASE = "/ocpi/2.2.1/emsp/locations/DE/PSH"
LIST = "/ocpi/2.2.1/cpo/locations"
TARGETS = [("GET page p50", "get_p50", "<=", 60.0), ("PUT throughput", "put_rps", ">=", 300.0)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=100_000)
    parser.add_argument("--bench-db", default=BENCH_DB, help=f"PostgreSQL bench database (default {BENCH_DB})")
    parser.add_argument("--keep", action="store_true", help="keep the bench database at the end")
    parser.add_argument("--reuse", action="store_true",
                        help="serve the bench database left by --keep, migrated; no load, and it is kept at the end")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gets", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--profile", type=int, default=200, help="PUTs profiled in-process (0: skip)")
    parser.add_argument("--deep-gets", type=int, default=30, help="GETs per depth and way of paging")
    parser.add_argument("--only-pages", action="store_true", help="measure the pages at depth only")
    return parser.parse_args()


def auth(token: str) -> str:
    return "Token " + base64.b64encode(token.encode()).decode()


def callers() -> None:
    """A connected eMSP (reads) and a connected CPO DE/PSH (pushes), as rows."""
    from locations import services
    from locations.models import Cpo
    from locations.tokens import token_digest
    from ocpi.models import Peer, PeerParty

    if not Peer.objects.filter(name="bench eMSP").exists():
        peer = Peer.objects.create(name="bench eMSP", state=Peer.State.CONNECTED, token_in_digest=token_digest(EMSP_TOKEN))
        PeerParty.objects.create(peer=peer, role="EMSP", country_code="NL", party_id="EMS")
    if not Cpo.objects.filter(country_code="DE", party_id="PSH").exists():
        cpo, _ = services.cpo_create(country_code="DE", party_id="PSH", owner_name="Bench pushing CPO")
        peer = Peer.objects.create(name="bench CPO", state=Peer.State.CONNECTED, token_in_digest=token_digest(CPO_TOKEN))
        PeerParty.objects.create(peer=peer, role="CPO", country_code="DE", party_id="PSH", cpo=cpo)


def location_body(ocpi_id: str, moment: datetime, status: str = "AVAILABLE") -> bytes:
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def evse(n: int) -> dict:
        return {"uid": f"{ocpi_id}-{n}", "evse_id": f"DE*PSH*E{ocpi_id}*{n}", "status": status,
                "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"], "last_updated": stamp,
                "connectors": [
                    {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                     "max_voltage": 400, "max_amperage": 32, "max_electric_power": 22000, "last_updated": stamp},
                    {"id": "2", "standard": "IEC_62196_T2_COMBO", "format": "CABLE", "power_type": "DC",
                     "max_voltage": 920, "max_amperage": 200, "max_electric_power": 150000, "last_updated": stamp}]}

    return json.dumps({
        "country_code": "DE", "party_id": "PSH", "id": ocpi_id, "publish": True, "name": f"Push {ocpi_id}",
        "address": f"Pushstraße {ocpi_id}", "city": "Mannheim", "postal_code": "68159", "country": "DEU",
        "coordinates": {"latitude": "49.494409", "longitude": "8.468098"}, "parking_type": "ON_STREET",
        "facilities": ["CAFE"], "time_zone": "Europe/Berlin", "evses": [evse(1), evse(2)], "last_updated": stamp,
    }).encode()


class Client:
    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, token: str, body: bytes | None = None) -> tuple[float, int, bytes, dict]:
        headers = {"Authorization": auth(token), "Content-Type": "application/json"}
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body, headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise
        return (time.perf_counter() - start) * 1000, response.status, data, dict(response.getheaders())


def get_pages(port: int, offsets: list[int], warmup: int = 20) -> dict:
    client = Client(port)
    latencies, sizes, counts = [], [], []
    for i, offset in enumerate(offsets):
        ms, status, data, headers = client.request("GET", f"{LIST}?offset={offset}&limit=100", EMSP_TOKEN)
        if status != 200:
            raise SystemExit(f"GET {offset}: {status} {data[:300]!r}")
        if i >= warmup:
            latencies.append(ms)
            sizes.append(len(data))
            counts.append(len(json.loads(data)["data"]))
    return {"n": len(latencies), "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "mean": statistics.fmean(latencies), "kb": statistics.fmean(sizes) / 1024,
            "per_page": statistics.fmean(counts)}


def _link_query(headers: dict) -> str | None:
    link = headers.get("Link") or headers.get("link")
    if not link:
        return None
    return link[link.index("?"):link.index(">")]


def timed(client: Client, path: str, gets: int, warmup: int = 3) -> dict:
    latencies = []
    for i in range(gets + warmup):
        ms, status, data, _ = client.request("GET", path, EMSP_TOKEN)
        if status != 200 or len(json.loads(data)["data"]) == 0:
            raise SystemExit(f"GET {path[:120]}: {status} {data[:300]!r}")
        if i >= warmup:
            latencies.append(ms)
    return {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)}


def deep_pages(port: int, count: int, gets: int) -> list[tuple[str, dict]]:
    """Pages of 100 at offsets 0, N/2, 0.99 N: by cursor, by an anchored offset, by a cold offset."""
    from django.core.cache import cache

    client = Client(port)
    cache.clear()  # no anchors: the cold offsets are OFFSETs
    results = [("first page (offset 0, counts)", timed(client, f"{LIST}?limit=100", gets))]
    for depth in (count // 2, count * 99 // 100):
        cold = timed(client, f"{LIST}?offset={depth}&limit=100", gets)
        # The cursor of that depth, as a peer gets it: the Link of the page before (one OFFSET, once).
        _, status, data, headers = client.request("GET", f"{LIST}?offset={depth - 100}&limit=100", EMSP_TOKEN)
        query = _link_query(headers)
        assert status == 200 and query and f"offset={depth}&" in query, (status, headers)
        cursor = timed(client, f"{LIST}{query}", gets)
        anchored = timed(client, f"{LIST}?offset={depth}&limit=100", gets)
        results += [(f"offset {depth:,} by cursor", cursor), (f"offset {depth:,} by offset, anchored", anchored),
                    (f"offset {depth:,} by offset, cold", cold)]
    return results


def put_load(port: int, threads: int, duration: float, ids: callable, expect: int) -> dict:
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    counter = [0]
    deadline = time.perf_counter() + duration

    def run() -> None:
        client = Client(port)
        mine = []
        while time.perf_counter() < deadline:
            with lock:
                counter[0] += 1
                n = counter[0]
            ocpi_id, body = ids(n)
            try:
                ms, status, data, _ = client.request("PUT", f"{PUT_BASE}/{ocpi_id}", CPO_TOKEN, body)
            except (http.client.HTTPException, OSError) as exc:
                errors.append(str(exc))
                continue
            if status != expect:
                errors.append(f"{status} {data[:200]!r}")
            mine.append(ms)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    return {"n": len(latencies), "rps": len(latencies) / elapsed, "errors": len(errors), "first_error":
            errors[0] if errors else "", "p50": percentile(latencies, 50), "p95": percentile(latencies, 95)}


def profile_get(count: int, pages: int) -> None:
    """Wall vs SQL time of a page of 100, in-process (what gunicorn adds is HTTP and JSON over the socket)."""
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    client = DjangoClient(HTTP_AUTHORIZATION=auth(EMSP_TOKEN))
    rng = random.Random(3)
    walls, sqls = [], []
    for i in range(count + 5):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            client.get(f"{LIST}?offset={rng.randrange(pages) * 100}&limit=100")
            wall = (time.perf_counter() - start) * 1000
        if i >= 5:
            walls.append(wall)
            sqls.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
    print(f"\nIn-process GET page of 100 ({count}): wall p50 {percentile(walls, 50):.1f} ms, SQL p50 "
          f"{percentile(sqls, 50):.1f} ms ({len(ctx.captured_queries)} queries)")
    for q in ctx.captured_queries:
        print(f"    {float(q['time']) * 1000:6.2f}  {str(q['sql'])[:150]}")


def put_cpu(count: int) -> dict:
    """In-process PUTs of new locations (Django test client, no HTTP, no profiler, no query capture):
    CPU seconds of this process per PUT (robust on a busy machine) and wall per PUT; then, apart, the
    SQL time and query count of a few more (capturing queries costs CPU of its own)."""
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    client = DjangoClient(HTTP_AUTHORIZATION=auth(CPO_TOKEN))
    base = datetime.now(timezone.utc)
    run = time.time_ns()
    bodies = [(f"CPU{run}-{i}", location_body(f"CPU{run}-{i}", base)) for i in range(count + 40)]
    for ocpi_id, body in bodies[:10]:  # warm-up: lookups cached, statements prepared
        client.put(f"{PUT_BASE}/{ocpi_id}", body, content_type="application/json")
    timed_bodies, captured = bodies[10:10 + count], bodies[10 + count:]
    cpu, wall = time.process_time(), time.perf_counter()
    for ocpi_id, body in timed_bodies:
        response = client.put(f"{PUT_BASE}/{ocpi_id}", body, content_type="application/json")
        assert response.status_code == 201, response.content
    cpu, wall = (time.process_time() - cpu) / count * 1000, (time.perf_counter() - wall) / count * 1000
    sqls, queries = [], []
    for ocpi_id, body in captured:
        with CaptureQueriesContext(connection) as ctx:
            client.put(f"{PUT_BASE}/{ocpi_id}", body, content_type="application/json")
        sqls.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
        queries.append(len(ctx.captured_queries))
    return {"cpu": cpu, "wall": wall, "sql": statistics.fmean(sqls), "queries": statistics.fmean(queries),
            "template": timed_bodies[0][0]}


def put_floor(count: int, template: str) -> dict:
    """The floor of a PUT: the same rows (the location `template` as the PUT stored it, its EVSEs,
    connectors and lookup links) written by hand-written SQL through psycopg, one transaction per location
    (INSERT ... RETURNING per table, prepared statements): what the database alone needs. CPU of this
    process per location and wall per location."""
    import psycopg
    from django.db import connection

    from locations.models import Connector, Evse, Location

    params = connection.get_connection_params()
    conninfo = {k: v for k, v in params.items() if k in ("dbname", "user", "password", "host", "port")}
    tables = {model: model._meta.db_table for model in (Location, Evse, Connector)}
    throughs = {model: [getattr(model, f.name).through._meta.db_table for f in model._meta.many_to_many]
                for model in (Location, Evse)}
    with psycopg.connect(**conninfo) as conn:
        def rows(table: str, where: str, values: list) -> tuple[list[str], list[tuple]]:
            cur = conn.execute(f"SELECT * FROM {table} LIMIT 0")
            columns = [d.name for d in cur.description if d.name != "id"]
            cur = conn.execute(f"SELECT id, {', '.join(f'{c}::text' for c in columns)} FROM {table} WHERE {where} "
                               "ORDER BY id", values)
            return columns, cur.fetchall()

        loc_cols, (loc_row,) = rows(tables[Location], "ocpi_id = %s", [template])
        evse_cols, evse_rows = rows(tables[Evse], "location_id = %s", [loc_row[0]])
        con_cols, con_rows = rows(tables[Connector], "evse_id = ANY(%s)", [[r[0] for r in evse_rows]])
        links = []  # (table, owner column, lookup column, [(owner index or 0, lookup id)])
        for model, owners in ((Location, [loc_row]), (Evse, evse_rows)):
            for field_, table in zip(model._meta.many_to_many, throughs[model]):
                owner_col, lookup_col = field_.m2m_column_name(), field_.m2m_reverse_name()
                found = conn.execute(f"SELECT {owner_col}, {lookup_col} FROM {table} WHERE {owner_col} = ANY(%s)",
                                     [[o[0] for o in owners]]).fetchall()
                index = {o[0]: i for i, o in enumerate(owners)}
                if found:
                    links.append((model, table, owner_col, lookup_col, [(index[o], lk) for o, lk in found]))
        conn.commit()

        def insert(table: str, columns: list[str], n: int) -> str:
            marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
            return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * n)} RETURNING id"

        ocpi_col = loc_cols.index("ocpi_id")
        evse_parent, con_parent = evse_cols.index("location_id"), con_cols.index("evse_id")
        evse_index = {r[0]: i for i, r in enumerate(evse_rows)}
        sql_loc = insert(tables[Location], loc_cols, 1)
        sql_evse = insert(tables[Evse], evse_cols, len(evse_rows))
        sql_con = insert(tables[Connector], con_cols, len(con_rows))
        run = time.time_ns()
        cpu, wall = time.process_time(), time.perf_counter()
        for n in range(count):
            values = list(loc_row[1:])
            values[ocpi_col] = f"FLOOR{run}-{n}"
            with conn.transaction():
                (location_id,), = conn.execute(sql_loc, values).fetchall()
                evse_values = []
                for row in evse_rows:
                    row = list(row[1:])
                    row[evse_parent] = location_id
                    evse_values += row
                evse_ids = [r[0] for r in conn.execute(sql_evse, evse_values).fetchall()]
                con_values = []
                for row in con_rows:
                    parent = evse_ids[evse_index[int(row[1 + con_parent])]]
                    row = list(row[1:])
                    row[con_parent] = parent
                    con_values += row
                conn.execute(sql_con, con_values)
                for model, table, owner_col, lookup_col, pairs in links:
                    owners = [location_id] if model is Location else evse_ids
                    conn.execute(f"INSERT INTO {table} ({owner_col}, {lookup_col}) VALUES "
                                 + ", ".join(["(%s, %s)"] * len(pairs)),
                                 [v for i, lookup in pairs for v in (owners[i], lookup)])
        cpu, wall = (time.process_time() - cpu) / count * 1000, (time.perf_counter() - wall) / count * 1000
        statements = 3 + len(links)
    return {"cpu": cpu, "wall": wall, "statements": statements}


def put_in_process(count: int, dataset: str) -> None:
    """CPU and wall of a PUT in process beside its floor (the same rows by hand-written SQL), same run."""
    from django.db import connection

    from report import Report, load_average

    put = put_cpu(count)
    # The floor's SQL is PostgreSQL's (psycopg, RETURNING, ANY): on the embedded SQLite the PUT is measured alone.
    floor = put_floor(count, put["template"]) if connection.vendor == "postgresql" else None
    print(f"\n=== In-process PUT of a location with 2 EVSEs x 2 connectors ({count} creates; load {load_average()}) ===")
    print(f"  {'':<30} {'CPU ms/op':>10} {'wall ms/op':>11}")
    print(f"  {'PUT (Django test client)':<30} {put['cpu']:10.2f} {put['wall']:11.2f}   SQL {put['sql']:.2f} ms in "
          f"{put['queries']:.0f} queries")
    if floor:
        print(f"  {'floor: same rows, psycopg SQL':<30} {floor['cpu']:10.2f} {floor['wall']:11.2f}   "
              f"{floor['statements']} statements, 1 transaction")
        print(f"  {'ratio':<30} {put['cpu'] / floor['cpu']:9.1f}x {put['wall'] / floor['wall']:10.1f}x   "
              f"target: CPU <= 5 ms/op {'PASS' if put['cpu'] <= 5 else 'MISS'}")
    else:
        print(f"  floor: PostgreSQL only (this is {connection.vendor})")
    report = Report("bench_ocpi_locations", backend=connection.vendor, dataset=dataset)
    report.add("PUT CPU in process", put["cpu"], "ms", target=("<=", 5.0) if floor else None,
               floor=floor and floor["cpu"], cpu_ms=put["cpu"],
               note="floor: the same rows by hand-written SQL through psycopg, one transaction (client CPU)")
    report.add("PUT wall in process", put["wall"], "ms", floor=floor and floor["wall"], cpu_ms=put["cpu"])
    report.write()


def profile_put(count: int) -> None:
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    client = DjangoClient(HTTP_AUTHORIZATION=auth(CPO_TOKEN))
    base = datetime.now(timezone.utc)
    run = time.time_ns()
    bodies = [(f"PROF{run}-{i}", location_body(f"PROF{run}-{i}", base)) for i in range(count)]
    for ocpi_id, body in bodies[:10]:
        client.put(f"{PUT_BASE}/{ocpi_id}", body, content_type="application/json")
    profiler = cProfile.Profile()
    walls, sqls, queries = [], [], []
    for ocpi_id, body in bodies[10:]:
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            profiler.enable()
            response = client.put(f"{PUT_BASE}/{ocpi_id}", body, content_type="application/json")
            profiler.disable()
            walls.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 201, response.content
        sqls.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
        queries.append(len(ctx.captured_queries))
    print(f"\nIn-process PUT profile ({len(walls)} creates, Django test client, no HTTP; cProfile adds overhead):")
    print(f"  wall per PUT   mean {statistics.fmean(walls):6.1f} ms   p50 {percentile(walls, 50):6.1f} ms")
    print(f"  SQL per PUT    mean {statistics.fmean(sqls):6.1f} ms   ({statistics.fmean(queries):.0f} queries)")
    print("  queries of the last PUT (ms):")
    for q in ctx.captured_queries:
        print(f"    {float(q['time']) * 1000:6.2f}  {str(q['sql'])[:150]}")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(35)
    print("\n  cProfile, cumulative (top 35):")
    print("\n".join("    " + line for line in out.getvalue().splitlines()[4:]))
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    print("\n  cProfile, own time (top 20):")
    print("\n".join("    " + line for line in out.getvalue().splitlines()[4:]))


def main() -> None:
    args = parse_args()
    os.environ.setdefault("EVHUB_VAR_DIR", str(ROOT / "var" / "bench"))
    Path(os.environ["EVHUB_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    backend, bench_url, where, drop = bench_database(args.reuse, args.bench_db)
    os.environ["DATABASE_URL"] = bench_url
    os.environ["DJANGO_DEBUG"] = "0"
    proc = None
    try:
        import django

        migrate(dict(os.environ))  # a reused database too: to the code's schema (a no-op when it is)
        django.setup()
        from django.db import connection

        from generate import seed_stations
        from locations.models import Location

        print(f"OCPI Locations bench on {backend} ({where}), {os.cpu_count()} cores, {platform.machine()}, "
              f"Python {platform.python_version()}")
        if args.reuse:  # the catalogue loaded (DE*BCH), not what an earlier run's PUTs added (DE*PSH)
            count = Location.objects.filter(cpo__country_code="DE", cpo__party_id="BCH").count()
            print(f"reusing {count:,} locations")
        else:
            count = args.count
            print(f"loading {count:,} locations:")
            load(count, seed_stations(), backend)
        callers()
        connection.close()

        log = Path(os.environ["EVHUB_VAR_DIR"]) / "gunicorn-bench-ocpi.log"
        proc, port = start_gunicorn(dict(os.environ), args.workers, log)
        print(f"gunicorn: {args.workers} sync workers on 127.0.0.1:{port}")
        deep = deep_pages(port, count, args.deep_gets)
        first_p50 = deep[0][1]["p50"]
        print(f"\n=== pages of 100 at depth, {count:,} locations ({args.deep_gets} GETs each, sequential) ===")
        for label, result in deep:
            print(f"{label:<42} p50 {result['p50']:7.1f} / p95 {result['p95']:7.1f} ms   "
                  f"x{result['p50'] / first_p50:.2f} of the first page")
        if args.only_pages:
            return
        rng = random.Random(7)
        pages = max(1, count // 100)
        anywhere = get_pages(port, [rng.randrange(pages) * 100 for _ in range(args.gets + 20)])
        first = get_pages(port, [0] * (args.gets // 3 + 20))

        run = time.time_ns()
        base = datetime.now(timezone.utc)
        creates = put_load(port, args.concurrency, args.duration,
                           lambda n: (f"P{run}-{n}", location_body(f"P{run}-{n}", base)), 201)
        pool = 200
        replaces = put_load(port, args.concurrency, args.duration,
                            lambda n: (f"P{run}-{n % pool + 1}", location_body(
                                f"P{run}-{n % pool + 1}", base + timedelta(milliseconds=n),
                                ("AVAILABLE", "CHARGING")[n % 2])), 200)
        stop(proc)
        proc = None

        with connection.cursor() as cursor:
            cursor.execute("SELECT version()" if backend == "postgresql" else "SELECT 'SQLite ' || sqlite_version()")
            version = cursor.fetchone()[0].split(" on ")[0]
        print(f"\n=== OCPI Locations, {count:,} locations; {version}; gunicorn {args.workers} workers; "
              f"{os.cpu_count()} cores {platform.machine()} ===")
        rows = [
            (f"GET page of 100, random offset ({anywhere['n']})", f"p50 {anywhere['p50']:.1f} / p95 {anywhere['p95']:.1f} ms"),
            ("  mean / page size", f"{anywhere['mean']:.1f} ms / {anywhere['kb']:.0f} KiB, {anywhere['per_page']:.0f} loc"),
            (f"GET first page of 100 ({first['n']})", f"p50 {first['p50']:.1f} / p95 {first['p95']:.1f} ms"),
            (f"PUT create, {args.concurrency} clients", f"{creates['rps']:.1f} /s  (p50 {creates['p50']:.0f} ms, "
                                                        f"p95 {creates['p95']:.0f} ms)"),
            ("  requests / errors", f"{creates['n']} / {creates['errors']} {creates['first_error'][:80]}"),
            (f"PUT replace, {args.concurrency} clients", f"{replaces['rps']:.1f} /s  (p50 {replaces['p50']:.0f} ms, "
                                                         f"p95 {replaces['p95']:.0f} ms)"),
            ("  requests / errors", f"{replaces['n']} / {replaces['errors']} {replaces['first_error'][:80]}"),
        ]
        for label, value in rows:
            print(f"{label:<42} {value}")
        metrics = {"get_p50": anywhere["p50"], "put_rps": min(creates["rps"], replaces["rps"])}
        print("\ntargets:")
        for label, metric, op, bound in TARGETS:
            value = metrics[metric]
            good = value <= bound if op == "<=" else value >= bound
            print(f"  {label:<16} {value:8.1f} {op} {bound:g}   {'PASS' if good else 'MISS'}")
        if args.profile:
            profile_get(30, max(1, count // 100))
            put_in_process(args.profile, f"{count:,} locations")
            profile_put(args.profile)
    finally:
        stop(proc)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001
            pass
        if args.keep or args.reuse:  # --reuse never drops what it did not load (as in every bench)
            print(f"kept the bench database {where} (--reuse serves it again)")
        else:
            drop()


if __name__ == "__main__":
    main()

"""OCPI pull throughput: a full pull of N locations from a second evhub (gunicorn, PostgreSQL) into this one.

The sender is a real evhub: its own database `<db>_bench_sender` loaded with N published locations by
the COPY loader of bench_graphql/generate.py (about 2 EVSEs x 2 connectors each), served by gunicorn
(--workers 2) on loopback, its own party DE*BCH (so that its credentials name the party it sends). The
receiver is this process on `<db>_bench_receiver` (migrated, empty): `ocpi.pull.peer_pull` follows the
Link pages and writes them through `location_upsert_many` in its writing processes, as `manage.py
ocpi_pull` does. The CPU seconds printed are the receiver's (with its writing processes), the sender's
and PostgreSQL's, during the pull.

Target: >= 3,000 locations/s for 100,000 locations.

    .venv/bin/python bench/bench_ocpi_pull.py [COUNT] [--page-limit 1000] [--keep] [--profile]

Needs DATABASE_URL naming PostgreSQL (its role may create databases); both bench databases are
dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from report import Report, load_average  # noqa: E402

TARGET = 3000.0
RECEIVER_CPU_TARGET = 0.25  # ms of the receiver's CPU per pulled location


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=100_000)
    parser.add_argument("--page-limit", type=int, default=1000,
                        help="the largest page the sender serves (EVHUB_OCPI_PAGE_LIMIT; its default: 1000)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of the sender")
    parser.add_argument("--keep", action="store_true", help="keep both bench databases")
    parser.add_argument("--profile", action="store_true", help="cProfile the pulling thread (not the writing processes)")
    parser.add_argument("--no-shared", action="store_true", help="seed coordinates from the shipped sample only")
    return parser.parse_args()


def urls(base: str) -> tuple[str, str, str]:
    parts = urlsplit(base)
    name = parts.path.lstrip("/") or "evhub"
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    return (admin, urlunsplit(parts._replace(path=f"/{name}_bench_sender")),
            urlunsplit(parts._replace(path=f"/{name}_bench_receiver")))


def recreate(admin: str, url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop(admin: str, url: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')


def run(env: dict, *args: str, code: str | None = None) -> str:
    command = [sys.executable, "-c", code] if code else [sys.executable, str(ROOT / "manage.py"), *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args) or 'python -c'} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


LOAD = """
import sys, json
sys.path[:0] = [{root!r}, {bench!r}]
import django
django.setup()
from bench_graphql import load
from generate import seed_stations
load({count}, seed_stations(use_shared={shared}), "postgresql")
"""

ADMIT = """
import django, json
django.setup()
from locations.tokens import token_digest
from ocpi.models import Peer, PeerParty
peer = Peer.objects.create(name="bench receiver", state="CONNECTED", token_in_digest=token_digest({token!r}))
PeerParty.objects.create(peer=peer, role="EMSP", country_code="DE", party_id="EVH")
print(json.dumps(peer.pk))
"""


def main() -> None:
    args = parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        # Two servers' databases, COPY and worker processes: a PostgreSQL bench. `make bench`'s SQLite phase
        # runs every bench; this one says why it has nothing to measure there and counts as passed.
        print("bench_ocpi_pull: skipped, DATABASE_URL must name PostgreSQL (the embedded SQLite has no pull bench)")
        return
    admin, sender_url, receiver_url = urls(base)
    var = Path(tempfile.mkdtemp(prefix="bench-ocpi-pull-"))
    common = {k: v for k, v in os.environ.items() if not k.startswith(("EVHUB_", "DATABASE_URL", "CELERY_"))}
    common.update(DJANGO_SETTINGS_MODULE="config.settings", EVHUB_OCPI_ALLOWED_NETWORKS="127.0.0.0/8")
    from bench_graphql import free_port, stop

    port = free_port()
    sender_env = {**common, "DATABASE_URL": sender_url, "EVHUB_VAR_DIR": str(var / "sender"),
                  "EVHUB_PARTY_ID": "BCH", "EVHUB_OCPI_PAGE_LIMIT": str(args.page_limit),
                  "EVHUB_BASE_URL": f"http://127.0.0.1:{port}", "PORT": str(port)}
    sender_env.pop("REDIS_URL", None)  # a cache and broker of its own (files in its var dir)
    receiver_env = {**common, "DATABASE_URL": receiver_url, "EVHUB_VAR_DIR": str(var / "receiver")}
    print(f"OCPI pull bench: {args.count:,} locations, sender page size {args.page_limit}, "
          f"gunicorn --workers {args.workers}")
    web = None
    try:
        started = time.perf_counter()
        for url, env in ((sender_url, sender_env), (receiver_url, receiver_env)):
            recreate(admin, url)
            run(env, "migrate", "--noinput", "-v0")
        print(f"  create + migrate 2 databases {time.perf_counter() - started:8.1f} s")
        print(run(sender_env, code=LOAD.format(root=str(ROOT), bench=str(ROOT / "bench"), count=args.count,
                                               shared=not args.no_shared)).rstrip())
        from locations.tokens import token_new  # noqa: E402  (no settings needed)

        token = token_new()
        run(sender_env, code=ADMIT.format(token=token))
        # start_gunicorn picks its own free port: the sender's EVHUB_BASE_URL must name the one it serves on.
        web, served = start_gunicorn_on(sender_env, args.workers, var / "gunicorn.log", port)

        os.environ.update(receiver_env)
        os.environ.pop("REDIS_URL", None)  # its locks in a cache of its own, not in a shared Redis DB
        import django

        django.setup()
        from ocpi.pull import peer_pull
        from tests.ocpi.peer_server import peer_connected_here

        class Sender:
            name = "bench sender"

            @staticmethod
            def url(path):
                return f"http://127.0.0.1:{served}{path}"

        peer = peer_connected_here(Sender, token=token, parties=[("CPO", "DE", "BCH"), ("EMSP", "DE", "BCH")],
                                   name="bench sender")
        cpu_before = cpu_split(web.pid)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        began = time.perf_counter()
        summary = peer_pull(peer=peer, full=True)
        elapsed = time.perf_counter() - began
        import gc
        print(f"  gc after pull: {gc.collect()} unreachable; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        if profiler:
            profiler.disable()
        rate = summary.received / elapsed
        cpu = {name: after - cpu_before[name] for name, after in cpu_split(web.pid).items()}
        print(f"  pull                         {elapsed:8.1f} s   {summary.pages:,} pages, "
              f"{summary.received:,} received, {summary.created:,} created, {summary.updated:,} updated, "
              f"{summary.unchanged:,} unchanged, {summary.rejected:,} rejected")
        print(f"  throughput                   {rate:8.0f} locations/s   (target >= {TARGET:,.0f}: "
              f"{'met' if rate >= TARGET else 'NOT met'})")
        print("  CPU seconds                  " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())
              + f"   (wall {elapsed:.1f} s, {os.cpu_count()} cores)")
        floor = fetch_only(peer, web.pid)
        per = {name: seconds / max(1, summary.received) * 1000 for name, seconds in cpu.items()}
        floor_per = {name: seconds / max(1, floor["received"]) * 1000 for name, seconds in floor["cpu"].items()}
        floor_rate = floor["received"] / floor["seconds"]
        print(f"\n  per location (load {load_average()})  {'pull':>9} {'floor':>9} {'ratio':>7}   floor: the same pages "
              "fetched and parsed alone (the receiver writes nothing)")
        for name in per:
            print(f"  CPU ms, {name:<22} {per[name]:9.3f} {floor_per[name]:9.3f} "
                  f"{per[name] / floor_per[name] if floor_per[name] else float('nan'):6.1f}x")
        print(f"  locations/s                    {rate:9.0f} {floor_rate:9.0f} {floor_rate / rate:6.1f}x   "
              f"(receiver CPU target <= {RECEIVER_CPU_TARGET} ms: "
              f"{'met' if per['receiver'] <= RECEIVER_CPU_TARGET else 'NOT met'})")
        report = Report("bench_ocpi_pull", backend="postgresql", dataset=f"{args.count:,} locations")
        report.add("pull receiver CPU per location", per["receiver"], "ms", target=("<=", RECEIVER_CPU_TARGET),
                   floor=floor_per["receiver"], cpu_ms=per["receiver"],
                   note="floor: the same pages fetched and parsed (orjson) by the receiver, nothing written")
        report.add("pull throughput", rate, "loc/s", target=(">=", TARGET), floor=floor_rate, higher=True,
                   cpu_ms=per["receiver"])
        report.add("pull PostgreSQL CPU per location", per["postgres"], "ms", floor=floor_per["postgres"],
                   cpu_ms=per["postgres"])
        report.write()
        print(json.dumps({"count": args.count, "page_limit": args.page_limit, "seconds": round(elapsed, 2),
                          "locations_per_s": round(rate), **{k: v for k, v in summary.as_dict().items()
                                                              if k in ("pages", "received", "created", "rejected")}}))
        if profiler:
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(30)
            print(stream.getvalue())
    finally:
        stop(web)
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop(admin, sender_url)
            drop(admin, receiver_url)


def fetch_only(peer, sender_pid: int) -> dict:
    """The floor of a pull, measured in the same run: every page fetched again from the sender and parsed
    (OcpiClient: requests + orjson), following the Links, nothing written. Its CPU split as the pull's."""
    from ocpi.client import OcpiClient
    from ocpi.pull import PAGE_LIMIT, _to_party, next_link
    from ocpi.modules.locations.push import sender_url
    from locations.tokens import secret_decrypt

    client = OcpiClient(token=secret_decrypt(peer.token_out), version=peer.version, to_party=_to_party(peer))
    url, params, received = sender_url(peer), {"limit": PAGE_LIMIT}, 0
    before = cpu_split(sender_pid)
    began = time.perf_counter()
    while url:
        reply = client.get(url, params=params)
        params = None
        received += len(reply.data)
        url = next_link(reply.headers) if reply.data else None
    seconds = time.perf_counter() - began
    after = cpu_split(sender_pid)
    return {"received": received, "seconds": seconds, "cpu": {name: after[name] - before[name] for name in after}}


def _proc_cpu(pid: str) -> tuple[str, int, float]:
    """(command name, parent pid, user+system CPU seconds) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    name = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    # utime, stime, and the children's that were waited for: PostgreSQL's postmaster reaps its backends,
    # so the CPU of the connections closed during the pull is counted in its cutime/cstime.
    return name, int(fields[1]), sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cpu_split(sender_pid: int) -> dict[str, float]:
    """CPU seconds used so far by this process and its writing processes (the receiver: fetching and
    writing), the sender's gunicorn workers, and all PostgreSQL processes (both databases' backends
    share one server)."""
    sender = postgres = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            name, parent, seconds = _proc_cpu(pid)
        except (OSError, ValueError):
            continue  # gone meanwhile
        if parent == sender_pid or int(pid) == sender_pid:
            sender += seconds
        elif name.startswith("postgres"):
            postgres += seconds
    # The receiver's writing processes (ocpi.pull_writer) are its children, reaped at the end of the pull;
    # the sender's gunicorn is reaped only after it.
    receiver = sum(usage.ru_utime + usage.ru_stime
                   for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))
    return {"receiver": receiver, "sender": sender, "postgres": postgres}


def start_gunicorn_on(env: dict, workers: int, log: Path, port: int):
    """bench_graphql.start_gunicorn, on a port chosen beforehand (the sender's Link URLs name it)."""
    import bench_graphql

    original = bench_graphql.free_port
    bench_graphql.free_port = lambda: port
    try:
        return bench_graphql.start_gunicorn(env, workers, log)
    finally:
        bench_graphql.free_port = original


if __name__ == "__main__":
    main()

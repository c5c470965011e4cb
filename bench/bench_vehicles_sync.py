"""Fleet sync: 10,000 simulated cars across 2,000 accounts, the maker answering after 200 ms, polled by ONE
Celery worker process (--pool solo) on PostgreSQL and Redis.

The maker is `manage.py oem_simulator` in a process of its own (--latency 0.2, its quotas: 30 calls and
0.5 a second per account, 2,000 and 500 a second for the maker). The accounts are made there in one call
and linked here with their tokens (encrypted, as a login would store them), every car due at once. The
clock starts when the bench enqueues the due cars (`vehicles.sync.dispatch_due`, what beat runs) and stops
when every car has a state fetched since. Printed: wall time, the worker's CPU seconds and peak memory,
the simulator's, and the maker's count of refused calls (quota exceeded: must be 0).

Target: all 10,000 synced within 60 s, no quota exceeded.

    .venv/bin/python bench/bench_vehicles_sync.py [--accounts 2000] [--cars 5] [--latency 0.2] [--keep]

Needs DATABASE_URL naming PostgreSQL (its role may create databases) and REDIS_URL; on the embedded
default it says so and skips. Its database `<db>_bench_vehicles` is dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
TARGET_SECONDS = 60.0

from report import Report  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--cars", type=int, default=5, help="cars per account")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the simulator takes to answer")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_figures(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak resident MB) of a live process, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cpu, peak


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def main() -> int:
    args = parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")) or not os.environ.get("REDIS_URL"):
        print("bench_vehicles_sync: needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL); skipped")
        return 0
    import psycopg

    parts = urlsplit(base)
    name = f"{parts.path.lstrip('/') or 'evhub'}_bench_vehicles"
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    db_url = urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1"}
    os.environ.update(env)
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    import redis
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from config.celery import app as celery_app
    from vehicles import models as m
    from vehicles import services, sync
    from vehicles.providers.base import Tokens

    port = free_port()
    sim_url = f"http://127.0.0.1:{port}"
    logs = Path(os.environ.get("EVHUB_VAR_DIR", ROOT / "var")) / "bench-vehicles"
    logs.mkdir(parents=True, exist_ok=True)
    sim = subprocess.Popen([py, "manage.py", "oem_simulator", "--port", str(port), "--latency", str(args.latency),
                            "--report-every", "30"], cwd=ROOT, env=env, stdout=open(logs / "simulator.log", "wb"),
                           stderr=subprocess.STDOUT, start_new_session=True)
    worker = None
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{sim_url}/_sim/stats", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        started = time.perf_counter()
        fleet = post(f"{sim_url}/_sim/fleet", {"accounts": args.accounts, "cars_per_account": args.cars,
                                               "prefix": "bench"})["accounts"]
        User = get_user_model()
        users = User.objects.bulk_create([User(username=a["account_id"], password="!") for a in fleet])
        now = timezone.now()
        accounts = m.MakerAccount.objects.bulk_create([
            m.MakerAccount(driver=user, provider="simulator", external_id=a["account_id"], label=a["account_id"],
                           options={"base_url": sim_url},
                           secrets=services._tokens_dump(Tokens(access_token=a["access_token"],
                                                                refresh_token=a["refresh_token"],
                                                                expires_at=now + timedelta(hours=1))))
            for user, a in zip(users, fleet)])
        cars = [m.Vehicle(account=account, vin=c["vin"], maker_id=c["id"], brand="Renault", model="ZOE",
                          battery_capacity_kwh=c["capacity"], capabilities=["battery-status"], next_poll_at=now)
                for account, a in zip(accounts, fleet) for c in a["cars"]]
        m.Vehicle.objects.bulk_create(cars, batch_size=2000)
        total = len(cars)
        print(f"fleet: {len(accounts):,} accounts, {total:,} cars linked in {time.perf_counter() - started:.1f} s")

        # Buckets of an earlier run (the same account ids in a new database) would start emptier than ours.
        r = redis.Redis.from_url(os.environ["REDIS_URL"])
        for key in r.scan_iter("evhub:vehicles:*", count=1000):
            r.delete(key)
        celery_app.control.purge()
        worker = subprocess.Popen(
            [py, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-Q", "vehicles.simulator",
             "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=open(logs / "worker.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        time.sleep(3)  # the worker's start-up is not the sync's time
        sim_cpu0, _ = proc_figures(sim.pid)
        worker_cpu0, _ = proc_figures(worker.pid)

        t0 = time.perf_counter()
        dispatched = sync.dispatch_due()
        dispatch_s = time.perf_counter() - t0
        since = now
        synced = 0
        while synced < total and time.perf_counter() - t0 < args.timeout:
            time.sleep(0.5)
            synced = m.VehicleState.objects.filter(fetched_at__gte=since).count()
            assert worker.poll() is None, f"the worker exited: see {logs / 'worker.log'}"
        wall = time.perf_counter() - t0
        worker_cpu, worker_peak = proc_figures(worker.pid)
        sim_cpu, sim_peak = proc_figures(sim.pid)
        stats = json.loads(urllib.request.urlopen(f"{sim_url}/_sim/stats", timeout=10).read())
        refused = sum(stats["quota_rejections"].values())
        samples = m.VehicleSample.objects.count()
        errors = m.Vehicle.objects.exclude(last_error="").count()

        print(f"dispatched {dispatched:,} cars in {dispatch_s:.2f} s (claim with SKIP LOCKED, chunks of {sync.CHUNK()})")
        print(f"synced {synced:,}/{total:,} cars in {wall:.1f} s wall = {synced / wall:,.0f} cars/s "
              f"(simulator latency {args.latency:g} s)")
        print(f"worker (one process, solo pool): {worker_cpu - worker_cpu0:.1f} s CPU, peak RSS {worker_peak:.0f} MB")
        print(f"simulator: {sim_cpu - sim_cpu0:.1f} s CPU, peak RSS {sim_peak:.0f} MB; "
              f"requests answered {sum(stats['status'].values()):,} {stats['status']}")
        print(f"samples stored {samples:,}; cars with an error {errors:,}; maker's quota refusals {refused}")
        ok = synced == total and wall <= TARGET_SECONDS and refused == 0
        report = Report("bench_vehicles_sync", backend="postgresql",
                        dataset=f"{total:,} cars, {len(accounts):,} accounts, latency {args.latency:g} s")
        report.add("sync of every car", wall, "s", target=("<=", TARGET_SECONDS),
                   cpu_ms=(worker_cpu - worker_cpu0) * 1000 / max(synced, 1),
                   note=f"{synced:,}/{total:,} synced, {refused} quota refusals; CPU ms per car: the worker")
        report.add("cars synced per second", synced / wall, "cars/s", higher=True)
        report.write()
        print(f"target: all {total:,} within {TARGET_SECONDS:.0f} s, no quota exceeded: {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1
    finally:
        for proc in (worker, sim):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        celery_app.control.purge()
        from django.db import connections

        connections.close_all()
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of the CSV import: 100,000 evhub rows (25,000 locations x 2 EVSEs x 2 connectors).

Run by `make bench` against the database configured in the environment (the private PostgreSQL of
`scripts/services.sh` there). The file is generated to a temporary file and uploaded through the
portal's service (`locations.csv_import.jobs`): stored, recorded, and imported by the job's Celery task,
run eagerly in this process. Three runs, each into a catalogue emptied the way the issue found it (the
rows deleted, the tables vacuumed) and after a first try of 20 locations in the same database session, as
a CPO's first import into an empty hub goes: then the big file, then the same file again (nothing
changes). Prints rows/s, the sequential scans of the locations and EVSE tables during the run (one per
imported child row was the quadratic case), and peak memory: the resident set's peak over each run,
sampled; with `--tracemalloc` also two more runs measuring Python's allocations (several times slower).
The issue's target is 5,000 rows/s on PostgreSQL, in every run.
"""

import csv
import logging
import os
import random
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from config.celery import app as celery_app  # noqa: E402
from locations import services  # noqa: E402
from locations.csv_import import COLUMNS, jobs  # noqa: E402
from locations.models import Cpo, CsvImport, Location  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Report  # noqa: E402


def write_rows(path: Path, locations: int, rng: random.Random, prefix: str = "CSV") -> int:
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        for index in range(locations):
            lat, lng = 47.3 + rng.random() * 7.7, 5.9 + rng.random() * 9.1
            location = {
                "location_id": f"{prefix}{index}", "name": f"Bench {index}", "address": f"Benchstraße {index}",
                "city": "Benchstadt", "postal_code": "10115", "country": "DE", "latitude": f"{lat:.6f}",
                "longitude": f"{lng:.6f}", "parking_type": "PARKING_LOT", "facilities": "CAFE|WIFI",
            }
            for evse in (1, 2):
                for connector in (1, 2):
                    writer.writerow({
                        **location, "evse_uid": f"{prefix}{index}-{evse}", "evse_id": f"DE*BCH*E{index}{evse}",
                        "evse_status": "AVAILABLE", "capabilities": "RFID_READER", "connector_id": str(connector),
                        "standard": "IEC_62196_T2", "format": "CABLE", "power_type": "AC_3_PHASE",
                        "max_voltage": "230", "max_amperage": "32", "max_electric_power": "22000",
                    })
                    rows += 1
    return rows


def rss_mib() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:  # not Linux: the peak so far is all there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssPeak:
    """The resident set's peak during a block, above where it started (sampled every 20 ms)."""

    def __enter__(self):
        self.start = self.peak = rss_mib()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mib())
            time.sleep(0.02)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss_mib())


def seq_scans() -> dict[str, int]:
    """Sequential scans of the parents so far, this session's included (its counters are flushed first)."""
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT relname, seq_scan FROM pg_stat_user_tables "
                       "WHERE relname IN ('locations_location', 'locations_evse')")
        return dict(cursor.fetchall())


def backend_cpu() -> float:
    """CPU seconds of this session's PostgreSQL backend so far (when it runs on this machine): with the
    bench's own, what a run costs whatever else the machine is doing, which wall time is not."""
    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(label: str, cpo: Cpo, path: Path, *, traced: bool = False) -> dict:
    """One upload of the file through the portal's service: stored, recorded and imported by the job's
    task (run here, eagerly, as a worker runs it) when it is over the request's size."""
    if traced:
        tracemalloc.start()  # slows Python code down several times: a separate run
    scans = seq_scans()
    backend = backend_cpu()
    with RssPeak() as rss:
        start, cpu = time.perf_counter(), time.process_time()
        with path.open("rb") as file:
            job = jobs.csv_import_upload(cpo=cpo, file=file, file_name=path.name)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    backend = backend_cpu() - backend
    job.refresh_from_db()
    assert job.status == CsvImport.Status.SUCCEEDED, (job.message, job.errors[:5])
    after = seq_scans()
    scanned = "/".join(str(after[table] - scans[table]) for table in ("locations_location", "locations_evse")) \
        if scans else "-"
    memory = f"RSS peak +{rss.peak - rss.start:5.1f} MiB"
    if traced:
        memory = f"tracemalloc peak {tracemalloc.get_traced_memory()[1] / 2**20:5.1f} MiB"
        tracemalloc.stop()
    print(f"{label:<30} {job.rows:>7} rows {elapsed:7.2f} s {job.rows / elapsed:7.0f} rows/s  "
          f"{job.created:>6} created {job.unchanged:>6} unchanged  seq scans {scanned:>11}  "
          f"CPU {cpu:5.2f} s + database {backend:5.2f} s  {memory}", flush=True)
    return {"rows_s": job.rows / elapsed, "cpu_ms": (cpu + backend) * 1000 / max(job.rows, 1)}


def emptied(cpo: Cpo) -> None:
    """The bench CPO's rows deleted and the catalogue vacuumed (not analyzed), as the issue found it: the
    tables have no pages left, and the statistics say nothing of rows to come."""
    Location.objects.filter(cpo=cpo).delete()
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in ("locations_location", "locations_evse", "locations_connector", "locations_location_facilities",
                      "locations_location_parking_types", "locations_evse_capabilities", "ocpi_outboxentry"):
            cursor.execute(f"VACUUM {table}")


def main(locations: int = 25_000, traced: bool = False, runs: int = 3) -> None:
    celery_app.conf.task_always_eager = True  # the import's task runs in this process, where it is timed
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    cpo = Cpo.objects.filter(country_code="DE", party_id="BCH").first()
    if cpo is None:
        cpo, _ = services.cpo_create(country_code="DE", party_id="BCH", owner_name="Bench")
    with tempfile.TemporaryDirectory() as directory:
        path, first = Path(directory) / "locations.csv", Path(directory) / "first-try.csv"
        rows = write_rows(path, locations, random.Random(7))
        write_rows(first, 20, random.Random(8), prefix="TRY")
        print(f"CSV upload on {connection.vendor}, {os.cpu_count()} cores: {rows} rows, "
              f"{path.stat().st_size / 2**20:.1f} MiB, RSS at start {rss_mib():.0f} MiB; each run into an emptied "
              f"catalogue (deleted, VACUUM), after a first try of 20 locations in the same session; seq scans "
              f"are of locations_location/locations_evse", flush=True)
        creates, agains = [], []
        for run in range(1, runs + 1):
            emptied(cpo)
            timed(f"run {run}: first try", cpo, first)
            creates.append(timed(f"run {run}: create", cpo, path))
            agains.append(timed(f"run {run}: same file again", cpo, path))
        # The slowest run is the figure: the target holds in every run. CPU: this process and its backend.
        report = Report("bench_csv_import", backend=connection.vendor, dataset=f"{rows:,} rows, {runs} runs")
        target = (">=", 5000.0) if connection.vendor == "postgresql" else None
        for name, results in (("create rows/s (slowest run)", creates), ("same file again rows/s (slowest)", agains)):
            slowest = min(results, key=lambda r: r["rows_s"])
            report.add(name, slowest["rows_s"], "rows/s", target=target, higher=True, cpu_ms=slowest["cpu_ms"],
                       note="" if results is agains else "CPU ms per row: this process + its PostgreSQL backend")
        report.write()
        if traced:
            emptied(cpo)
            timed("create (tracemalloc)", cpo, path, traced=True)
            timed("same again (tracemalloc)", cpo, path, traced=True)
    emptied(cpo)


if __name__ == "__main__":
    # bench_csv_import.py [LOCATIONS] [--runs=N] [--tracemalloc]
    numbers = [arg for arg in sys.argv[1:] if arg.isdigit()]
    runs = next((int(arg.split("=", 1)[1]) for arg in sys.argv[1:] if arg.startswith("--runs=")), 3)
    main(int(numbers[0]) if numbers else 25_000, traced="--tracemalloc" in sys.argv, runs=runs)

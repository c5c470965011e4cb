"""Throughput of the CSV import: 100,000 evhub rows (25,000 locations x 2 EVSEs x 2 connectors).

Run by `make bench` against the database configured in the environment (the private PostgreSQL of
`scripts/services.sh` there). The file is generated to a temporary file and imported through
`locations_import_csv`, the way the command and the portal do; then the same file again (nothing
changes). Prints rows/s and peak memory: the resident set's peak over each run, sampled; with
`--tracemalloc` also two more runs measuring Python's allocations (several times slower). The
issue's target is 5,000 rows/s on PostgreSQL.
"""

import csv
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

from locations import services  # noqa: E402
from locations.csv_import import COLUMNS, locations_import_csv  # noqa: E402
from locations.models import Cpo, Location  # noqa: E402


def write_rows(path: Path, locations: int, rng: random.Random) -> int:
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        for index in range(locations):
            lat, lng = 47.3 + rng.random() * 7.7, 5.9 + rng.random() * 9.1
            location = {
                "location_id": f"CSV{index}", "name": f"Bench {index}", "address": f"Benchstraße {index}",
                "city": "Benchstadt", "postal_code": "10115", "country": "DE", "latitude": f"{lat:.6f}",
                "longitude": f"{lng:.6f}", "parking_type": "PARKING_LOT", "facilities": "CAFE|WIFI",
            }
            for evse in (1, 2):
                for connector in (1, 2):
                    writer.writerow({
                        **location, "evse_uid": f"CSV{index}-{evse}", "evse_id": f"DE*BCH*E{index}{evse}",
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


def timed(label: str, cpo: Cpo, path: Path, *, traced: bool = False) -> None:
    if traced:
        tracemalloc.start()  # slows Python code down several times: a separate run
    with RssPeak() as rss:
        start = time.perf_counter()
        with path.open("rb") as file:
            report = locations_import_csv(cpo=cpo, file=file)
        elapsed = time.perf_counter() - start
    assert report.error_count == 0 and report.committed, report.errors[:5]
    memory = f"RSS peak +{rss.peak - rss.start:5.1f} MiB"
    if traced:
        memory = f"tracemalloc peak {tracemalloc.get_traced_memory()[1] / 2**20:5.1f} MiB"
        tracemalloc.stop()
    print(f"{label:<24} {report.rows:>7} rows {elapsed:7.2f} s {report.rows / elapsed:7.0f} rows/s  "
          f"{report.created:>6} created {report.unchanged:>6} unchanged  {memory}")


def tables_maintained() -> None:
    """After the previous run's rows were deleted: vacuum and analyze the catalogue, as autovacuum would
    eventually, so that a run measures the import and not when autovacuum happens to start, nor plans
    made on statistics of rows that are gone."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in ("locations_location", "locations_evse", "locations_connector", "locations_location_facilities",
                      "locations_location_parking_types", "locations_evse_capabilities", "ocpi_outboxentry"):
            cursor.execute(f"VACUUM ANALYZE {table}")


def main(locations: int = 25_000, traced: bool = False) -> None:
    cpo = Cpo.objects.filter(country_code="DE", party_id="BCH").first()
    if cpo is None:
        cpo, _ = services.cpo_create(country_code="DE", party_id="BCH", owner_name="Bench")
    Location.objects.filter(cpo=cpo).delete()
    tables_maintained()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "locations.csv"
        rows = write_rows(path, locations, random.Random(7))
        print(f"locations_import_csv on {connection.vendor}, {os.cpu_count()} cores: {rows} rows, "
              f"{path.stat().st_size / 2**20:.1f} MiB, RSS at start {rss_mib():.0f} MiB")
        timed("create", cpo, path)
        timed("same file again", cpo, path)
        if traced:
            Location.objects.filter(cpo=cpo).delete()
            tables_maintained()
            timed("create (tracemalloc)", cpo, path, traced=True)
            timed("same again (tracemalloc)", cpo, path, traced=True)
    Location.objects.filter(cpo=cpo).delete()


if __name__ == "__main__":
    # bench_csv_import.py [LOCATIONS] [--tracemalloc]
    numbers = [arg for arg in sys.argv[1:] if arg.isdigit()]
    main(int(numbers[0]) if numbers else 25_000, traced="--tracemalloc" in sys.argv)

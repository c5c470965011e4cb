"""Throughput of the one ingestion path: `location_upsert` of generated locations (2 EVSEs x 2 connectors).

Run by `make bench` against the database configured in the environment (the private PostgreSQL of
`scripts/services.sh` there). Prints creates/s, unchanged re-upserts/s and updates/s.
"""

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from locations import services  # noqa: E402
from locations.models import Cpo, Location  # noqa: E402


def generated_location(cpo: Cpo, index: int, stamp: str, rng: random.Random) -> dict:
    lat, lng = 47.3 + rng.random() * 7.7, 5.9 + rng.random() * 9.1
    connector = {"format": "CABLE", "max_voltage": 230, "max_amperage": 32, "max_electric_power": 22000,
                 "standard": "IEC_62196_T2", "power_type": "AC_3_PHASE", "last_updated": stamp}
    return {
        "country_code": cpo.country_code, "party_id": cpo.party_id, "id": f"BENCH{index}", "publish": True,
        "name": f"Bench {index}", "address": f"Benchstraße {index}", "city": "Benchstadt", "postal_code": "10115",
        "country": "DEU", "coordinates": {"latitude": f"{lat:.6f}", "longitude": f"{lng:.6f}"},
        "time_zone": "Europe/Berlin", "last_updated": stamp,
        "evses": [{"uid": f"BENCH{index}-{e}", "status": "AVAILABLE", "last_updated": stamp,
                   "connectors": [{**connector, "id": str(c)} for c in (1, 2)]} for e in (1, 2)],
    }


def timed(label: str, payloads: list[dict], cpo: Cpo) -> None:
    start = time.perf_counter()
    for data in payloads:
        services.location_upsert(cpo=cpo, data=data)
    elapsed = time.perf_counter() - start
    print(f"{label:<28} {len(payloads):>6} locations {elapsed:7.2f} s {len(payloads) / elapsed:8.1f} /s")


def timed_many(label: str, payloads: list[dict], cpo: Cpo, batch: int = 500) -> None:
    start = time.perf_counter()
    for offset in range(0, len(payloads), batch):
        services.location_upsert_many(cpo=cpo, items=payloads[offset:offset + batch])
    elapsed = time.perf_counter() - start
    print(f"{label:<28} {len(payloads):>6} locations {elapsed:7.2f} s {len(payloads) / elapsed:8.1f} /s")


def main(count: int = 2000) -> None:
    rng = random.Random(7)
    cpo = Cpo.objects.filter(country_code="DE", party_id="BCH").first()
    if cpo is None:
        cpo, _ = services.cpo_create(country_code="DE", party_id="BCH", owner_name="Bench")
    Location.objects.filter(cpo=cpo).delete()
    print(f"location_upsert on {connection.vendor}, {os.cpu_count()} cores")
    first = [generated_location(cpo, i, "2024-01-01T00:00:00Z", rng) for i in range(count)]
    timed("create", first, cpo)
    timed("same payload again", first, cpo)
    later = [{**p, "name": p["name"] + " (renamed)", "last_updated": "2024-02-01T00:00:00Z"} for p in first]
    timed("update one field", later, cpo)
    Location.objects.filter(cpo=cpo).delete()
    many = [generated_location(cpo, i, "2024-01-01T00:00:00Z", rng) for i in range(count * 5)]
    timed_many("create, batches of 500", many, cpo)
    timed_many("same again, batches of 500", many, cpo)
    Location.objects.filter(cpo=cpo).delete()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)

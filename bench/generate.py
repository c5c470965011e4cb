"""A synthetic catalogue for benchmarks: N published locations jittered around real German stations.

The coordinates come from the BNetzA sample shipped in `locations/fixtures/` and, when the shared data
directory (`../shared/data/locations/`) exists, from the larger BNetzA registers there too. Each
generated location lies within `JITTER_KM` of a real station, so the density follows Germany's real
stations (dense in cities, sparse in the country).

Rows are produced as tuples in the column order of the models (`TablePlan`), every NOT NULL column
filled, so the same rows feed PostgreSQL's COPY and SQLite's executemany. Ids are chosen here.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "locations" / "fixtures" / "bnetza-2019-sample.csv"
SHARED_LOCATIONS = ROOT.parent / "shared" / "data" / "locations"
JITTER_KM = 3.0
KM_PER_DEG = 111.195


@dataclass(frozen=True)
class Seed:
    lat: float
    lng: float
    city: str
    postal_code: str
    province: str


def seed_stations(*, use_shared: bool = True) -> list[Seed]:
    """Real German station coordinates, deduplicated: the shipped sample, plus ../shared when present."""
    from locations.registers.bnetza import iter_bnetza_locations

    files = [SAMPLE]
    if use_shared and SHARED_LOCATIONS.is_dir():
        files += sorted(SHARED_LOCATIONS.glob("de-bnetza-*.csv"))
    seeds: dict[tuple[float, float], Seed] = {}
    for path in files:
        with open(path, "rb") as fh:
            for row in iter_bnetza_locations(fh):
                loc = row.location
                if not loc:
                    continue
                coordinates = loc.get("coordinates") or {}
                try:
                    lat, lng = float(coordinates["latitude"]), float(coordinates["longitude"])
                except (KeyError, TypeError, ValueError):
                    continue
                if not (47.2 <= lat <= 55.1 and 5.8 <= lng <= 15.1):  # Germany's bounding box
                    continue
                seeds.setdefault((round(lat, 5), round(lng, 5)), Seed(
                    lat, lng, (loc.get("city") or "")[:45], (loc.get("postal_code") or "")[:10],
                    (loc.get("state") or "")[:20]))
    return list(seeds.values())


def jitter(seed: Seed, rng: random.Random, km: float = JITTER_KM) -> tuple[float, float]:
    """A point uniformly distributed in the disc of radius `km` around the seed."""
    r = km * math.sqrt(rng.random())
    theta = rng.random() * 2 * math.pi
    lat = seed.lat + r * math.cos(theta) / KM_PER_DEG
    lng = seed.lng + r * math.sin(theta) / (KM_PER_DEG * math.cos(math.radians(seed.lat)))
    return round(lat, 6), round(lng, 6)


class TablePlan:
    """Column order and constant values of one model's table; `row(**values)` gives a full tuple.

    Every concrete field gets a value: the one given per row, else the field's default, else NULL
    when nullable, else "" for blank text, else `now` for timestamps. Anything else is an error, so
    a new NOT NULL column without a default makes the generator fail loudly instead of the load.
    """

    def __init__(self, model, connection, *, per_row: list[str], now: datetime, overrides: dict | None = None):
        from django.db import models

        self.model = model
        self.table = model._meta.db_table
        fields = model._meta.concrete_fields
        self.columns = [f.column for f in fields]
        by_attname = {f.attname: f for f in fields}
        unknown = set(per_row) - set(by_attname)
        if unknown:
            raise ValueError(f"{self.table}: no such fields {sorted(unknown)}")
        overrides = overrides or {}
        template: list = []
        self.positions = {}
        for f in fields:
            if f.attname in per_row:
                self.positions[f.attname] = len(template)
                template.append(None)
                continue
            if f.attname in overrides:
                value = overrides[f.attname]
            elif isinstance(f, models.DateTimeField) and (f.auto_now or f.auto_now_add or not f.null):
                value = now
            elif f.has_default():
                value = f.get_default()
            elif f.null:
                value = None
            elif isinstance(f, (models.CharField, models.TextField)) and f.blank:
                value = ""
            else:
                raise ValueError(f"{self.table}.{f.column}: NOT NULL without a value in the generator")
            template.append(None if value is None else f.get_db_prep_save(value, connection))
        self.template = template
        self.order = [self.positions[name] for name in per_row]

    def row(self, *values) -> tuple:
        """Values in the order of `per_row` given to the constructor."""
        row = self.template.copy()
        for position, value in zip(self.order, values):
            row[position] = value
        return tuple(row)


# EVSE kinds: (weight, [(standard, format, power_type, volts, amps, watts), ...two connectors])
EVSE_KINDS = [
    (55, [("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 400, 32, 22000),
          ("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 400, 16, 11000)]),
    (15, [("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 400, 32, 22000),
          ("DOMESTIC_F", "SOCKET", "AC_1_PHASE", 230, 16, 3700)]),
    (20, [("IEC_62196_T2_COMBO", "CABLE", "DC", 920, 200, 150000),
          ("CHADEMO", "CABLE", "DC", 500, 125, 50000)]),
    (10, [("IEC_62196_T2_COMBO", "CABLE", "DC", 1000, 500, 300000),
          ("IEC_62196_T2", "CABLE", "AC_3_PHASE", 400, 63, 43000)]),
]
STATUSES = [("AVAILABLE", 60), ("CHARGING", 20), ("UNKNOWN", 12), ("OUTOFORDER", 5), ("INOPERATIVE", 3)]
EVSE_COUNTS = [1, 2, 2, 2, 3]  # about 2 EVSEs per location


@dataclass
class Block:
    """The rows of a run of consecutive locations, table by table."""

    rows: dict[str, list[tuple]]


class CatalogueGenerator:
    """Generates `count` locations of one CPO in blocks; ids start at 1 in every table."""

    def __init__(self, *, connection, cpo_id: int, seeds: list[Seed], facility_ids: list[int],
                 capability_ids: list[int], rng_seed: int = 2024):
        from locations.models import Connector, Evse, Location

        if not seeds:
            raise ValueError("no seed coordinates")
        self.seeds = seeds
        self.rng = random.Random(rng_seed)
        self.cpo_id = cpo_id
        self.facility_ids = facility_ids
        self.capability_ids = capability_ids
        now = datetime.now(UTC).replace(microsecond=0)
        self.location = TablePlan(
            Location, connection, now=now,
            per_row=["id", "ocpi_id", "name", "address", "city", "postal_code", "province", "address_lat",
                     "address_lng"],
            overrides={"cpo_id": cpo_id, "publish": True, "moderation": "PUBLISHED", "country": "DEU",
                       "time_zone": "Europe/Berlin", "region": ""})
        self.evse = TablePlan(Evse, connection, now=now, per_row=["id", "location_id", "uid", "evse_id", "status"],
                              overrides={"moderation": "PUBLISHED"})
        self.connector = TablePlan(
            Connector, connection, now=now,
            per_row=["id", "evse_id", "connector_id", "standard", "format", "power_type", "max_voltage",
                     "max_amperage", "max_electric_power"])
        facility_through = Location.facilities.through
        capability_through = Evse.capabilities.through
        self.facility_link = TablePlan(facility_through, connection, now=now,
                                       per_row=["id", "location_id", "facility_id"])
        self.capability_link = TablePlan(capability_through, connection, now=now,
                                         per_row=["id", "evse_id", "capability_id"])
        self.plans = [self.location, self.evse, self.connector, self.facility_link, self.capability_link]
        self.next_id = {plan.table: 1 for plan in self.plans}
        self._kinds = [kind for weight, kind in EVSE_KINDS for _ in range(weight)]
        self._statuses = [status for status, weight in STATUSES for _ in range(weight)]

    def _ids(self, plan: TablePlan) -> int:
        value = self.next_id[plan.table]
        self.next_id[plan.table] = value + 1
        return value

    def blocks(self, count: int, block_size: int = 50_000) -> Iterator[Block]:
        rng = self.rng
        loc_plan, evse_plan, conn_plan = self.location, self.evse, self.connector
        fac_plan, cap_plan = self.facility_link, self.capability_link
        for start in range(0, count, block_size):
            rows = {plan.table: [] for plan in self.plans}
            locs, evses, conns = rows[loc_plan.table], rows[evse_plan.table], rows[conn_plan.table]
            facs, caps = rows[fac_plan.table], rows[cap_plan.table]
            for _ in range(min(block_size, count - start)):
                seed = self.seeds[rng.randrange(len(self.seeds))]
                lat, lng = jitter(seed, rng)
                loc_id = self._ids(loc_plan)
                locs.append(loc_plan.row(loc_id, f"BENCH{loc_id}", f"Bench {loc_id}", f"Benchstraße {loc_id}",
                                         seed.city, seed.postal_code, seed.province, lat, lng))
                if self.facility_ids and rng.random() < 0.3:
                    for facility in rng.sample(self.facility_ids, rng.choice((1, 2))):
                        facs.append(fac_plan.row(self._ids(fac_plan), loc_id, facility))
                kind = rng.choice(self._kinds)  # one kind per site
                for e in range(1, rng.choice(EVSE_COUNTS) + 1):
                    evse_id = self._ids(evse_plan)
                    uid = f"BENCH{loc_id}-{e}"
                    evses.append(evse_plan.row(evse_id, loc_id, uid, f"DE*BCH*E{loc_id}*{e}",
                                               rng.choice(self._statuses)))
                    if self.capability_ids and rng.random() < 0.5:
                        for capability in rng.sample(self.capability_ids, 2):
                            caps.append(cap_plan.row(self._ids(cap_plan), evse_id, capability))
                    for c, (standard, fmt, power_type, volts, amps, watts) in enumerate(kind, 1):
                        conns.append(conn_plan.row(self._ids(conn_plan), evse_id, str(c), standard, fmt,
                                                   power_type, volts, amps, watts))
            yield Block(rows)

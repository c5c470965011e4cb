"""A location's time zone from its country, when the country leaves no choice: the one rule for every way
in (webhooks, CSV, registers) and out (the OCPI sender fills a 2.2.1 location stored without one).

The IANA table `zone.tab` lists each country's zones. A country with one zone (France, Denmark,
Great Britain) gives it. A country whose zones all keep the same clock also gives its first-listed,
principal zone: Germany lists Europe/Berlin and Europe/Busingen (an exclave on Zurich's zone, whose
clock is Berlin's), and a location's time zone only serves to read its local opening hours. Spain
(Canary Islands) or the US have zones with different clocks: there the column is required.
"""

from __future__ import annotations

import functools
import zoneinfo
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pycountry

# Instants across a year, so that zones with different daylight-saving rules tell apart.
_PROBES = [datetime(2025, month, 15, 12, tzinfo=timezone.utc) for month in (1, 4, 7, 10)]


@functools.cache
def _zones_by_country() -> dict[str, list[str]]:
    zones: dict[str, list[str]] = defaultdict(list)
    for directory in zoneinfo.TZPATH:
        table = Path(directory) / "zone.tab"
        if table.is_file():
            for line in table.read_text(encoding="utf-8").splitlines():
                if line and not line.startswith("#"):
                    country, _, zone, *_ = line.split("\t")
                    zones[country].append(zone)
            break
    return dict(zones)


@functools.cache
def country_time_zone(country: str) -> str | None:
    """`country` as ISO alpha-2 or alpha-3; None when it has zones with different clocks, or is unknown."""
    if not isinstance(country, str):
        return None
    zones = country_time_zones(country)
    if not zones:
        return None
    clocks = {tuple(probe.astimezone(zoneinfo.ZoneInfo(zone)).utcoffset() for probe in _PROBES) for zone in zones}
    return zones[0] if len(clocks) == 1 else None


def country_time_zones(country: str) -> list[str]:
    """All zones of the country (for the error message when it has several)."""
    if not isinstance(country, str):
        return []
    code = country.strip().upper()
    if len(code) not in (2, 3):
        return []
    found = pycountry.countries.get(**{"alpha_2" if len(code) == 2 else "alpha_3": code})
    return _zones_by_country().get(found.alpha_2, []) if found else []

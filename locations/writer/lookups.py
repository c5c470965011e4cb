"""The ids of lookup codes (connector types, facilities, capabilities...) for the writer."""

from __future__ import annotations

import time
from typing import Any

from django.db import connections, models, router, transaction
from django.db.models import signals as model_signals

from locations.models import Capability, ConnectorType, Facility, ParkingRestriction, ParkingTypeCode, PaymentType
from locations.validation import InvalidPayload

# --- Lookup codes: tiny tables, cached per process, checked at most every LOOKUP_RECHECK_SECONDS -------
# Operators may delete and re-add a code in the admin (and tests flush and reseed the tables): a cached id
# of a deleted row would fail the whole batch on a foreign key. So the cached maps are used only while a
# fingerprint of all the lookup tables (every id with its code, hashed by the database: one row, one
# query for all six tables) is the one they were read under; otherwise all six are read again, in one
# query as well. The fingerprint is asked at most every LOOKUP_RECHECK_SECONDS, by a batch that needs a
# code (it was a fifteenth of a location PUT's CPU, and a round trip); in between:
# - a change through the ORM in this process (the admin, a test) drops the maps at once (signals below);
# - a code the maps do not know reads the tables again before it is refused (a code just added);
# - a batch that fails on a foreign key (a code deleted elsewhere) is replayed with the tables read again
#   (services._apply_with_retry).
# What is left is a code renamed elsewhere being written under its old id for at most that long.

LOOKUP_MODELS = (ConnectorType, Facility, ParkingTypeCode, ParkingRestriction, Capability, PaymentType)
LOOKUP_RECHECK_SECONDS = 2.0
# alias -> (fingerprint, maps, when the fingerprint was last asked: time.monotonic())
_LOOKUP_CACHE: dict[str, tuple[Any, dict[type, dict[str, int]], float]] = {}


def _lookup_union(alias: str) -> str:
    qn = connections[alias].ops.quote_name
    return " UNION ALL ".join(
        f"SELECT {i} AS t, {qn('id')} AS id, {qn('code')} AS code FROM {qn(model._meta.db_table)}"
        for i, model in enumerate(LOOKUP_MODELS))


def _lookup_fingerprint(alias: str):
    connection = connections[alias]
    if connection.vendor == "postgresql":
        sql = f"SELECT md5(string_agg(t || ':' || id || ':' || code, ',' ORDER BY t, id)) FROM ({_lookup_union(alias)}) AS l"
    else:
        sql = f"SELECT group_concat(t || ':' || id || ':' || code, ',') FROM (SELECT * FROM ({_lookup_union(alias)}) ORDER BY t, id)"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _lookup_maps(alias: str) -> dict[type, dict[str, int]]:
    maps: dict[type, dict[str, int]] = {model: {} for model in LOOKUP_MODELS}
    with connections[alias].cursor() as cursor:
        cursor.execute(_lookup_union(alias))
        for t, id_, code in cursor.fetchall():
            maps[LOOKUP_MODELS[t]][code] = id_
    return maps


def lookups_forget() -> None:
    """Drop the per-process maps (the next batch reads the tables again)."""
    _LOOKUP_CACHE.clear()


# Databases where this process changed a lookup table in a transaction that has not committed (yet): maps
# read meanwhile may hold ids that a rollback undoes, so there the fingerprint is asked by every batch,
# as long as no commit of a lookup change follows.
_UNCOMMITTED: set[str] = set()


def _lookups_changed(sender, using: str, **kwargs) -> None:
    lookups_forget()
    if connections[using].in_atomic_block:
        _UNCOMMITTED.add(using)
        transaction.on_commit(lambda: _UNCOMMITTED.discard(using), using=using)


for _model in LOOKUP_MODELS:
    for _signal in (model_signals.post_save, model_signals.post_delete):
        _signal.connect(_lookups_changed, sender=_model, weak=False, dispatch_uid=f"lookups_changed_{_model.__name__}")


class _Lookups:
    def __init__(self) -> None:
        self.ids: dict[type, dict[str, int]] | None = None
        self.rechecked = False

    def _load(self, *, recheck: bool = False) -> dict[type, dict[str, int]]:
        alias = router.db_for_read(ConnectorType)
        cached = _LOOKUP_CACHE.get(alias)
        if (cached is not None and not recheck and alias not in _UNCOMMITTED
                and time.monotonic() - cached[2] < LOOKUP_RECHECK_SECONDS):
            return cached[1]
        asked = time.monotonic()
        fingerprint = _lookup_fingerprint(alias)
        # Read after the fingerprint: as new as it or newer; if newer, the next check reads them again.
        maps = cached[1] if cached is not None and cached[0] == fingerprint else _lookup_maps(alias)
        _LOOKUP_CACHE[alias] = (fingerprint, maps, asked)
        return maps

    def __call__(self, model: type[models.Model], codes: list[str], field_name: str) -> list[int]:
        if self.ids is None:
            self.ids = self._load()
        known = self.ids[model]
        try:
            return [known[code] for code in codes]
        except KeyError:
            pass
        if not self.rechecked:  # added since the maps were read?
            self.rechecked = True
            self.ids = self._load(recheck=True)
            known = self.ids[model]
        unknown = sorted(set(codes) - set(known))
        if unknown:
            raise InvalidPayload({field_name: f"unknown codes: {', '.join(unknown)}"})
        return [known[code] for code in codes]


"""The write engine behind `locations.services`: applies cleaned location changes in batches.

Every write of the catalogue, one location or a hundred thousand, is a list of `LocationChange`s applied
here with a constant number of queries per batch: the stored rows are read once, compared in Python, and
only what differs is written with bulk statements. The rules live here once: an older update is ignored
(`stale`), `last_updated` propagates connector -> EVSE -> location, a full location replaces its EVSE
list (EVSEs it no longer names become REMOVED, never deleted) and a full EVSE its connectors, new
locations and EVSEs start PENDING unless their CPO auto-publishes. A source that sends no timestamps
(portal, webhooks, CSV) gets `last_updated` set to the time of the write, and only when something changed.
"""

from __future__ import annotations

import json
import operator
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from typing import Any, Iterable, Iterator

from django.db import connections, models, router, transaction
from django.db.models import signals as model_signals
from django.db.models.base import ModelState
from django.utils import timezone

from locations import signals
from locations.enums import Moderation, Status
from locations.models import (
    Capability,
    Connector,
    ConnectorType,
    Cpo,
    Evse,
    Facility,
    Location,
    ParkingRestriction,
    ParkingTypeCode,
    PaymentType,
)
from locations.rows import converted, db_converters
from locations.validation import InvalidPayload

LOCATION_M2M = {"facilities": Facility, "parking_types": ParkingTypeCode, "parking_restrictions": ParkingRestriction}
EVSE_M2M = {"capabilities": Capability, "payment_types": PaymentType, "parking_restrictions": ParkingRestriction}


@dataclass
class Outcome:
    instance: Any = None
    created: bool = False
    changed: bool = False
    stale: bool = False


@dataclass
class ConnectorChange:
    connector_id: str
    values: dict
    type_code: str | None = None
    partial: bool = False
    outcome: Outcome = field(default_factory=Outcome)


@dataclass
class EvseChange:
    uid: str
    values: dict
    m2m: dict[str, list[str]] = field(default_factory=dict)
    connectors: list[ConnectorChange] | None = None
    replace_connectors: bool = True
    partial: bool = False
    outcome: Outcome = field(default_factory=Outcome)


@dataclass
class LocationChange:
    ocpi_id: str
    values: dict
    m2m: dict[str, list[str]] = field(default_factory=dict)
    evses: list[EvseChange] | None = None
    replace_evses: bool = True
    partial: bool = False
    outcome: Outcome = field(default_factory=Outcome)


# --- Building changes from cleaned OCPI objects (locations.validation output) -----------------------

def connector_change(clean: dict, *, partial: bool = False, connector_id: str | None = None) -> ConnectorChange:
    values = dict(clean)
    code = values.pop("connector_type_code", None)
    return ConnectorChange(connector_id or values["connector_id"], values, code, partial)


def evse_change(clean: dict, *, partial: bool = False, uid: str | None = None) -> EvseChange:
    values = dict(clean)
    connectors = values.pop("connectors", None)
    m2m = {name: values.pop(name) or [] for name in EVSE_M2M if name in values}
    return EvseChange(
        uid or values["uid"], values, m2m,
        None if connectors is None else [connector_change(c) for c in connectors], partial=partial,
    )


def location_change(clean: dict, *, partial: bool = False, replace_evses: bool = True,
                    ocpi_id: str | None = None) -> LocationChange:
    values = {k: v for k, v in clean.items() if k not in ("country_code", "party_id")}
    evses = values.pop("evses", None)
    m2m = {name: values.pop(name) or [] for name in LOCATION_M2M if name in values}
    return LocationChange(
        ocpi_id or values["ocpi_id"], values, m2m,
        None if evses is None else [evse_change(e) for e in evses], replace_evses, partial,
    )


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


# --- New instances ---------------------------------------------------------------------------------------
# An import of 100,000 rows makes 175,000 new objects. `Model(**kwargs)` looks every field up among the
# keywords and computes its default; positional values take Django's fast path (the one `from_db` uses)
# and cost a third as much. The defaults are computed once per model; callable ones (`default=list`)
# still run for every instance, so no two share a list.

_BLANKS: dict[type, tuple[dict[str, Any], list[tuple[str, Any]], list[tuple[str, Any]]]] = {}


def _blank(model: type[models.Model]) -> tuple[dict[str, Any], list[tuple[str, Any]], list[tuple[str, Any]]]:
    """(the non-callable defaults by attname, the callable ones, the relations by name)."""
    blank = _BLANKS.get(model)
    if blank is None:
        fields = model._meta.concrete_fields
        blank = _BLANKS[model] = (
            {f.attname: f.get_default() for f in fields if not (f.has_default() and callable(f.default))},
            [(f.attname, f.default) for f in fields if f.has_default() and callable(f.default)],
            [(f.name, f) for f in fields if f.is_relation],
        )
    return blank


def _new(model: type[models.Model], **values: Any) -> models.Model:
    """`model(**values)`, faster; `values` may name relations (`evse=evse`) as well as fields."""
    defaults, factories, relations = _blank(model)
    if _plain(model):
        # What __init__ does with positional values, without its per-field setattr: a new instance's
        # __dict__ filled directly (no field of these models has a descriptor that does more on a new one).
        obj = model.__new__(model)
        obj._state = ModelState()
        fields = obj.__dict__
        fields.update(defaults)
        for attname, factory in factories:
            fields[attname] = factory()
        for name, field_ in relations:
            if name in values:
                _relate(obj, field_, values.pop(name))
        fields.update(values)
        return obj
    return model(**values)


def _relate(obj: models.Model, field_: models.ForeignKey, parent: models.Model) -> None:
    """`obj.<field> = parent` for a new instance, as the foreign key's descriptor sets it (its database,
    the parent's id, the cached parent), without the descriptor's checks: both are the writer's own."""
    if obj._state.db is None:
        obj._state.db = router.db_for_write(type(obj), instance=parent)
    if parent._state.db is None:
        parent._state.db = router.db_for_write(type(parent), instance=obj)
    for local, remote in field_.related_fields:
        obj.__dict__[local.attname] = getattr(parent, remote.attname)
    field_.set_cached_value(obj, parent)


_PLAIN: dict[type, bool] = {}
# Names that set a related object (`evse.location = ...`) rather than a column: these go through setattr.
_RELATION_NAMES = {model: frozenset(f.name for f in model._meta.concrete_fields if f.is_relation)
                   for model in (Location, Evse, Connector)}


def _plain(model: type[models.Model]) -> bool:
    """No init signals and no field descriptor that acts when a value is set (a foreign key's only drops a
    cached object, which a new instance has not): its instances may be built by filling their __dict__."""
    plain = _PLAIN.get(model)
    if plain is None:
        from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute

        plain = not (model_signals.pre_init.has_listeners(model) or model_signals.post_init.has_listeners(model)) \
            and type(model).__init__ is type(models.Model).__init__ and model.__init__ is models.Model.__init__ \
            and all(type(model.__dict__.get(f.attname)) is ForeignKeyDeferredAttribute
                    or not hasattr(type(model.__dict__.get(f.attname)), "__set__")
                    for f in model._meta.concrete_fields)
        _PLAIN[model] = plain
    return plain


# --- Reading the stored rows ----------------------------------------------------------------------------
# Three reads per batch, always the same shape: the SQL is written here once per model (the ORM compiled
# it for every batch, most of the reading time of one location's PUT) and the rows become instances with
# the converters the ORM would apply (Model.from_db, as a queryset does).

_READERS: dict[tuple[type, str], tuple[str, list[str], list]] = {}


def _reader(model: type[models.Model], alias: str) -> tuple[str, list[str], list]:
    reader = _READERS.get((model, alias))
    if reader is None:
        connection = connections[alias]
        qn = connection.ops.quote_name
        table = model._meta.db_table
        fields = model._meta.concrete_fields
        select = f"SELECT {', '.join(f'{qn(table)}.{qn(f.column)}' for f in fields)} FROM {qn(table)} WHERE "
        reader = _READERS[(model, alias)] = (select, [f.attname for f in fields],
                                             db_converters(fields, table, connection))
    return reader


def _stored(model: type[models.Model], where: str, params: list, ids: list, *, for_update: bool = False) -> list:
    """`model.objects.filter(<where> IN ids)`, the where clause on the model's own columns."""
    if not ids:
        return []
    alias = router.db_for_write(model) if for_update else router.db_for_read(model)
    select, attnames, converters = _reader(model, alias)
    connection = connections[alias]
    sql = f"{select}{where} IN ({', '.join(['%s'] * len(ids))})"
    if for_update and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql, params + list(ids))
        rows = cursor.fetchall()
    from_db = model.from_db
    if converters:
        return [from_db(alias, attnames, converted(list(row), converters, connection)) for row in rows]
    return [from_db(alias, attnames, row) for row in rows]


# --- The engine ---------------------------------------------------------------------------------------

class _Batch:
    """One batch of changes for one CPO: read what is stored, decide, write in bulk."""

    def __init__(self, cpo: Cpo, changes: list[LocationChange]):
        self.cpo = cpo
        self.changes = changes
        self.now = timezone.now()
        self.initial = Moderation.PUBLISHED if cpo.auto_publish else Moderation.PENDING
        self.creates: dict[type, list] = defaultdict(list)
        self.updates: dict[type, dict[int, tuple[models.Model, set[str]]]] = defaultdict(dict)
        self.connector_deletes: list[int] = []
        self.m2m_wanted: list[tuple[str, models.Model, dict[str, list[str]]]] = []
        self.created_ids: set[int] = set()
        self.lookup_ids = _Lookups()

    def run(self) -> None:
        self._load()
        for change in self.changes:
            self._apply_location(change)
        self._write()

    # Reading
    def _load(self) -> None:
        with _fast_timestamps(router.db_for_read(Location)):
            self._read_stored()

    def _read_stored(self) -> None:
        ids = [change.ocpi_id for change in self.changes]
        self.locations = {
            loc.ocpi_id: loc for loc in _stored(Location, "cpo_id = %s AND ocpi_id", [self.cpo.pk], ids, for_update=True)
        }
        self.evses: dict[tuple[int, str], Evse] = {}
        self.evses_of: dict[int, list[Evse]] = defaultdict(list)
        for evse in _stored(Evse, "location_id", [], [loc.pk for loc in self.locations.values()]):
            self.evses[(evse.location_id, evse.uid)] = evse
            self.evses_of[evse.location_id].append(evse)
        self.connectors: dict[tuple[int, str], Connector] = {}
        self.connectors_of: dict[int, list[Connector]] = defaultdict(list)
        for connector in _stored(Connector, "evse_id", [], [evse.pk for evse in self.evses.values()]):
            self.connectors[(connector.evse_id, connector.connector_id)] = connector
            self.connectors_of[connector.evse_id].append(connector)

    # Deciding
    def _apply_location(self, change: LocationChange) -> None:
        location = self.locations.get(change.ocpi_id)
        incoming = _newest(change.values.get("last_updated"), change.evses)
        if location is None:
            if change.partial:
                raise Location.DoesNotExist(f"location {change.ocpi_id!r} does not exist")
            location = _new(Location, cpo=self.cpo, moderation=self.initial, ocpi_id=change.ocpi_id)
            self.locations[change.ocpi_id] = location
        elif change.values.get("last_updated") and location.last_updated > incoming:
            change.outcome = Outcome(location, stale=True)
            return
        created = location.pk is None
        values = dict(change.values)
        auto_stamp = values.get("last_updated", False) is None
        if values.get("last_updated"):
            values["last_updated"] = incoming if created or not change.partial \
                else max(incoming, location.last_updated)
        if auto_stamp:
            del values["last_updated"]
        changed = self._assign(location, values, created)
        if change.m2m:
            self.m2m_wanted.append(("location", location, change.m2m))
            changed |= self._m2m_differs(location, change.m2m, LOCATION_M2M)
        children_changed = False
        if change.evses is not None:
            children_changed = self._apply_evses(location, change, removed_at=incoming or self.now)
        newest_child = max((e.outcome.instance.last_updated for e in change.evses or ()
                            if e.outcome.changed), default=None)
        if auto_stamp and (changed or children_changed or created):
            newest_child = self.now
        if newest_child and (location.last_updated is None or newest_child > location.last_updated):
            self._assign(location, {"last_updated": newest_child}, created)
            changed = True
        change.outcome = Outcome(location, created=created, changed=changed or children_changed or created)

    def _apply_evses(self, location: Location, change: LocationChange, *, removed_at: datetime) -> bool:
        stored = {} if location.pk is None else {e.uid: e for e in self.evses_of.get(location.pk, [])}
        changed = False
        for evse_change_ in change.evses:
            changed |= self._apply_evse(location, stored.pop(evse_change_.uid, None), evse_change_)
        if change.replace_evses:
            for evse in stored.values():
                if evse.status != Status.REMOVED:
                    self._assign(evse, {"status": Status.REMOVED, "last_updated": removed_at}, False)
                    changed = True
        return changed

    def _apply_evse(self, location: Location, evse: Evse | None, change: EvseChange) -> bool:
        incoming = _newest(change.values.get("last_updated"), change.connectors)
        if evse is None:
            if change.partial:
                raise Evse.DoesNotExist(f"EVSE {change.uid!r} does not exist")
            evse = _new(Evse, location=location, moderation=self.initial, uid=change.uid)
        elif change.values.get("last_updated") and evse.last_updated > incoming:
            change.outcome = Outcome(evse, stale=True)
            return False
        created = evse.pk is None
        values = dict(change.values)
        auto_stamp = values.get("last_updated", False) is None
        if values.get("last_updated"):
            values["last_updated"] = incoming if created or not change.partial else max(incoming, evse.last_updated)
        if auto_stamp:
            del values["last_updated"]
        changed = self._assign(evse, values, created)
        if change.m2m:
            self.m2m_wanted.append(("evse", evse, change.m2m))
            changed |= self._m2m_differs(evse, change.m2m, EVSE_M2M)
        if change.connectors is not None:
            changed |= self._apply_connectors(evse, change)
        newest_child = max((c.outcome.instance.last_updated for c in change.connectors or ()
                            if c.outcome.changed), default=None)
        if auto_stamp and (changed or created):
            newest_child = self.now
        if newest_child and (evse.last_updated is None or newest_child > evse.last_updated):
            self._assign(evse, {"last_updated": newest_child}, created)
            changed = True
        change.outcome = Outcome(evse, created=created, changed=changed or created)
        return change.outcome.changed

    def _apply_connectors(self, evse: Evse, change: EvseChange) -> bool:
        stored = {} if evse.pk is None else {c.connector_id: c for c in self.connectors_of.get(evse.pk, [])}
        changed = False
        for item in change.connectors:
            changed |= self._apply_connector(evse, stored.pop(item.connector_id, None), item)
        if change.replace_connectors and stored:
            self.connector_deletes.extend(c.pk for c in stored.values())
            changed = True
        return changed

    def _apply_connector(self, evse: Evse, connector: Connector | None, change: ConnectorChange) -> bool:
        if connector is None:
            if change.partial:
                raise Connector.DoesNotExist(f"connector {change.connector_id!r} does not exist")
            connector = _new(Connector, evse=evse, connector_id=change.connector_id)
        elif change.values.get("last_updated") and connector.last_updated > change.values["last_updated"]:
            change.outcome = Outcome(connector, stale=True)
            return False
        created = connector.pk is None
        values = dict(change.values)
        auto_stamp = values.get("last_updated", False) is None
        if auto_stamp:
            del values["last_updated"]
        if change.type_code is not None:
            values["connector_type_id"] = self.lookup_ids(ConnectorType, [change.type_code], "standard")[0]
        changed = self._assign(connector, values, created)
        if auto_stamp and (changed or created):
            self._assign(connector, {"last_updated": self.now}, created)
        change.outcome = Outcome(connector, created=created, changed=changed or created)
        return change.outcome.changed

    def _assign(self, instance: models.Model, values: dict, created: bool) -> bool:
        """Set values on the instance; remember it for a bulk insert or an update of changed fields."""
        if created:
            if _plain(type(instance)) and not _RELATION_NAMES.get(type(instance), frozenset()).intersection(values):
                instance.__dict__.update(values)  # see _new: a new plain instance's fields are its __dict__
            else:
                for name, value in values.items():
                    setattr(instance, name, value)
            if id(instance) not in self.created_ids:
                self.created_ids.add(id(instance))
                self.creates[type(instance)].append(instance)
            return True
        changed = {name for name, value in values.items() if getattr(instance, name) != value}
        if not changed:
            return False
        for name in changed:
            setattr(instance, name, values[name])
        instance.date_modified = self.now
        _, fields = self.updates[type(instance)].setdefault(instance.pk, (instance, set()))
        fields.update(changed | {"date_modified"})
        return True

    def _m2m_differs(self, owner: models.Model, wanted: dict[str, list[str]], relations: dict) -> bool:
        if owner.pk is None:
            return any(wanted.values())
        current = self._current_m2m(type(owner), relations)
        return any(
            set(self.lookup_ids(relations[name], codes, name)) != current[name].get(owner.pk, set())
            for name, codes in wanted.items()
        )

    def _current_m2m(self, owner_type: type, relations: dict) -> dict[str, dict[int, set[int]]]:
        cache = self.__dict__.setdefault("_m2m_cache", {})
        if owner_type not in cache:
            # Only owners that were stored before this batch can have through rows. Asking for the new ones
            # too (their ids exist once they are inserted) read nothing, by a scan of the whole through
            # table when its statistics are stale: one scan per batch, quadratic over an import.
            # The location and the EVSE relations are read together, in one query.
            wanted = {}
            for model, rels in ((Location, LOCATION_M2M), (Evse, EVSE_M2M)):
                if model in cache:
                    continue
                stored = self.locations.values() if model is Location else self.evses.values()
                wanted[model] = (rels, [o.pk for o in stored if o.pk is not None and id(o) not in self.created_ids])
            cache.update(_through_rows_many(wanted))
        return cache[owner_type]

    # Writing
    def _write(self) -> None:
        new = {model: self.creates.get(model, []) for model in (Location, Evse, Connector)}
        inserts = _Inserts(router.db_for_write(Location), self.now)
        inserts.reserve_ids(new)  # ids of the new rows, before any insert: children name their parents
        for model, objs in new.items():
            for obj in objs:
                if model is Evse:
                    obj.location_id = obj.location.pk
                elif model is Connector:
                    obj.evse_id = obj.evse.pk
            if objs:
                inserts.add(model, objs)
        self._write_m2m(inserts)
        few = sum(len(self.updates.get(model, ())) for model in (Location, Evse, Connector)) < COPY_FROM
        for model in (Location, Evse, Connector):
            updates = self.updates.get(model, {})
            if updates and few and inserts.update(model, updates.values()):
                continue  # with the inserts: one round trip
            if updates:
                fields = sorted(set().union(*(fields for _, fields in updates.values())))
                fields = [model._meta.get_field(name).name for name in fields]
                model.objects.bulk_update([obj for obj, _ in updates.values()], fields, batch_size=500)
        inserts.run()
        if self.connector_deletes:
            Connector.objects.filter(pk__in=self.connector_deletes).delete()
        signals.send_locations_changed(change.outcome.instance.pk for change in self.changes if change.outcome.changed)

    def _write_m2m(self, inserts: "_Inserts") -> None:
        """Per through table: one DELETE of the pairs no longer wanted, the new pairs with the inserts."""
        for kind, relations, model in (("location", LOCATION_M2M, Location), ("evse", EVSE_M2M, Evse)):
            wanted = [(owner, m2m) for k, owner, m2m in self.m2m_wanted if k == kind]
            if not wanted:
                continue
            current = self._current_m2m(model, relations)
            for name, lookup in relations.items():
                through = getattr(model, name).through
                owner_col, lookup_col = _through_columns(model, name)
                remove, add = [], []
                for owner, m2m in wanted:
                    if name not in m2m:
                        continue
                    want = set(self.lookup_ids(lookup, m2m[name], name))
                    have = current[name].get(owner.pk, set())
                    if want == have:
                        continue
                    remove += [(owner.pk, lid) for lid in have - want]
                    add += [(owner.pk, lid) for lid in want - have]
                    current[name][owner.pk] = want
                if remove:
                    condition = models.Q()
                    for owner_pk, lid in remove:
                        condition |= models.Q(**{owner_col: owner_pk, lookup_col: lid})
                    through.objects.filter(condition).delete()
                if add:
                    inserts.add_pairs(through, owner_col, lookup_col, add)


# --- Inserting new rows --------------------------------------------------------------------------------
# On PostgreSQL many new rows go in with COPY: bulk_create spent most of an import building its INSERT (a
# prepared value per field and row) and having psycopg render the parameters, COPY streams the rows as
# they are. COPY returns no ids, so the ids are drawn from the tables' sequences first, one query for all
# the tables of a batch. A few rows (one location PUT: a location, its EVSEs and connectors, a few
# through rows) go in as plain multi-row INSERTs instead, all of them in one statement batch (one round
# trip): a COPY costs more round trips than it saves below COPY_FROM rows. Other databases (SQLite, the
# embedded default) keep bulk_create. All paths store the same rows (tests/locations/test_writer_copy.py).

COPY_FROM = 50  # rows of one table from which COPY is used


def _uses_copy(model: type[models.Model]) -> str | None:
    """The alias of the database to COPY into, or None when its backend has no COPY."""
    alias = router.db_for_write(model)
    return alias if connections[alias].vendor == "postgresql" else None


class _Inserts:
    """The new rows of a batch: ids reserved in one query, then COPY per big table, one INSERT batch for the rest."""

    def __init__(self, alias: str, now: datetime):
        self.alias = alias
        self.now = now
        self.statements: list[tuple[str, list]] = []
        self.copies: list[tuple[str, list[str], Any]] = []

    def reserve_ids(self, new: dict[type, list[models.Model]]) -> None:
        wanted = [(model, objs) for model, objs in new.items() if objs]
        if not wanted or _uses_copy(wanted[0][0]) is None:
            return
        connection = connections[self.alias]
        branches, params = [], []
        for i, (model, objs) in enumerate(wanted):
            branches.append(f"(SELECT {i}, nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s))")
            params += [model._meta.db_table, model._meta.pk.column, len(objs)]
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(branches), params)
            ids: dict[int, list[int]] = defaultdict(list)
            for i, pk in cursor.fetchall():
                ids[i].append(pk)
        for i, (model, objs) in enumerate(wanted):
            for obj, pk in zip(objs, ids[i]):
                obj.pk = pk

    def add(self, model: type[models.Model], objs: list[models.Model]) -> None:
        """New instances (their pk reserved on PostgreSQL); after run() each is no longer `adding`."""
        if _uses_copy(model) is None:  # at once: the children's foreign keys need these ids
            model.objects.bulk_create(objs, batch_size=500)
            return
        opts = model._meta
        fields = opts.concrete_fields
        # auto_now(_add) fields are filled here, as their pre_save would; one instant for the whole batch.
        stamped = [f.attname for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
        for obj in objs:
            for attname in stamped:
                setattr(obj, attname, self.now)
        connection = connections[self.alias]
        values_of = operator.attrgetter(*(f.attname for f in fields))
        converted = [(i, convert) for i, f in enumerate(fields) if (convert := _copy_value(f, connection))]

        def rows() -> Iterator[list]:
            for obj in objs:
                row = list(values_of(obj))
                for i, convert in converted:
                    row[i] = convert(row[i])
                yield row

        self._rows(opts.db_table, [f.column for f in fields], rows(), len(objs))
        for obj in objs:
            obj._state.adding = False
            obj._state.db = self.alias

    def add_pairs(self, through: type[models.Model], owner_col: str, lookup_col: str,
                  pairs: list[tuple[int, int]]) -> None:
        """M2M through rows (owner id, lookup id); their own ids are the table's default."""
        if _uses_copy(through) is None:
            through.objects.bulk_create([through(**{owner_col: owner, lookup_col: lookup}) for owner, lookup in pairs],
                                        batch_size=1000)
            return
        self._rows(through._meta.db_table, [owner_col, lookup_col], pairs, len(pairs))

    def update(self, model: type[models.Model], updates: Iterable[tuple[models.Model, set[str]]]) -> bool:
        """A few changed rows as an UPDATE each (of the fields that changed), sent with the inserts; False
        where the backend has no such batch (bulk_update then)."""
        if _uses_copy(model) is None:
            return False
        connection = connections[self.alias]
        qn = connection.ops.quote_name
        opts = model._meta
        for obj, names in updates:
            fields = [opts.get_field(name) for name in sorted(names)]
            params = []
            for f in fields:
                convert = _copy_value(f, connection)
                value = getattr(obj, f.attname)
                params.append(convert(value) if convert else value)
            params.append(obj.pk)
            self.statements.append((
                f"UPDATE {qn(opts.db_table)} SET {', '.join(f'{qn(f.column)} = %s' for f in fields)} "
                f"WHERE {qn(opts.pk.column)} = %s", params))
        return True

    def _rows(self, table: str, columns: list[str], rows: Iterable, count: int) -> None:
        if count >= COPY_FROM:
            self.copies.append((table, columns, rows))
            return
        qn = connections[self.alias].ops.quote_name
        placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
        params: list = []
        for row in rows:
            params.extend(row)
        self.statements.append((
            f"INSERT INTO {qn(table)} ({', '.join(map(qn, columns))}) VALUES "
            + ", ".join([placeholders] * count), params))

    def run(self) -> None:
        if not (self.statements or self.copies):
            return
        with connections[self.alias].cursor() as cursor:
            for table, columns, rows in self.copies:
                _copy(cursor, table, columns, rows)
            if self.statements:
                # One round trip: Django's psycopg cursor binds on the client, so the statements go as one.
                cursor.execute("; ".join(sql for sql, _ in self.statements),
                               [param for _, params in self.statements for param in params])


def _copy(cursor, table: str, columns: list[str], rows: Iterable) -> None:
    from psycopg import sql  # only on PostgreSQL, where psycopg is installed

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


# Field classes whose Python value psycopg writes exactly as Django's get_db_prep_save would (text,
# numbers, booleans, aware datetimes, decimals, foreign key ids): written as they are. The classes are
# matched exactly, not by subclass: a subclass may prepare its value. Everything else goes through its
# field. The validation hands the writer clean values of the right type already.
_AS_IS = frozenset({
    models.CharField, models.URLField, models.IntegerField, models.PositiveIntegerField, models.BigIntegerField,
    models.FloatField, models.BooleanField, models.DateTimeField, models.DecimalField, models.ForeignKey,
    models.AutoField, models.BigAutoField,
})


def _copy_value(field_: models.Field, connection):
    if type(field_) is models.JSONField:
        encode = (field_.encoder or json.JSONEncoder)().encode
        # None stays SQL NULL, as in get_db_prep_save; anything else is the JSON text. Most values are
        # empty lists (no images, no directions, ...): their text is known.
        return lambda value: None if value is None else "[]" if value == [] else encode(value)
    if type(field_) in _AS_IS:
        return None
    return lambda value: field_.get_db_prep_save(value, connection)


@contextmanager
def _fast_timestamps(alias: str) -> Iterator[None]:
    """While the stored rows of a batch are read, let psycopg's C loader parse timestamptz values.

    Django registers a loader of its own, a subclass of psycopg's pure-Python one (to set the tzinfo):
    it took most of the time of reading a batch's rows (three timestamps per location, EVSE and
    connector), several times what the C loader takes. When the session runs in UTC, the C loader
    returns the same values with the same tzinfo (datetime.timezone.utc) as Django's, so it stands in
    for the reads of the batch, and Django's is put back after.
    """
    connection = connections[alias]
    if connection.vendor != "postgresql":
        yield
        return
    from psycopg import adapters as psycopg_adapters  # only on PostgreSQL, where psycopg is installed
    from psycopg.pq import Format

    connection.ensure_connection()
    adapters = connection.connection.adapters
    oid = psycopg_adapters.types["timestamptz"].oid
    django_loader = adapters.get_loader(oid, Format.TEXT)
    c_loader = psycopg_adapters.get_loader(oid, Format.TEXT)  # the C one when psycopg[binary] is installed
    if (connection.timezone_name != "UTC" or getattr(django_loader, "timezone", None) is not dt_timezone.utc
            or c_loader is None or "psycopg_binary" not in c_loader.__module__):
        yield
        return

    class UtcLoader:
        # The C class cannot be subclassed; Django reads `timezone` off the registered loader when it
        # opens a cursor (and re-registers its own if it differs), psycopg reads `format`.
        timezone = dt_timezone.utc
        format = Format.TEXT

        def __new__(cls, oid_, context=None):
            return c_loader(oid_, context)

    adapters.register_loader(oid, UtcLoader)
    try:
        yield
    finally:
        adapters.register_loader(oid, django_loader)


def _through_columns(model: type, name: str) -> tuple[str, str]:
    field_ = model._meta.get_field(name)
    return field_.m2m_column_name(), field_.m2m_reverse_name()


def _through_rows_many(wanted: dict[type, tuple[dict, list[int]]]) -> dict[type, dict[str, dict[int, set[int]]]]:
    """The stored through rows of the given owners, {owner model: {relation: {owner id: {lookup ids}}}}; one query."""
    result: dict[type, dict[str, dict[int, set[int]]]] = {}
    branches, params, keys = [], [], []
    alias = None
    for model, (relations, owner_ids) in wanted.items():
        result[model] = {name: defaultdict(set) for name in relations}
        if not owner_ids:
            continue
        for name in relations:
            through = getattr(model, name).through
            owner_col, lookup_col = _through_columns(model, name)
            alias = router.db_for_read(through)
            qn = connections[alias].ops.quote_name
            branches.append(f"SELECT {len(keys)}, {qn(owner_col)}, {qn(lookup_col)} FROM {qn(through._meta.db_table)} "
                            f"WHERE {qn(owner_col)} IN ({', '.join(['%s'] * len(owner_ids))})")
            params += owner_ids
            keys.append((model, name))
    if branches:
        with connections[alias].cursor() as cursor:
            cursor.execute(" UNION ALL ".join(branches), params)
            for key, owner_id, lookup_id in cursor.fetchall():
                model, name = keys[key]
                result[model][name][owner_id].add(lookup_id)
    return result


def _newest(own: datetime | None, children: list | None) -> datetime | None:
    """An object is as new as its newest part: OCPI's `last_updated` covers the children too."""
    stamps = [own] if own else []
    for child in children or ():
        grandchildren = getattr(child, "connectors", None)
        stamp = _newest(child.values.get("last_updated"), grandchildren)
        if stamp:
            stamps.append(stamp)
    return max(stamps) if stamps else None


def changes_apply(*, cpo: Cpo, changes: list[LocationChange]) -> list[LocationChange]:
    """Apply the changes (ids unique within the list) in one batch; the caller holds the transaction."""
    _Batch(cpo, changes).run()
    return changes

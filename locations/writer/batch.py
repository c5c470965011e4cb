"""The engine: one batch of changes for one CPO, read, decided and written in a constant number of queries."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import connections, models, router
from django.utils import timezone

from locations import signals
from locations.enums import Moderation, Status
from locations.models import Connector, ConnectorType, Cpo, Evse, Location
from locations.writer import inserts as inserting
from locations.writer.changes import EVSE_M2M, LOCATION_M2M, ConnectorChange, EvseChange, LocationChange, Outcome
from locations.writer import new_rows, public_evses
from locations.writer.lookups import _Lookups
from locations.writer.stored import (
    _RELATION_NAMES,
    _fast_timestamps,
    _new,
    _plain,
    _stored,
    _through_columns,
    _through_rows_many,
)

# --- The engine ---------------------------------------------------------------------------------------

ROWS_FOR_NEW = True  # new locations written as rows (new_rows); False: as instances, as every other change


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
        self.alias = router.db_for_write(Location)
        # New locations as rows straight from their values where the inserts take rows (new_rows).
        self.new_rows = ROWS_FOR_NEW and inserting._uses_copy(Location) is not None and new_rows.usable()

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
            if self.new_rows:
                new_rows.location_created(self, change)
                return
            location = _new(Location, cpo=self.cpo, moderation=self.initial, ocpi_id=change.ocpi_id)
            self.locations[change.ocpi_id] = location
        elif change.values.get("last_updated") and location.last_updated > incoming:
            change.outcome = Outcome(location, stale=True)
            return
        created = location.pk is None
        values, auto_stamp = _stamped_values(change, location, incoming, created)
        changed = self._assign(location, values, created)
        if change.m2m:
            self.m2m_wanted.append(("location", location, change.m2m))
            changed |= self._m2m_differs(location, change.m2m, LOCATION_M2M)
        children_changed = False
        if change.evses is not None:
            children_changed = self._apply_evses(location, change, removed_at=incoming or self.now)
        changed |= self._stamp_newest(location, change.evses, auto_stamp, changed or children_changed or created,
                                      created)
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
        values, auto_stamp = _stamped_values(change, evse, incoming, created)
        changed = self._assign(evse, values, created)
        if change.m2m:
            self.m2m_wanted.append(("evse", evse, change.m2m))
            changed |= self._m2m_differs(evse, change.m2m, EVSE_M2M)
        if change.connectors is not None:
            changed |= self._apply_connectors(evse, change)
        changed |= self._stamp_newest(evse, change.connectors, auto_stamp, changed or created, created)
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

    def _stamp_newest(self, instance: models.Model, parts: list | None, auto_stamp: bool, touched: bool,
                      created: bool) -> bool:
        """`last_updated` raised to the newest changed part's, or to now when the source sends no
        timestamps and the object was touched; True when it was raised."""
        newest = max((part.outcome.instance.last_updated for part in parts or () if part.outcome.changed),
                     default=None)
        if auto_stamp and touched:
            newest = self.now
        if newest and (instance.last_updated is None or newest > instance.last_updated):
            self._assign(instance, {"last_updated": newest}, created)
            return True
        return False

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
        inserts = inserting._Inserts(router.db_for_write(Location), self.now)
        inserts.reserve_ids(new)  # ids of the new rows, before any insert: children name their parents
        for model, objs in new.items():
            for obj in objs:
                if type(obj) is new_rows.Row:
                    if model is not Location:
                        obj["location_id" if model is Evse else "evse_id"] = obj.parent.pk
                elif model is Evse:
                    obj.location_id = obj.location.pk
                elif model is Connector:
                    obj.evse_id = obj.evse.pk
            if objs:
                inserts.add(model, objs)
        self._write_m2m(inserts)
        few = sum(len(self.updates.get(model, ())) for model in (Location, Evse, Connector)) < inserting.COPY_FROM
        # Each changed location's public EVSEs (models.PublicEvses) once after the batch, instead of by the
        # triggers after each of its statements (an EVSE's insert, then its connectors'...): PostgreSQL's
        # CPU per pulled location went from 0.385-0.393 ms to 0.27-0.29 ms (0.24-0.26 without the table; 100,000
        # locations, bench/bench_ocpi_pull.py). In the batch's own round trips.
        refreshed = self._changed_location_ids() if inserting._uses_copy(Location) is not None else []
        if refreshed:
            if few:
                inserts.steps.insert(0, public_evses.DEFER)
            else:  # bulk_update's statements go first
                self._statements(public_evses.DEFER)
        for model in (Location, Evse, Connector):
            updates = self.updates.get(model, {})
            if updates and few and inserts.update(model, updates.values()):
                continue  # with the inserts: one round trip
            if updates:
                fields = sorted(set().union(*(fields for _, fields in updates.values())))
                fields = [model._meta.get_field(name).name for name in fields]
                model.objects.bulk_update([obj for obj, _ in updates.values()], fields, batch_size=500)
        if refreshed and not self.connector_deletes:
            inserts.steps.append(public_evses.refresh(refreshed))
        inserts.run()
        if self.connector_deletes:
            Connector.objects.filter(pk__in=self.connector_deletes).delete()
            if refreshed:
                self._statements(public_evses.refresh(refreshed))
        signals.send_locations_changed(change.outcome.pk for change in self.changes if change.outcome.changed)

    def _statements(self, *steps: tuple[str, str, list]) -> None:
        """Steps of the inserts' kind ("sql", statement, params) at once, in one round trip."""
        with connections[self.alias].cursor() as cursor:
            inserting._statements(cursor, list(steps))

    def _changed_location_ids(self) -> list[int]:
        """The locations this batch changes (or whose EVSEs or connectors it changes)."""
        ids = set()
        for change in self.changes:
            outcome = change.outcome
            if outcome.instance is not None and (outcome.changed or any(
                    evse.outcome.changed for evse in change.evses or ())):
                ids.add(outcome.pk)
        return sorted(ids)

    def _write_m2m(self, inserts: inserting._Inserts) -> None:
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
                    have = current[name].get(owner.pk, set())
                    if not m2m[name] and not have:
                        continue  # nothing wanted, nothing stored (most relations of a new object)
                    want = set(self.lookup_ids(lookup, m2m[name], name))
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



def _stamped_values(change: LocationChange | EvseChange, instance: models.Model, incoming: datetime | None,
                    created: bool) -> tuple[dict, bool]:
    """The change's values to assign, and whether the source sent no timestamps (`last_updated` None: it is
    stamped with the time of the write instead). A given `last_updated` is the newest of the object and
    its parts (`incoming`), and a partial update never moves a stored one back."""
    values = dict(change.values)
    auto_stamp = values.get("last_updated", False) is None
    if values.get("last_updated"):
        values["last_updated"] = incoming if created or not change.partial else max(incoming, instance.last_updated)
    if auto_stamp:
        del values["last_updated"]
    return values, auto_stamp


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

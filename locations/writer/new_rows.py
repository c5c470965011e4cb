"""New locations written straight from their validated values: rows, not model instances.

A location that is not stored yet (a peer's first pull creates every one it receives) needs no comparison
with anything: its row, its EVSEs' and its connectors' are its cleaned values over the models' defaults.
Building a model instance for each of them (seven per location, each related to its parent), deciding
through the general path and reading the instance back for COPY was about a third of a pulled location's
CPU in the writing process (profile of 5,000 pulled locations: 58 of 230 us deciding and building, plus
the COPY rows read off the instances). Here each object is a `Row` (a dict by attname, which COPY reads
with one itemgetter) and its instance is made only if someone asks for it (`RowOutcome.instance`: a pull
only counts what was created; a PUT's answer asks for its location).

The rules are the general path's (`_Batch._apply_location` with nothing stored), written for that case:
`last_updated` is the newest of the object and its parts, or the time of the write when the source sends
none; new locations and EVSEs take the CPO's initial moderation; connectors get their type's lookup id;
M2M codes go into the batch's list of wanted through rows in the same order. PostgreSQL only (ids are
reserved before the inserts; bulk_create elsewhere wants instances). Both paths store the same rows and
report the same outcomes: tests/locations/test_writer_new_rows.py.
"""

from __future__ import annotations

from datetime import datetime
from operator import itemgetter
from typing import Any

from django.db import models

from locations.models import Connector, ConnectorType, Evse, Location
from locations.writer.changes import ConnectorChange, EvseChange, LocationChange, Outcome
from locations.writer.stored import _blank, _plain

_MODELS = (Location, Evse, Connector)


class Row(dict):
    """A new row by attname; what the batch engine asks of a new instance: its pk (reserved before the
    inserts) and its parent (whose pk becomes its foreign key then)."""

    __slots__ = ("parent",)

    @property
    def pk(self) -> int | None:
        return self["id"]

    @pk.setter
    def pk(self, value: int) -> None:
        self["id"] = value


class RowOutcome(Outcome):
    """A created object's Outcome whose instance is made from its row when first asked for, as a queryset
    would read it back (`from_db`), with its parent cached as the general path's instance has it."""

    def __init__(self, model: type[models.Model], row: Row, parent: Any, alias: str):
        self.created = self.changed = True
        self.stale = False
        self._model, self._row, self._parent, self._alias = model, row, parent, alias
        self._instance = None

    @property
    def pk(self) -> int | None:
        return self._row["id"]

    @property
    def instance(self) -> models.Model:
        if self._instance is None:
            attnames, relation = _shape(self._model)
            obj = self._model.from_db(self._alias, attnames, itemgetter(*attnames)(self._row))
            parent = self._parent.instance if isinstance(self._parent, Outcome) else self._parent
            relation.set_cached_value(obj, parent)
            self._instance = obj
        return self._instance


_SHAPES: dict[type, tuple[list[str], Any]] = {}


def _shape(model: type[models.Model]) -> tuple[list[str], Any]:
    """(the attnames of the concrete fields, the foreign key to the parent)."""
    shape = _SHAPES.get(model)
    if shape is None:
        parent = {Location: "cpo", Evse: "location", Connector: "evse"}[model]
        shape = _SHAPES[model] = ([f.attname for f in model._meta.concrete_fields], model._meta.get_field(parent))
    return shape


def usable() -> bool:
    """Rows stand in for instances where the instances would be plain (stored._plain: no init signals, no
    field descriptor that acts) and the primary keys are `id`, as Row.pk assumes."""
    return all(_plain(model) and model._meta.pk.attname == "id" for model in _MODELS)


def _row(model: type[models.Model], fixed: dict, values: dict) -> Row:
    """The model's defaults (callable ones called, for the fields not given), then what the writer fixes
    (`_new`'s keywords), then the cleaned values, in the order the general path assigns them."""
    defaults, factories, _ = _blank(model)
    row = Row(defaults)
    for attname, factory in factories:
        if attname not in values:
            row[attname] = factory()
    row.update(fixed)
    row.update(values)  # the change's own dict is left as it is (a None last_updated too: stamped after)
    return row


def location_created(batch, change: LocationChange) -> None:
    """`batch._apply_location(change)` for a location not stored (and a full change): its rows and their
    through rows added to the batch's inserts, its outcome set on every level."""
    _created(batch, Location, {"cpo_id": batch.cpo.pk, "moderation": batch.initial, "ocpi_id": change.ocpi_id},
             change, batch.cpo, None, "location", change.evses, _evse_created)


def _evse_created(batch, location: Row, parent: RowOutcome, change: EvseChange) -> tuple[datetime | None, datetime | None]:
    return _created(batch, Evse, {"moderation": batch.initial, "uid": change.uid}, change, parent, location, "evse",
                    change.connectors, _connector_created)


def _created(batch, model: type[models.Model], fixed: dict, change, parent, parent_row: Row | None, m2m_kind: str,
             parts, part_created) -> tuple[datetime | None, datetime | None]:
    """A new location or EVSE: its row (a child of `parent_row`), its outcome, its through rows wanted, then
    each of its `parts` (EVSEs, connectors) by `part_created`. Returns (its last_updated as stored, the
    newest timestamp given in it)."""
    values = change.values
    own = values.get("last_updated")
    auto_stamp = own is None and "last_updated" in values
    row = _row(model, fixed, values)
    if parent_row is not None:
        row.parent = parent_row
    batch.creates[model].append(row)
    change.outcome = outcome = RowOutcome(model, row, parent, batch.alias)
    if change.m2m:
        batch.m2m_wanted.append((m2m_kind, row, change.m2m))
    # `newest`: of the parts as stored (what _stamp_newest raises to: every part of a new object is changed);
    # `given`: the newest timestamp the source gave in the whole object (what _newest computes).
    newest, given = None, own
    for part in parts or ():
        stamp, given_below = part_created(batch, row, outcome, part)
        newest, given = _later(newest, stamp), _later(given, given_below)
    if own:  # _stamped_values: a given last_updated is the newest of the object and its parts
        row["last_updated"] = given
    _stamp_newest(batch, row, newest, auto_stamp)
    return row["last_updated"], given


def _connector_created(batch, evse: Row, parent: RowOutcome,
                       change: ConnectorChange) -> tuple[datetime | None, datetime | None]:
    values = change.values
    given = values.get("last_updated")
    row = _row(Connector, {"connector_id": change.connector_id}, values)
    if given is None and "last_updated" in values:
        row["last_updated"] = batch.now  # a source without timestamps: stamped with the time of the write
    if change.type_code is not None:
        row["connector_type_id"] = batch.lookup_ids(ConnectorType, [change.type_code], "standard")[0]
    row.parent = evse
    batch.creates[Connector].append(row)
    change.outcome = RowOutcome(Connector, row, parent, batch.alias)
    return row["last_updated"], given


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None or (a is not None and a >= b) else b


def _stamp_newest(batch, row: Row, newest: datetime | None, auto_stamp: bool) -> None:
    """_Batch._stamp_newest for a new object (always touched)."""
    if auto_stamp:
        newest = batch.now
    if newest and (row["last_updated"] is None or newest > row["last_updated"]):
        row["last_updated"] = newest

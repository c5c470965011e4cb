"""The writer's instances: new ones built fast, stored ones read in one query per model and batch."""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from datetime import timezone as dt_timezone
from typing import Any, Iterator

from django.db import connections, models, router
from django.db.models import signals as model_signals
from django.db.models.base import ModelState

from locations.models import Connector, Evse, Location
from locations.rows import converted, db_converters

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

"""Inserting a batch's new rows: COPY on PostgreSQL, one statement batch for a few, bulk_create elsewhere."""

from __future__ import annotations

import json
import operator
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Iterator

import orjson
from django.db import connections, models, router

from locations.writer.new_rows import Row

# --- Inserting new rows --------------------------------------------------------------------------------
# On PostgreSQL many new rows go in with COPY: bulk_create spent most of an import building its INSERT (a
# prepared value per field and row) and having psycopg render the parameters, COPY streams the rows as
# they are. COPY returns no ids, so the ids are drawn from the tables' sequences first, one query for all
# the tables of a batch. A few rows (one location PUT: a location, its EVSEs and connectors, a few
# through rows) go in as one INSERT ... SELECT per table from a JSON document of its rows, all of them in one
# statement batch (one round trip): a COPY costs more round trips than it saves below COPY_FROM rows. One
# parameter per table, not one per value: psycopg caches the parsing of a statement only up to 50
# parameters, and a location PUT's multi-row VALUES had about 120, parsed anew for every PUT (0.23 ms of
# its ~3 ms of CPU) and each value quoted in Python; orjson writes the rows in C. Other databases (SQLite, the
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
        # In the order added, parents before children: with foreign keys checked per statement (an import
        # that is its own transaction) a child row must not arrive before its parent, whichever of the two
        # goes by COPY and which by INSERT. Each step is ("sql", statement, params) or ("copy", table,
        # columns, rows).
        self.steps: list[tuple] = []

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
        """New instances or rows (new_rows.Row, PostgreSQL only), their pk reserved on PostgreSQL; after run()
        each instance is no longer `adding`."""
        if _uses_copy(model) is None:  # at once: the children's foreign keys need these ids
            model.objects.bulk_create(objs, batch_size=500)
            return
        opts = model._meta
        fields = opts.concrete_fields
        # auto_now(_add) fields are filled here, as their pre_save would; one instant for the whole batch.
        stamped = [f.attname for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
        instances = [obj for obj in objs if type(obj) is not Row]  # the others: new_rows, dicts by attname
        stamps = dict.fromkeys(stamped, self.now)
        for obj in objs:
            if type(obj) is Row:
                obj.update(stamps)
            else:
                for attname in stamped:
                    setattr(obj, attname, self.now)
        connection = connections[self.alias]
        attnames = [f.attname for f in fields]
        values_of, items_of = operator.attrgetter(*attnames), operator.itemgetter(*attnames)
        converted = [(i, convert) for i, f in enumerate(fields) if (convert := _copy_value(f, connection))]
        json_columns = [f.column for f in fields if type(f) is models.JSONField]

        def rows() -> Iterator[list]:
            for obj in objs:
                row = list(items_of(obj) if type(obj) is Row else values_of(obj))
                for i, convert in converted:
                    row[i] = convert(row[i])
                yield row

        self._rows(opts.db_table, [f.column for f in fields], rows(), len(objs), json_columns)
        for obj in instances:
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
            self.steps.append((
                "sql", f"UPDATE {qn(opts.db_table)} SET {', '.join(f'{qn(f.column)} = %s' for f in fields)} "
                f"WHERE {qn(opts.pk.column)} = %s", params))
        return True

    def _rows(self, table: str, columns: list[str], rows: Iterable, count: int, json_columns: list[str] = ()) -> None:
        """Rows as COPY_FROM or more go by COPY; fewer as one INSERT of a JSON array of them (see above).
        `json_columns` hold JSON text already (as COPY takes it), put into the array as it is."""
        if count >= COPY_FROM:
            self.steps.append(("copy", table, columns, rows))
            return
        qn = connections[self.alias].ops.quote_name
        names = ", ".join(map(qn, columns))
        records = []
        for row in rows:
            record = dict(zip(columns, row))
            for column in json_columns:
                if record[column] is not None:
                    record[column] = orjson.Fragment(record[column])
            records.append(record)
        # A JSON null is SQL NULL for every column type, a JSON string goes through the column type's input
        # (decimals are written as strings: exact), numbers and booleans as they are (orjson would write a
        # NaN or infinite float as null: the coordinates, our only floats, are finite by validation).
        self.steps.append((
            "sql", f"INSERT INTO {qn(table)} ({names}) SELECT {names} "
            f"FROM jsonb_populate_recordset(NULL::{qn(table)}, %s::jsonb)",
            [orjson.dumps(records, default=_json_default).decode()]))

    def run(self) -> None:
        if not self.steps:
            return
        connection = connections[self.alias]
        with connection.cursor() as cursor:
            pending: list[tuple] = []
            if any(step[0] == "copy" for step in self.steps):
                pending.append(_REPLAN_FOREIGN_KEY_CHECKS)
            for step in self.steps:
                if step[0] == "sql":
                    pending.append(step)
                    continue
                _statements(cursor, pending)
                pending = []
                # psycopg's copy() is not wrapped by Django: its errors would escape as psycopg's own
                # classes instead of the IntegrityError the services replay on.
                with connection.wrap_database_errors:
                    _copy(cursor, *step[1:])
            _statements(cursor, pending)


# PostgreSQL checks a foreign key with a query per inserted row, planned once per session and constraint:
# after five runs the plan is kept for the session. Kept from a time when the parent table was a few pages
# (the session's first writes into an empty catalogue: a template upload, a webhook), it is a sequential
# scan, and every row of a big import then reads the whole parent. Its uncommitted rows trigger no
# autovacuum ANALYZE that would invalidate it: 100,000 rows took 516 s instead of 22. Before a batch
# large enough to COPY, the session's plans are dropped and made again on the tables as they are then.
_REPLAN_FOREIGN_KEY_CHECKS = ("sql", "DISCARD PLANS", [])


def _statements(cursor, steps: list[tuple]) -> None:
    """Consecutive statements in one round trip: Django's psycopg cursor binds on the client."""
    if steps:
        cursor.execute("; ".join(sql for _, sql, _ in steps), [param for _, _, params in steps for param in params])


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


def _json_default(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not written as JSON")


def _copy_value(field_: models.Field, connection):
    if type(field_) is models.JSONField:
        encode = (field_.encoder or json.JSONEncoder)().encode
        # None stays SQL NULL, as in get_db_prep_save; anything else is the JSON text. Most values are
        # empty lists (no images, no directions, ...): their text is known.
        return lambda value: None if value is None else "[]" if value == [] else encode(value)
    if type(field_) in _AS_IS:
        return None
    return lambda value: field_.get_db_prep_save(value, connection)



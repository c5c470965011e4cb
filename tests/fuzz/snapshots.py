"""What is stored, to compare before and after a request: "nothing stored half-written"."""

from __future__ import annotations

from django.db import connection, models


def _with_through(model_classes) -> list[type[models.Model]]:
    found = []
    for model in model_classes:
        found.append(model)
        found += [field.remote_field.through for field in model._meta.many_to_many]
    return found


def table_digests(*model_classes) -> dict[str, str]:
    """A digest of every row of the models' tables and of their many-to-many tables: one query on
    PostgreSQL, since the fuzzer takes one before and after each of its requests."""
    tables = [model._meta.db_table for model in _with_through(model_classes)]
    if connection.vendor != "postgresql":
        return {model._meta.db_table: repr(list(model.objects.order_by("pk").values()))
                for model in _with_through(model_classes)}
    quote = connection.ops.quote_name
    sql = " UNION ALL ".join(
        f"SELECT %s, md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {quote(table)} t"
        for table in tables)
    with connection.cursor() as cursor:
        cursor.execute(sql, tables)
        return dict(cursor.fetchall())


def table_rows(*querysets) -> list[list[dict]]:
    """The rows of the querysets, every column, in primary-key order (for a readable difference)."""
    return [list(queryset.order_by("pk").values()) for queryset in querysets]


def changed_tables(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [table for table in before if before[table] != after.get(table)]

"""Rows read by plain SQL, given the values the ORM would have given them.

The hot reads (a search page, a writer batch's stored rows, the OCPI caller) skip the ORM's per-query
compilation; what they must not skip is its per-column conversion of database values (`from_db_value`,
the backend's own converters), or an instance would differ from the one a queryset makes.
"""

from __future__ import annotations

from typing import Any


def db_converters(fields, table: str, connection) -> list[tuple[int, Any, list]]:
    """(position, column, converters) of each of `fields` whose database value the ORM converts when it
    reads `table`.`field` (the converters take the column: some look at its output field)."""
    found = []
    for position, field in enumerate(fields):
        column = field.get_col(table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            found.append((position, column, converters))
    return found


def converted(values: list, converters: list[tuple[int, Any, list]], connection) -> list:
    """`values` (a list, changed in place and returned) with `converters` from `db_converters` applied."""
    for position, column, functions in converters:
        value = values[position]
        for function in functions:
            value = function(value, column, connection)
        values[position] = value
    return values

"""What an import tells its caller: counts, and every problem as (row, column, value, reason)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# The portal shows the report and the command prints it: past a thousand errors the file has one
# systematic fault, and the first ones say which; the total is still counted.
MAX_REPORTED_ERRORS = 1000


@dataclass(frozen=True)
class RowError:
    """`row` is the line of the file where the record starts (the header is line 1, as in a
    spreadsheet); 0 means the file as a whole. `column` is the CSV column (for registers, the
    register's column or the OCPI field the value ended up in)."""

    row: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        parts = [f"row {self.row}" if self.row else "file"]
        if self.column:
            parts.append(self.column)
        if self.value:
            parts.append(repr(self.value))
        return f"{', '.join(parts)}: {self.reason}"


@dataclass
class ImportReport:
    rows: int = 0
    locations: int = 0  # accepted: created + updated + unchanged
    created: int = 0
    updated: int = 0
    unchanged: int = 0  # also those the store already had newer (stale)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    committed: bool = False

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)

    def as_dict(self) -> dict:
        return asdict(self)

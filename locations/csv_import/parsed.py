"""What a file format hands the importer: locations ready for `location_upsert_many`, or row errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

from locations.csv_import.report import RowError


@dataclass
class Parsed:
    """One location read from the file, as an OCPI 2.2.1 Location dict.

    `explain` turns a validation error (`evses[0].connectors[1].max_amperage`, reason) into the row,
    column and value of the file that supplied it.
    """

    data: dict
    row: int  # where the location starts in the file
    explain: Callable[[str, str], RowError]


class Source(Protocol):
    stamped: bool  # whether every location carries its own last_updated
    rows: int  # data rows read so far

    def __iter__(self) -> Iterator[Parsed | RowError]: ...

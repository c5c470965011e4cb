"""National charge-point registers (BNetzA, UK NCR, US AFDC) through the same import.

The streaming readers of `locations.registers` turn each data row into an OCPI Location or into the
reasons it could not be built; here each location is completed for the importing CPO and stamped,
so that importing the same file again changes nothing:

* `last_updated` is the row's own date where the register has one (BNetzA 2019: the commissioning
  date; UK NCR: its update dates), else the export date of the file's preamble ("Stand: 19.07.2019",
  BNetzA), else `UNDATED`, a fixed early date: a register is a snapshot, and whatever the CPO or an
  OCPI peer sends later about the same location is newer and wins.
* An id met again in the same file gets a suffix: `-2` on its second occurrence, `-3` on its third
  (and its EVSE uids with it). BNetzA's ids hash operator, address and coordinates, and its 2019
  export has ~1,400 rows sharing an id with another row: distinct stations (one row per charging
  station) that would otherwise be merged into one location. The suffix is stable as long as the
  file's row order is.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable, Iterator

from locations.csv_import import reading
from locations.csv_import.parsed import Parsed
from locations.csv_import.reading import FileRejected
from locations.csv_import.report import RowError
from locations.models import Cpo
from locations.registers import register_location
from locations.registers.afdc import iter_afdc_locations
from locations.registers.bnetza import iter_bnetza_locations
from locations.registers.uk_ncr import iter_uk_ncr_locations

READERS: dict[str, Callable] = {
    "bnetza": iter_bnetza_locations,
    "uk-ncr": iter_uk_ncr_locations,
    "afdc": iter_afdc_locations,
}
UNDATED = "2000-01-01T00:00:00Z"

_EXPORT_DATE = re.compile(r"Stand:\s*(\d{1,2})\.(\d{1,2})\.(\d{4})")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class RegisterSource:
    stamped = True

    def __init__(self, lines: Iterator[str], *, cpo: Cpo, format: str):
        self.lines, self.cpo, self.format, self.rows = lines, cpo, format, 0
        self.max_rows = reading.max_rows()
        self.stamp = UNDATED
        self.occurrences: Counter[str] = Counter()

    def __iter__(self) -> Iterator[Parsed | RowError]:
        rows = READERS[self.format](self._preamble_watched(self.lines))
        while True:
            try:
                register_row = next(rows)
            except StopIteration:
                return
            except ValueError as exc:  # the reader's verdict on the header or an unreadable record
                raise FileRejected(f"not a {self.format} register export: {exc}") from None
            self.rows += 1
            if self.rows > self.max_rows:
                raise FileRejected(f"the file has more than {self.max_rows:,} rows (EVHUB_CSV_MAX_ROWS); split it",
                                   row=register_row.row)
            if not register_row.ok:
                for column, value, reason in register_row.error:
                    yield RowError(register_row.row, column, value, reason)
                continue
            data = register_location(self._unique(register_row.location), country_code=self.cpo.country_code,
                                     party_id=self.cpo.party_id, last_updated=self.stamp)
            yield Parsed(data, register_row.row, _explainer(register_row.row, data))

    def _preamble_watched(self, lines: Iterator[str]) -> Iterator[str]:
        """Pass the lines through, noting the export date the preamble gives before the header."""
        in_preamble = self.format == "bnetza"
        for line in lines:
            if in_preamble:
                if line.lstrip('\ufeff"').startswith("Betreiber"):
                    in_preamble = False
                elif match := _EXPORT_DATE.search(line):
                    day, month, year = (int(part) for part in match.groups())
                    self.stamp = f"{year:04d}-{month:02d}-{day:02d}T00:00:00Z"
            yield line

    def _unique(self, location: dict) -> dict:
        original = location["id"]
        self.occurrences[original] += 1
        count = self.occurrences[original]
        if count == 1:
            return location
        unique = f"{original}-{count}"
        while unique in self.occurrences:  # never the id of another row of the file
            count += 1
            unique = f"{original}-{count}"
        self.occurrences[unique] += 1
        evses = [{**evse, "uid": unique + evse["uid"][len(original):]} if evse["uid"].startswith(original + "-")
                 else evse for evse in location.get("evses", [])]
        return {**location, "id": unique, "evses": evses}


def _explainer(row: int, data: dict) -> Callable[[str, str], RowError]:
    # A register's columns do not map one to one onto OCPI fields: name the field, and its value.
    def explain(path: str, reason: str) -> RowError:
        return RowError(row, path, _value_at(data, path), reason)

    return explain


def _value_at(data, path: str) -> str:
    for name, index in _PATH_PART.findall(path):
        try:
            data = data[int(index)] if index else data.get(name)
        except (IndexError, KeyError, TypeError, AttributeError):
            return ""
    if isinstance(data, dict):  # coordinates: "51, 6"
        return ", ".join(str(value) for value in data.values() if not isinstance(value, (dict, list)))
    return "" if data is None or isinstance(data, list) else str(data)

"""CSV import of locations, EVSEs and connectors: the portal's upload and `manage.py import_locations`.

Formats: `evhub` (ours, one row per connector: see `locations.csv_import.evhub` and docs/csv-import.md),
and the national registers `bnetza`, `uk-ncr` and `afdc`, as CSV or Excel workbooks (see
`locations.csv_import.registers`); `detect_format` tells them apart by the header.
Every location goes through `locations.services.location_upsert_many`, the one ingestion path,
merging EVSEs into what is stored, in batches, inside one transaction for the whole file.
"""

from locations.csv_import.evhub import COLUMNS, REQUIRED
from locations.csv_import.importer import FORMATS, locations_import_csv
from locations.csv_import.registers import detect_format
from locations.csv_import.report import MAX_REPORTED_ERRORS, ImportReport, RowError
from locations.csv_import.template import csv_template

__all__ = [
    "COLUMNS",
    "FORMATS",
    "MAX_REPORTED_ERRORS",
    "REQUIRED",
    "ImportReport",
    "RowError",
    "csv_template",
    "detect_format",
    "locations_import_csv",
]

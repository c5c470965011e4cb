"""The import itself: stream the file's locations in batches through `location_upsert_many`, in one
transaction that is kept only when the whole file went through (or, with `skip_invalid`, at least
every location that is valid)."""

from __future__ import annotations

from typing import BinaryIO, Callable, Iterator, TextIO

from django.db import DatabaseError, transaction

from locations import services
from locations.csv_import import reading
from locations.csv_import.evhub import EvhubSource
from locations.csv_import.parsed import Parsed, Source
from locations.csv_import.reading import FileRejected
from locations.csv_import.registers import READERS, RegisterSource
from locations.csv_import.report import ImportReport, RowError
from locations.models import Cpo
from locations.validation import V221, InvalidPayload

FORMATS = ("evhub", *READERS)
# Locations per call of location_upsert_many: its queries are a constant per call, so the batch
# trades round trips against the memory of one batch's rows and stored objects.
BATCH_LOCATIONS = 500


def locations_import_csv(*, cpo: Cpo, file: BinaryIO | TextIO, format: str = "evhub", dry_run: bool = False,
                         progress: Callable[[int], None] | None = None,
                         skip_invalid: bool = False,
                         committing: Callable[[ImportReport], None] | None = None) -> ImportReport:
    """Import the locations, EVSEs and connectors of a CSV file for `cpo`.

    All or nothing: on any error, or with `dry_run`, nothing is written, and the report still lists
    every error (up to `MAX_REPORTED_ERRORS`, with the total). `skip_invalid` keeps the valid
    locations and reports the others (real registers always have a few rows that are no station);
    a file that cannot be read at all is never kept. `progress` is called with the number of rows
    read since its last call (`tqdm.update`), after each batch; an exception it raises stops the
    import, and nothing is kept. `committing` is called with the final report inside the import's
    transaction when it is about to commit, so that what it writes is kept exactly when the import is.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; one of {', '.join(FORMATS)}")
    report = ImportReport()
    outermost = not transaction.get_connection().in_atomic_block
    with transaction.atomic():
        if outermost:
            _check_foreign_keys_per_statement()
        readable = _run(cpo, file, format, report, progress or (lambda rows: None))
        report.committed = readable and not dry_run and (skip_invalid or report.error_count == 0)
        report.errors.sort(key=lambda error: error.row)
        if not report.committed:
            transaction.set_rollback(True)
        elif committing is not None:
            committing(report)
    return report


def _check_foreign_keys_per_statement() -> None:
    """Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: PostgreSQL queues a check per row
    and runs the queue at COMMIT. For 100,000 rows that queue took 38 s of a 78 s import, against
    5 s when each statement checks its own rows (bench_csv_import). The writer inserts parents
    before children, so nothing relies on the deferral. Only when the import is the whole
    transaction: inside a caller's, it would check the caller's pending rows early."""
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _source(cpo: Cpo, file: BinaryIO | TextIO, format: str) -> Source:
    if format == "evhub":
        return EvhubSource(reading.text_lines(file), cpo=cpo)
    return RegisterSource(file, cpo=cpo, format=format)  # CSV or Excel workbook: it tells them apart


def _run(cpo: Cpo, file: BinaryIO | TextIO, format: str, report: ImportReport,
         progress: Callable[[int], None]) -> bool:
    """Write batch after batch; False when the file could not be read to its end."""
    reported = 0
    source = None
    try:
        source = _source(cpo, file, format)
        for batch in _batches(source, report):
            _write(batch, source, cpo, report)
            progress(source.rows - reported)
            reported = source.rows
    except FileRejected as exc:
        report.add_error(exc.error)
        return False
    finally:
        report.rows = source.rows if source else 0
    progress(source.rows - reported)
    return True


def _batches(source: Source, report: ImportReport) -> Iterator[list[Parsed]]:
    batch: list[Parsed] = []
    for item in source:
        if isinstance(item, RowError):
            report.add_error(item)
            continue
        batch.append(item)
        if len(batch) >= BATCH_LOCATIONS:
            yield batch
            batch = []
    if batch:
        yield batch


def _write(batch: list[Parsed], source: Source, cpo: Cpo, report: ImportReport) -> None:
    try:
        results = services.location_upsert_many(cpo=cpo, items=[item.data for item in batch], version=V221,
                                                replace_evses=False, stamped=source.stamped, only_given_fields=True)
    except (DatabaseError, InvalidPayload) as exc:
        # Validation passed but the database refused the batch (its savepoint is rolled back, the
        # import's transaction goes on): the locations cannot be told apart, the first row is named.
        report.add_error(RowError(batch[0].row, "", "", f"the batch of rows {batch[0].row} to "
                                                          f"{batch[-1].row}+ was refused: {exc}"))
        return
    for item, result in zip(batch, results):
        if isinstance(result, InvalidPayload):
            for path, reason in result.errors.items():
                report.add_error(item.explain(path, reason))
            continue
        report.locations += 1
        if result.created:
            report.created += 1
        elif result.changed:
            report.updated += 1
        else:
            report.unchanged += 1

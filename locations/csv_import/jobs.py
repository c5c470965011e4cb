"""CSV imports as jobs: every upload is recorded (`CsvImport`) with its progress and its report.

A small file is imported in the upload's request, as before. A large one, or a small one that runs past
the request's time (a slow database, a file of pathological rows), is stored and imported by a Celery
worker: the request answers at once and no web worker waits out its timeout. Either way the import is
all or nothing, in one transaction; the job's row is written beside it. Its progress goes through a
connection of its own, committed at every batch, so that it can be read while the import's transaction
is still open; its final state commits in that transaction, so that an import is never kept without
its record saying so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.utils import timezone

from locations.csv_import.importer import FORMATS, locations_import_csv
from locations.csv_import.reading import FileRejected
from locations.csv_import.registers import detect_format
from locations.csv_import.report import ImportReport
from locations.images import storage_name
from locations.models import Cpo, CsvImport

logger = logging.getLogger(__name__)

STORAGE_PREFIX = "csv-imports"
AUTO = "auto"  # the format told from the file's header (detect_format) when the import starts
DEFAULT_SYNC_MAX_BYTES = 1024 * 1024
# Well inside gunicorn's 30 s: a batch is checked against it only once written, and one takes well under
# a second, so the request answers long before its worker would be killed.
DEFAULT_SYNC_SECONDS = 10
# A redelivered job (its worker died: out of memory, killed) is tried this many times in all.
MAX_ATTEMPTS = 3
# Keys of PostgreSQL's advisory locks: (this namespace, the import's id).
_LOCK_NAMESPACE = 0x43535649  # "CSVI"


# Workers are shared by every CPO: one CPO's uploads queue at most this many imports at a time.
MAX_UNFINISHED_PER_CPO = 3


class ImportsBusy(Exception):
    """The CPO has MAX_UNFINISHED_PER_CPO imports queued or running already."""

    retry_after = 60


class _HandedOver(Exception):
    """A request's import ran past its time: rolled back, to be run again by a worker."""


def sync_max_bytes() -> int:
    return getattr(settings, "EVHUB_CSV_SYNC_MAX_BYTES", DEFAULT_SYNC_MAX_BYTES)


def sync_seconds() -> float:
    return getattr(settings, "EVHUB_CSV_SYNC_SECONDS", DEFAULT_SYNC_SECONDS)


# --- Services ------------------------------------------------------------------------------------------


def csv_import_upload(*, cpo: Cpo, file: BinaryIO, file_name: str, format: str = "evhub") -> CsvImport:
    """Record an uploaded file and import it: at once when it is small enough to finish within the
    request (the returned import is then finished), else by a worker (it is then QUEUED). ImportsBusy
    when the CPO has too many imports waiting for workers already."""
    if format not in (*FORMATS, AUTO):
        raise ValueError(f"unknown format {format!r}; one of {', '.join((*FORMATS, AUTO))}")
    size = _size(file)
    job = CsvImport(cpo=cpo, file_name=_bounded_name(file_name), file_size=size, format=format)
    if size > sync_max_bytes():
        _check_not_busy(cpo)
        return _queue(job, file)
    job.save()
    try:
        _run(job, file, deadline=time.monotonic() + sync_seconds())
    except _HandedOver:
        logger.info("CSV import %s passed %s s in its request: handed to a worker", job.pk, sync_seconds())
        file.seek(0)
        job.status, job.attempts, job.rows, job.bytes_read = CsvImport.Status.QUEUED, 0, 0, 0
        return _queue(job, file)
    return job


def csv_import_run(*, csv_import_id: int) -> CsvImport | None:
    """Run a queued import (the worker's task). Idempotent: a finished import is not run again, nor one
    that another worker is running; one whose worker died is run again, up to MAX_ATTEMPTS in all."""
    job = CsvImport.objects.select_related("cpo").filter(pk=csv_import_id).first()
    if job is None or job.finished:
        return job
    with _run_lock(job.pk) as acquired:
        if not acquired:
            logger.info("CSV import %s is being run by another worker", job.pk)
            return job
        job.refresh_from_db()
        if job.finished:
            return job
        if job.attempts >= MAX_ATTEMPTS:
            _fail(job, f"stopped after {job.attempts} attempts that did not finish; nothing was stored")
            return job
        try:
            if not job.file:
                raise FileNotFoundError
            file = default_storage.open(job.file, "rb")
        except (OSError, ValueError):
            _fail(job, "the uploaded file is no longer stored; upload it again")
            return job
        with file:
            _run(job, file, progress_connection=True)
    return job


def csv_import_enqueue(*, csv_import: CsvImport) -> None:
    """Hand the import to a worker once the transaction that recorded it commits."""
    transaction.on_commit(lambda: _send(csv_import))


# --- Selectors ------------------------------------------------------------------------------------------


def csv_import_of_cpo(*, cpo: Cpo, csv_import_id: int) -> CsvImport | None:
    return CsvImport.objects.filter(cpo=cpo, pk=csv_import_id).first()


def csv_imports_of_cpo(*, cpo: Cpo):
    """Newest first, without the reports (they are read one import at a time)."""
    return CsvImport.objects.filter(cpo=cpo).defer("errors").order_by("-id")


# --- The run ----------------------------------------------------------------------------------------------


def _run(job: CsvImport, file: BinaryIO, *, deadline: float | None = None, progress_connection: bool = False) -> None:
    job.status, job.attempts, job.started_at = CsvImport.Status.RUNNING, job.attempts + 1, timezone.now()
    job.rows = job.bytes_read = 0
    job.save(update_fields=["status", "attempts", "started_at", "rows", "bytes_read", "date_modified"])
    counted = _CountingFile(file)
    if job.format == AUTO:
        try:
            job.format = detect_format(counted)
        except FileRejected as exc:
            report = ImportReport()
            report.add_error(exc.error)
            _finish(job, report, counted.count)
            return
    progress = _Progress(job, counted, deadline=deadline, own_connection=progress_connection)
    try:
        report = locations_import_csv(cpo=job.cpo, file=counted, format=job.format, progress=progress,
                                      committing=lambda report: _finish(job, report, counted.count))
    except _HandedOver:
        raise
    except Exception as exc:  # a worker's time limit, a lost database connection, a bug
        # The import's transaction is rolled back; the record says so instead of staying RUNNING.
        logger.exception("CSV import %s failed", job.pk)
        _fail(job, f"the import stopped ({type(exc).__name__}); nothing was stored")
        return
    finally:
        progress.close()
    if not report.committed:
        _finish(job, report, counted.count)


def _finish(job: CsvImport, report: ImportReport, bytes_read: int) -> None:
    job.status = CsvImport.Status.SUCCEEDED if report.committed else CsvImport.Status.FAILED
    job.rows, job.bytes_read = report.rows, bytes_read
    job.locations, job.created, job.updated, job.unchanged = (report.locations, report.created, report.updated,
                                                              report.unchanged)
    job.error_count = report.error_count
    job.errors = [asdict(error) for error in report.errors]
    job.message = (f"{report.rows} rows: {report.created} locations created, {report.updated} updated, "
                   f"{report.unchanged} unchanged" if report.committed
                   else f"{report.error_count} errors, nothing was imported")
    job.finished_at = timezone.now()
    _forget_file(job)
    job.save()


def _fail(job: CsvImport, message: str) -> None:
    job.status, job.message, job.finished_at = CsvImport.Status.FAILED, message[:255], timezone.now()
    _forget_file(job)
    job.save()


def _forget_file(job: CsvImport) -> None:
    """The upload is deleted once its import is finished (kept or not): the report is what remains."""
    if job.file:
        name, job.file = job.file, ""
        transaction.on_commit(lambda: default_storage.delete(name))


def _queue(job: CsvImport, file: BinaryIO) -> CsvImport:
    job.file = default_storage.save(storage_name(prefix=STORAGE_PREFIX, extension="csv"), file)
    job.background = True
    job.save()
    csv_import_enqueue(csv_import=job)
    return job


def _check_not_busy(cpo: Cpo) -> None:
    # Past the workers' time limit an unfinished import is one whose worker was lost: it no longer counts.
    since = timezone.now() - timedelta(seconds=getattr(settings, "EVHUB_CSV_JOB_SECONDS", 1800) + 600)
    unfinished = CsvImport.objects.filter(cpo=cpo, date_created__gte=since).exclude(status__in=CsvImport.FINISHED)
    if unfinished.count() >= MAX_UNFINISHED_PER_CPO:
        raise ImportsBusy(f"{MAX_UNFINISHED_PER_CPO} imports of this CPO are queued or running; "
                          "upload again when one has finished")


def _send(job: CsvImport) -> None:
    from locations.tasks import csv_import_run as task

    try:
        task.delay(job.pk)
    except Exception:  # the broker is unreachable: say so now, not leave the import QUEUED for ever
        logger.exception("CSV import %s could not be queued", job.pk)
        _fail(job, "the import could not be queued (the job queue is unreachable); upload it again later")


class _run_lock:
    """A PostgreSQL advisory lock on the import for its run: a second delivery of the same job (a broker's
    redelivery while the first worker still runs it) skips it. Held by the session, it goes with it when
    a worker dies. Elsewhere (SQLite) one writer at a time is the database's own rule."""

    def __init__(self, job_id: int):
        self.key = (_LOCK_NAMESPACE, job_id % 2**31)
        self.postgresql = connection.vendor == "postgresql"

    def __enter__(self) -> bool:
        if not self.postgresql:
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", self.key)
            self.acquired = cursor.fetchone()[0]
        return self.acquired

    def __exit__(self, *exc) -> None:
        if self.postgresql and self.acquired:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", self.key)
            except DatabaseError:  # the connection is gone, and the lock with it
                logger.warning("CSV import %s: the run lock could not be released", self.key[1])


class _CountingFile:
    """The uploaded file, counting the bytes read (the progress a client can show as a share of the size)."""

    def __init__(self, file: BinaryIO):
        self.file, self.count = file, 0
        self.size = getattr(file, "size", None)

    def read(self, size: int = -1):
        data = self.file.read(size)
        self.count += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self.file.seek(offset, whence)
        self.count = max(self.count, position)
        return position

    def __getattr__(self, name: str):  # tell, name, seekable, ...: readers that look at the file itself
        return getattr(self.file, name)


class _Progress:
    """Called by the import after each batch: writes the rows read so far where others can see them, and
    hands a request's import over to a worker once it passes its time."""

    def __init__(self, job: CsvImport, file: _CountingFile, *, deadline: float | None, own_connection: bool):
        self.job, self.file, self.deadline = job, file, deadline
        self.rows = 0
        # Only on PostgreSQL: SQLite has one writer at a time, and the import is it.
        self.own_connection = own_connection and connection.vendor == "postgresql"
        self.connection = None

    def __call__(self, rows: int) -> None:
        if not rows:  # the call after the last batch: nothing more is left to hand over
            return
        self.rows += rows
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _HandedOver
        if self.own_connection:
            self._write()

    def _write(self) -> None:
        if self.connection is None:
            self.connection = connections.create_connection(DEFAULT_DB_ALIAS)
        table = CsvImport._meta.db_table
        with self.connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET rows = %s, bytes_read = %s, date_modified = %s WHERE id = %s",
                           [self.rows, self.file.count, timezone.now(), self.job.pk])

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def _size(file: BinaryIO) -> int:
    size = getattr(file, "size", None)
    if isinstance(size, int):
        return size
    position = file.tell()
    file.seek(0, 2)
    size = file.tell()
    file.seek(position)
    return size


def _bounded_name(name: str | None) -> str:
    name = (name or "").replace("\x00", "")
    return name if len(name) <= 255 else name[:120] + "…" + name[-120:]

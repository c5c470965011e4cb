"""`manage.py import_locations FILE --cpo PARTY`: the CSV import from the command line.

The file is our CSV layout or a national register (CSV or Excel workbook); without `--format` (or
with `--format auto`) its header says which.

Exit status: 0 when the file was imported (or, with --dry-run, would be) without an error; 1 when
errors left nothing written, or the file could not be read; 2 when --skip-invalid kept the valid
locations and skipped others.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from locations.csv_import import FORMATS, ImportReport, detect_format, locations_import_csv
from locations.csv_import.reading import FileRejected
from locations.models import Cpo
from locations.registers.workbook import XLSX_SIGNATURE, is_workbook

AUTO = "auto"


class Command(BaseCommand):
    help = ("Import locations, EVSEs and connectors for a CPO from a CSV file of ours, or from a national "
            "register (CSV or Excel).")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the CSV file, or a register's Excel workbook (.xlsx)")
        parser.add_argument("--cpo", required=True, metavar="PARTY", help="party id of the importing CPO")
        parser.add_argument("--country", metavar="CC",
                            help="country code of the CPO, when its party id is not unique "
                                 f"(default: {settings.EVHUB_COUNTRY_CODE})")
        parser.add_argument("--format", choices=(AUTO, *FORMATS), default=AUTO,
                            help="the file's layout; by default told from its header")
        parser.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="keep the valid locations, report and skip the others (for registers)")

    def handle(self, *args, **options):
        cpo = cpo_for(options["cpo"], options["country"])
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        with path.open("rb") as file, tqdm(total=_estimated_rows(path), unit=" rows", file=sys.stderr,
                                           disable=not sys.stderr.isatty()) as bar:
            format = options["format"]
            if format == AUTO:
                try:
                    format = detect_format(file)
                except FileRejected as exc:
                    raise CommandError(f"{path}: {exc}", returncode=1) from None
                self.stdout.write(f"{path.name}: {format} layout, told from its header")
            report = locations_import_csv(cpo=cpo, file=file, format=format,
                                          dry_run=options["dry_run"], progress=bar.update,
                                          skip_invalid=options["skip_invalid"])
        self._print(report, dry_run=options["dry_run"])
        if report.error_count and not report.committed:
            raise CommandError(f"{report.error_count:,} error(s): nothing was written", returncode=1)
        if report.error_count:
            raise CommandError(f"{report.error_count:,} error(s): those rows were skipped, the rest was written",
                               returncode=2)

    def _print(self, report: ImportReport, *, dry_run: bool) -> None:
        for error in report.errors:
            self.stdout.write(str(error))
        if report.error_count > len(report.errors):
            self.stdout.write(f"... and {report.error_count - len(report.errors):,} more error(s)")
        outcome = "committed" if report.committed else "dry run, nothing written" if dry_run else "rolled back"
        self.stdout.write(
            f"{report.rows:,} rows, {report.locations:,} locations: {report.created:,} created, "
            f"{report.updated:,} updated, {report.unchanged:,} unchanged; {report.error_count:,} error(s); {outcome}"
        )


def cpo_for(party_id: str, country_code: str | None) -> Cpo:
    """The CPO of that party id; the country code (default EVHUB_COUNTRY_CODE) decides between parties
    of several countries."""
    candidates = list(Cpo.objects.filter(party_id__iexact=party_id))
    country = (country_code or settings.EVHUB_COUNTRY_CODE).upper()
    if country_code or len(candidates) > 1:
        in_country = [cpo for cpo in candidates if cpo.country_code.upper() == country]
        if not in_country and len(candidates) > 1:
            raise CommandError(f"several CPOs have party id {party_id.upper()!r}, none in {country}: "
                               "name the country with --country")
        candidates = in_country
    if not candidates:
        where = f" in country {country}" if country_code else ""
        raise CommandError(f"no CPO with party id {party_id.upper()!r}{where}: register the CPO first")
    return candidates[0]


def _estimated_rows(path: Path) -> int | None:
    # Lines, less the header: exact for our format, close for registers (preamble, quoted line breaks).
    # A workbook's rows are inside a compressed archive: unknown until read.
    with path.open("rb") as file:
        if is_workbook(file.read(len(XLSX_SIGNATURE))):
            return None
        file.seek(0)
        return max(sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b"")) - 1, 0)

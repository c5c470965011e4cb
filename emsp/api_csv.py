"""The portal's CSV import: the upload of the contract, its template, and the imports it records.

The upload answers as the contract has it, `{"status": 200, "data": [], "message": "Success"}`, or a
400 whose `data` lists every row error. What the contract has no place for stands beside it, never in
it: the key `import` (the recorded import: id, status, counts, `url`) and the headers `Location` and
`X-Import-Id`. A file larger than EVHUB_CSV_SYNC_MAX_BYTES, or one whose import runs past
EVHUB_CSV_SYNC_SECONDS, is imported by a worker: the answer is then the same 200 at once, with
`import.status` QUEUED, and the import's progress and report are read at `import.url`. A 200 rather
than 202: contract clients test for 200, and the upload did succeed.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser

from emsp.api import ERROR, EMPTY, _doc, _envelope_of, _errors, _one_file, _page
from emsp.portal import CpoView, PortalError, envelope
from locations.csv_import import FORMATS, csv_template, jobs
from locations.models import CsvImport

URL = "/ocpi/cpo/api/v2/locations/uploads/csv"
_ID = re.compile(r"[1-9][0-9]{0,17}")  # within a bigint
_MAX_OFFSET = 10**9

IMPORT_EXAMPLE = {
    "id": 42, "status": "SUCCEEDED", "url": f"https://hub.example{URL}/42", "file_name": "locations.csv",
    "file_size": 31_457_280, "format": "evhub", "background": True, "bytes_read": 31_457_280, "progress": 100,
    "rows": 100_000, "locations": 25_000, "created": 25_000, "updated": 0, "unchanged": 0, "error_count": 0,
    "message": "100000 rows: 25000 locations created, 0 updated, 0 unchanged",
    "date_created": "2026-11-20T10:00:00Z", "started_at": "2026-11-20T10:00:01Z",
    "finished_at": "2026-11-20T10:00:16Z", "updated_at": "2026-11-20T10:00:16Z",
}
ROW_ERROR = {"row": 3, "column": "power_type", "value": "AC_4_PHASE",
             "reason": "not one of AC_1_PHASE, AC_2_PHASE, AC_2_PHASE_SPLIT, AC_3_PHASE, DC"}


def import_data(job: CsvImport, request, *, with_errors: bool = False) -> dict:
    data = {
        "id": job.pk, "status": job.status, "url": request.build_absolute_uri(f"{URL}/{job.pk}"),
        "file_name": job.file_name, "file_size": job.file_size, "format": job.format, "background": job.background,
        "bytes_read": job.bytes_read,
        "progress": 100 if job.finished else min(99, job.bytes_read * 100 // job.file_size) if job.file_size else 0,
        "rows": job.rows, "locations": job.locations, "created": job.created, "updated": job.updated,
        "unchanged": job.unchanged, "error_count": job.error_count, "message": job.message,
        "date_created": job.date_created, "started_at": job.started_at, "finished_at": job.finished_at,
        "updated_at": job.date_modified,
    }
    if with_errors:
        data["errors"] = job.errors
    return data


def _with_import(response, job: CsvImport, request):
    response.data["import"] = import_data(job, request)
    response["Location"] = response.data["import"]["url"]
    response["X-Import-Id"] = str(job.pk)
    return response


_UPLOADED = inline_serializer("CsvUploaded", {
    "status": serializers.IntegerField(), "data": EMPTY, "message": serializers.CharField(),
    "import": serializers.JSONField(help_text="The recorded import, as GET .../csv/{id} gives it without `errors`."),
})
_IMPORT_HEADERS = [
    OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[200, 400],
                     description="The import's URL: its progress and report."),
    OpenApiParameter("X-Import-Id", int, OpenApiParameter.HEADER, response=[200, 400], description="The import's id."),
]


class CsvUploadView(CpoView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="Import locations from CSV", tags=["locations"], operation_id="csv_upload",
        request={"multipart/form-data": inline_serializer("CsvUpload", {
            "file": serializers.FileField(),
            "format": serializers.ChoiceField(choices=(*FORMATS, jobs.AUTO), required=False, help_text=(
                "evhub (the template's layout, the default), a national register's export (CSV or Excel "
                "workbook), or auto: told from the file's header")),
        })},
        responses={200: _UPLOADED, **_errors(400, 401, 413, 415, 429, 500, 503)}, parameters=_IMPORT_HEADERS,
        examples=[
            OpenApiExample("Imported", response_only=True, status_codes=["200"], value={
                "status": 200, "data": [], "message": "Success", "import": {**IMPORT_EXAMPLE, "background": False}}),
            OpenApiExample("Queued", response_only=True, status_codes=["200"], value={
                "status": 200, "data": [], "message": "Success", "import": {
                    **IMPORT_EXAMPLE, "status": "QUEUED", "bytes_read": 0, "progress": 0, "rows": 0, "locations": 0,
                    "created": 0, "message": "", "started_at": None, "finished_at": None}}),
            OpenApiExample("Rows refused", response_only=True, status_codes=["400"], value={
                "status": 400, "data": [ROW_ERROR], "message": "Bad Request: 1 errors, nothing was imported"}),
        ],
        description=(
            "One row per connector, in the layout of the template (GET .../csv/template). All or nothing: on "
            "any error nothing is stored and `data` lists every error (row, column, value, reason; the first "
            "1,000, with the total in the message). Importing the same file again changes nothing.\n\n"
            "Every upload is recorded as an import, given beside `data` as `import` and in the `Location` "
            "and `X-Import-Id` headers. A file larger than EVHUB_CSV_SYNC_MAX_BYTES (1 MiB by default), or "
            "whose import runs longer than EVHUB_CSV_SYNC_SECONDS (10 s), is imported by a worker: the "
            "answer is at once the same 200 envelope with `import.status` QUEUED; follow it at `import.url` "
            "(GET .../csv/{id}), which gives the progress, the counts and the same per-row report."),
    )
    def post(self, request):
        limit = settings.EVHUB_CSV_MAX_BYTES
        if _content_length(request) > limit + 64 * 1024:
            raise PortalError(413, f"Payload Too Large: a CSV file may be at most {limit} bytes")
        upload = _one_file(request, "file")
        if upload.size > limit:
            raise PortalError(413, f"Payload Too Large: a CSV file may be at most {limit} bytes")
        format = request.data.get("format") or "evhub"
        if not isinstance(format, str) or format not in (*FORMATS, jobs.AUTO):
            raise PortalError(400, f"Bad Request: format must be one of {', '.join((*FORMATS, jobs.AUTO))}")
        try:
            job = jobs.csv_import_upload(cpo=self.cpo, file=upload, file_name=upload.name or "", format=format)
        except jobs.ImportsBusy as exc:
            raise PortalError(429, f"Too Many Requests: {exc}", headers={"Retry-After": str(exc.retry_after)}) \
                from None
        if job.status == CsvImport.Status.FAILED and job.error_count:
            response = envelope([error for error in job.errors], status_code=400,
                                message=f"Bad Request: {job.error_count} errors, nothing was imported")
        elif job.status == CsvImport.Status.FAILED and job.background:  # the job queue is unreachable
            response = envelope(status_code=503, message=f"Service Unavailable: {job.message}")
        elif job.status == CsvImport.Status.FAILED:
            response = envelope(status_code=500, message=f"Internal Server Error: {job.message}")
        else:
            response = envelope([])
        return _with_import(response, job, request)

    @_doc("CSV imports", _envelope_of("CsvImports", serializers.JSONField(), [IMPORT_EXAMPLE]), (400, 401),
          "locations", operation_id="csv_imports_list",
          parameters=[OpenApiParameter("limit", int, description="at most 100, default 20"),
                      OpenApiParameter("offset", int, description="default 0"),
                      OpenApiParameter("X-Total-Count", int, OpenApiParameter.HEADER, response=[200],
                                       description="How many imports the CPO has in all.")],
          description="The caller's imports, newest first, without their per-row reports (read one import "
                      "for its report).")
    def get(self, request):
        limit, offset = _page(request, default=20, cap=100)
        imports = jobs.csv_imports_of_cpo(cpo=self.cpo)
        page = imports[min(offset, _MAX_OFFSET):min(offset, _MAX_OFFSET) + limit]
        return envelope([import_data(job, request) for job in page], headers={"X-Total-Count": str(imports.count())})


class CsvImportView(CpoView):
    @_doc("A CSV import: progress and report",
          _envelope_of("CsvImport", serializers.JSONField(), {**IMPORT_EXAMPLE, "errors": []}), (401, 404),
          "locations", operation_id="csv_import_retrieve",
          parameters=[OpenApiParameter("import_id", int, OpenApiParameter.PATH, description="the import's id")],
          description="Status QUEUED, RUNNING, SUCCEEDED (stored) or FAILED (nothing stored: `errors` lists the "
                      "rows refused, up to 1,000, with `error_count` the total; or `message` says why the "
                      "import could not finish). While it runs, `rows` and `bytes_read` grow batch by batch "
                      "and `progress` is the share of the file read, in percent. Another CPO's import is a 404.")
    def get(self, request, import_id: str):
        job = jobs.csv_import_of_cpo(cpo=self.cpo, csv_import_id=int(import_id)) if _ID.fullmatch(import_id) else None
        if job is None:
            raise PortalError(404, "Not Found: no such CSV import")
        return envelope(import_data(job, request, with_errors=True))


class CsvTemplateView(CpoView):
    @extend_schema(summary="CSV template", tags=["locations"],
                   responses={(200, "text/csv"): OpenApiTypes.STR, 401: ERROR, 429: ERROR})
    def get(self, request):
        response = HttpResponse(csv_template(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="evhub-locations-template.csv"'
        return response


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0

"""The portal's CSV upload and template: all or nothing, a per-row report, one CPO's data only; every upload
recorded as an import its CPO reads back, large ones queued for a worker (tests/emsp/test_csv_worker.py)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from locations.csv_import import csv_template
from locations.models import Connector, CsvImport, Location

pytestmark = pytest.mark.django_db

URL = "/ocpi/cpo/api/v2/locations/uploads/csv"


def csv_file(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("locations.csv", text.encode("utf-8"), content_type="text/csv")


def test_the_template_downloads_and_imports_as_is(as_alpha, alpha):
    template = as_alpha.get(URL + "/template")
    assert template.status_code == 200 and template["Content-Type"].startswith("text/csv")
    response = as_alpha.post(URL, {"file": csv_file(template.content.decode())}, format="multipart")
    assert response.status_code == 200, response.json()
    assert response.json()["data"] == []
    location = Location.objects.get(cpo=alpha)
    assert location.ocpi_id == "BER-ALEX-01" and location.evses.count() == 2
    again = as_alpha.post(URL, {"file": csv_file(template.content.decode())}, format="multipart")
    assert again.status_code == 200 and again.json()["message"] == "Success"
    assert again.json()["import"]["unchanged"] == 1 and again.json()["import"]["status"] == "SUCCEEDED"


def test_an_error_rolls_everything_back_and_names_row_column_value_reason(as_alpha, alpha):
    lines = csv_template().splitlines()
    bad = lines[2].replace("AC_3_PHASE", "AC_4_PHASE")
    response = as_alpha.post(URL, {"file": csv_file("\n".join([lines[0], lines[1], bad]))}, format="multipart")
    body = response.json()
    assert response.status_code == 400 and "nothing was imported" in body["message"]
    assert body["data"] == [{"row": 3, "column": "power_type", "value": "AC_4_PHASE",
                             "reason": "'AC_4_PHASE' is not one of AC_1_PHASE, AC_2_PHASE, AC_2_PHASE_SPLIT, "
                                       "AC_3_PHASE, DC"}]
    assert not Location.objects.exists() and not Connector.objects.exists()


def test_bravo_importing_the_same_ids_never_touches_alphas_locations(as_alpha, as_bravo, alpha, bravo):
    template = csv_template()
    as_alpha.post(URL, {"file": csv_file(template)}, format="multipart")
    changed = template.replace("Ladepark Alexanderplatz", "Bravo's Ladepark")
    assert as_bravo.post(URL, {"file": csv_file(changed)}, format="multipart").status_code == 200
    assert Location.objects.get(cpo=alpha).name == "Ladepark Alexanderplatz"
    assert Location.objects.get(cpo=bravo).name == "Bravo's Ladepark"


def test_csv_upload_needs_a_session_and_a_file(api, as_alpha, settings):
    assert api.post(URL, {"file": csv_file(csv_template())}, format="multipart").status_code == 401
    assert api.get(URL + "/template").status_code == 401
    assert as_alpha.post(URL, {}, format="multipart").status_code == 400
    settings.EVHUB_CSV_MAX_BYTES = 100
    too_big = as_alpha.post(URL, {"file": csv_file(csv_template() * 50)}, format="multipart")
    assert too_big.status_code == 413


def test_not_a_csv_is_a_clear_400(as_alpha):
    response = as_alpha.post(URL, {"file": SimpleUploadedFile("x.csv", b"\x89PNG\r\n\x1a\n\x00\x00garbage")},
                             format="multipart")
    assert response.status_code == 400
    assert response.json()["data"] and response.json()["data"][0]["row"] == 0


# --- Every upload is an import the CPO can read back ------------------------------------------------------

def _bad_file() -> SimpleUploadedFile:
    lines = csv_template().splitlines()
    return csv_file("\n".join([lines[0], lines[1], lines[2].replace("AC_3_PHASE", "AC_4_PHASE")]))


def test_an_upload_is_recorded_and_its_report_read_back_by_its_cpo_only(api, as_alpha, as_bravo):
    response = as_alpha.post(URL, {"file": _bad_file()}, format="multipart")
    body = response.json()
    assert response.status_code == 400 and body["import"]["status"] == "FAILED"
    assert response["Location"] == body["import"]["url"] and response["X-Import-Id"] == str(body["import"]["id"])
    shown = as_alpha.get(response["Location"])
    assert shown.status_code == 200 and shown.json()["message"] == "Success"
    report = shown.json()["data"]
    assert report["errors"] == body["data"] and report["error_count"] == 1 and report["rows"] == 2
    assert (report["status"], report["progress"], report["background"]) == ("FAILED", 100, False)
    # Bravo, the anonymous caller and ids that are none: the portal's envelope, never a 500.
    assert as_bravo.get(response["Location"]).json() == {"status": 404, "data": [],
                                                          "message": "Not Found: no such CSV import"}
    assert api.get(response["Location"]).status_code == 401
    for import_id in ("abc", "0", "-1", "9" * 30, "99999999"):
        assert as_alpha.get(f"{URL}/{import_id}").status_code == 404, import_id


def test_the_imports_are_listed_newest_first_in_pages_and_each_cpo_sees_its_own(as_alpha, as_bravo):
    ids = [as_alpha.post(URL, {"file": csv_file(csv_template())}, format="multipart").json()["import"]["id"]
           for _ in range(3)]
    page = as_alpha.get(URL, {"limit": 2})
    assert page.status_code == 200 and page["X-Total-Count"] == "3"
    assert [item["id"] for item in page.json()["data"]] == ids[::-1][:2]
    assert "errors" not in page.json()["data"][0]
    assert [item["id"] for item in as_alpha.get(URL, {"limit": 2, "offset": 2}).json()["data"]] == ids[:1]
    assert as_alpha.get(URL, {"offset": "9" * 30}).json()["data"] == []
    assert as_alpha.get(URL, {"limit": "many"}).status_code == 400
    assert as_bravo.get(URL).json()["data"] == [] and as_bravo.get(URL)["X-Total-Count"] == "0"


def test_an_unknown_format_is_a_400(as_alpha):
    for format in ("excel", "x" * 5000):
        response = as_alpha.post(URL, {"file": csv_file(csv_template()), "format": format}, format="multipart")
        assert response.status_code == 400 and "format must be one of" in response.json()["message"]


def test_a_file_over_the_request_size_is_queued_in_the_contracts_envelope(as_alpha, alpha, settings):
    from django.core.files.storage import default_storage

    from locations.csv_import import jobs

    settings.EVHUB_CSV_SYNC_MAX_BYTES = 100
    response = as_alpha.post(URL, {"file": csv_file(csv_template())}, format="multipart")
    body = response.json()
    assert response.status_code == 200
    assert (body["status"], body["data"], body["message"]) == (200, [], "Success")
    assert body["import"]["status"] == "QUEUED" and body["import"]["background"] is True
    assert not Location.objects.exists()
    job = CsvImport.objects.get(pk=body["import"]["id"])
    assert default_storage.exists(job.file)

    # What the worker's task runs; run twice (a broker's redelivery), it imports once.
    jobs.csv_import_run(csv_import_id=job.pk)
    shown = as_alpha.get(response["Location"]).json()["data"]
    assert (shown["status"], shown["created"], shown["rows"], shown["progress"]) == ("SUCCEEDED", 1, 2, 100)
    assert Location.objects.get(cpo=alpha).evses.count() == 2
    finished = CsvImport.objects.get(pk=job.pk)
    assert finished.attempts == 1 and finished.file == ""
    jobs.csv_import_run(csv_import_id=job.pk)
    assert CsvImport.objects.get(pk=job.pk).date_modified == finished.date_modified


def test_an_import_that_runs_past_the_requests_time_is_handed_to_a_worker(as_alpha, alpha, settings):
    from locations.csv_import import jobs

    settings.EVHUB_CSV_SYNC_SECONDS = 0  # past it after the first batch
    response = as_alpha.post(URL, {"file": csv_file(csv_template())}, format="multipart")
    body = response.json()
    assert response.status_code == 200 and body["data"] == [] and body["import"]["status"] == "QUEUED"
    assert not Location.objects.exists()  # the request's attempt was rolled back
    jobs.csv_import_run(csv_import_id=body["import"]["id"])
    job = CsvImport.objects.get(pk=body["import"]["id"])
    assert (job.status, job.attempts, job.created) == ("SUCCEEDED", 1, 1)
    assert Location.objects.filter(cpo=alpha).count() == 1


def test_a_job_another_worker_runs_is_skipped_and_a_dead_workers_job_run_again(alpha, settings):
    import psycopg
    from django.db import connection

    from locations.csv_import import jobs

    if connection.vendor != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")
    settings.EVHUB_CSV_SYNC_MAX_BYTES = 10
    job = jobs.csv_import_upload(cpo=alpha, file=csv_file(csv_template()), file_name="locations.csv")
    params = connection.get_connection_params()
    with psycopg.connect(**{key: params[key] for key in ("dbname", "user", "password", "host", "port")},
                         autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", (jobs._LOCK_NAMESPACE, job.pk))
        jobs.csv_import_run(csv_import_id=job.pk)
        assert CsvImport.objects.get(pk=job.pk).status == "QUEUED"
    # A worker that died mid-import left it RUNNING: the redelivered job runs it again, up to a limit.
    CsvImport.objects.filter(pk=job.pk).update(status="RUNNING", attempts=1)
    jobs.csv_import_run(csv_import_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.created) == ("SUCCEEDED", 2, 1)
    again = jobs.csv_import_upload(cpo=alpha, file=csv_file(csv_template()), file_name="locations.csv")
    CsvImport.objects.filter(pk=again.pk).update(status="RUNNING", attempts=jobs.MAX_ATTEMPTS)
    jobs.csv_import_run(csv_import_id=again.pk)
    again.refresh_from_db()
    assert again.status == "FAILED" and "attempts" in again.message and again.file == ""


def test_a_cpo_queues_a_few_imports_at_a_time(as_alpha, as_bravo, settings):
    from locations.csv_import import jobs

    settings.EVHUB_CSV_SYNC_MAX_BYTES = 10
    for _ in range(jobs.MAX_UNFINISHED_PER_CPO):
        assert as_alpha.post(URL, {"file": csv_file(csv_template())}, format="multipart").status_code == 200
    busy = as_alpha.post(URL, {"file": csv_file(csv_template())}, format="multipart")
    assert busy.status_code == 429 and busy["Retry-After"] == "60" and busy.json()["data"] == []
    assert CsvImport.objects.count() == jobs.MAX_UNFINISHED_PER_CPO  # nothing stored nor recorded
    assert as_bravo.post(URL, {"file": csv_file(csv_template())}, format="multipart").status_code == 200


def test_format_auto_tells_the_layout_from_the_header(as_alpha, alpha):
    from pathlib import Path

    ours = as_alpha.post(URL, {"file": csv_file(csv_template()), "format": "auto"}, format="multipart")
    assert ours.status_code == 200 and ours.json()["import"]["format"] == "evhub"
    register = Path(__file__).resolve().parents[2] / "locations" / "fixtures" / "bnetza-2019-sample.csv"
    upload = SimpleUploadedFile("register.csv", register.read_bytes(), content_type="text/csv")
    response = as_alpha.post(URL, {"file": upload, "format": "auto"}, format="multipart")
    assert response.json()["import"]["format"] == "bnetza", response.json()["message"]
    unknown = as_alpha.post(URL, {"file": csv_file("colour,size\nred,9\n"), "format": "auto"}, format="multipart")
    body = unknown.json()
    assert unknown.status_code == 400 and body["data"][0]["row"] == 0 and "no known header" in body["data"][0]["reason"]
    assert body["import"]["format"] == "auto"

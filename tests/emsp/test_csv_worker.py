"""A large CSV upload imported by a real Celery worker (a process of its own, on the test's Redis and
database), followed through the portal while it runs: the upload answers at once, the progress grows
batch by batch, and the report is read back when it is done."""

import csv
import io
import os
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from config.celery import app as celery_app
from locations.csv_import import COLUMNS
from locations.models import Connector, CsvImport, Location

URL = "/ocpi/cpo/api/v2/locations/uploads/csv"

# serialized_rollback: the seeded lookup tables must be there for the tests that run after these.
pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True),
              pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis broker")]


def big_csv(locations: int) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for index in range(locations):
        for evse in (1, 2):
            for connector in (1, 2):
                writer.writerow({
                    "location_id": f"W{index}", "name": f"Worker {index}", "address": f"Hauptstraße {index}",
                    "city": "Mannheim", "postal_code": "68159", "country": "DE",
                    "latitude": f"49.{index:06d}", "longitude": "8.468098", "facilities": "CAFE|WIFI",
                    "evse_uid": f"W{index}-{evse}", "evse_status": "AVAILABLE", "connector_id": str(connector),
                    "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                    "max_voltage": "230", "max_amperage": "32", "max_electric_power": "22000",
                })
    return out.getvalue().encode("utf-8")


@pytest.fixture
def worker(settings):
    """`celery worker` as the Procfile starts it (one process), pointed at the test database and media."""
    database = django_settings.DATABASES["default"]
    if connection.vendor != "postgresql":
        pytest.skip("the worker reaches the test database over the network")
    url = (f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:{database['PORT']}/"
           f"{database['NAME']}")
    celery_app.control.purge()  # nothing left over from other tests' uploads
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "WARNING"],
        cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": url,
             "EVHUB_MEDIA_ROOT": str(settings.MEDIA_ROOT)},
    )
    yield process
    process.terminate()
    process.wait(timeout=30)


def test_a_large_upload_is_imported_by_a_worker_and_followed_while_it_runs(as_alpha, as_bravo, alpha, worker):
    content = big_csv(2500)  # 10,000 rows, five batches
    assert len(content) > django_settings.EVHUB_CSV_SYNC_MAX_BYTES
    started = time.monotonic()
    response = as_alpha.post(URL, {"file": SimpleUploadedFile("big.csv", content, content_type="text/csv")},
                             format="multipart")
    answered = time.monotonic() - started
    body = response.json()
    assert response.status_code == 200, body
    assert (body["status"], body["data"], body["message"]) == (200, [], "Success")
    assert body["import"]["status"] == "QUEUED" and answered < 5
    url = response["Location"]

    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert worker.poll() is None, worker.stderr.read().decode()[-3000:]
        data = as_alpha.get(url).json()["data"]
        seen.append((data["status"], data["rows"], data["progress"]))
        if data["status"] in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(0.05)
    assert data["status"] == "SUCCEEDED", (data, worker.stderr.read().decode()[-3000:] if worker.poll() else "")
    assert (data["rows"], data["created"], data["error_count"], data["progress"]) == (10_000, 2500, 0, 100)
    assert data["errors"] == [] and data["background"] is True
    # Read while its transaction was open: rows and progress grew batch by batch.
    running = [(rows, progress) for status, rows, progress in seen if status == "RUNNING" and rows]
    # (Every row read and the transaction committing is RUNNING too: rows 10,000, progress still below 100.)
    assert running and all(0 < rows <= 10_000 and progress < 100 for rows, progress in running), seen
    assert any(rows < 10_000 for rows, _progress in running), seen
    assert (Location.objects.filter(cpo=alpha).count(), Connector.objects.count()) == (2500, 10_000)
    assert CsvImport.objects.get(pk=body["import"]["id"]).file == ""  # the upload is not kept
    assert as_bravo.get(url).status_code == 404


def test_a_refused_file_in_the_worker_keeps_nothing_and_reports_its_rows(as_alpha, alpha, worker, settings):
    content = big_csv(400).replace(b"AC_3_PHASE", b"AC_9_PHASE", 1)
    response = as_alpha.post(URL, {"file": SimpleUploadedFile("bad.csv", content, content_type="text/csv"),
                                   "format": "evhub"}, format="multipart")
    # Small enough for the request: the answer is the report itself, as it always was.
    assert response.status_code == 400 and response.json()["data"][0]["row"] == 2
    settings.EVHUB_CSV_SYNC_MAX_BYTES = 1000
    queued = as_alpha.post(URL, {"file": SimpleUploadedFile("bad.csv", content, content_type="text/csv")},
                           format="multipart")
    assert queued.status_code == 200 and queued.json()["import"]["status"] == "QUEUED"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert worker.poll() is None, worker.stderr.read().decode()[-3000:]
        data = as_alpha.get(queued["Location"]).json()["data"]
        if data["status"] in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(0.05)
    assert data["status"] == "FAILED" and data["error_count"] == 1
    assert data["errors"] == response.json()["data"]
    assert not Location.objects.filter(cpo=alpha).exists()

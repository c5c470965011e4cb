"""The portal's CSV upload and template: all or nothing, a per-row report, one CPO's data only."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from locations.csv_import import csv_template
from locations.models import Connector, Location

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
    assert again.status_code == 200 and "1 unchanged" in again.json()["message"]


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

"""Filters, cities, details, logos, photos and pending counts; bravo never reaches alpha's objects."""

import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from locations import services
from locations.enums import Moderation
from locations.models import Photo
from tests.conftest import location_payload

pytestmark = pytest.mark.django_db


def png(size=(64, 48), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def upload(name: str, content: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.fixture
def alpha_location(alpha):
    return services.location_upsert(cpo=alpha, data=location_payload(alpha, province="Zambales",
                                                                     city="Olongapo")).instance


def test_filters_list_every_lookup_with_the_contract_codes(basic):
    response = basic.get("/ocpi/cpo/2.2/filters")
    data = response.json()["data"]
    assert response.status_code == 200
    assert set(data) == {"connector_types", "facilities", "capabilities", "payment_types", "parking_types",
                         "parking_restrictions"}
    codes = {name: {row["code"] for row in rows} for name, rows in data.items()}
    assert {"TYPE_1", "TYPE_2", "CHADEMO", "GBT", "IEC_62196_T2"} <= codes["connector_types"]
    assert {"BANKS/ATM", "CAFE", "WIFI", "HOTEL"} <= codes["facilities"]
    assert {"CREDIT_DEBIT_PAYABLE", "QR_READER", "PRIVILEGE_AND_LOYALTY"} <= codes["capabilities"]
    assert codes["payment_types"] == {"GCASH", "MAYA"}
    assert {"INDOOR", "OUTDOOR"} <= codes["parking_types"]
    assert {"CUSTOMERS", "DISABLED"} <= codes["parking_restrictions"]
    assert set(data["facilities"][0]) == {"id", "code", "description"}


def test_filters_need_a_client_key(api):
    assert api.get("/ocpi/cpo/2.2/filters").status_code == 401


def test_cities_are_those_with_published_locations_in_the_province(basic, alpha, alpha_location):
    assert basic.get("/ocpi/cpo/2.2/filters/cities/Zambales").json()["data"] == []
    services.location_moderate(location=alpha_location, moderation=Moderation.PUBLISHED)
    response = basic.get("/ocpi/cpo/2.2/filters/cities/zambales")
    assert response.status_code == 200 and response.json()["data"] == [{"city": "Olongapo"}]
    assert basic.get("/ocpi/cpo/2.2/filters/cities/Bataan").json()["data"] == []
    assert basic.get("/ocpi/cpo/2.2/filters/cities/Zambales?limit=x").status_code == 400


def test_details_show_the_callers_cpo(as_alpha, as_bravo):
    data = as_alpha.get("/ocpi/cpo/2.2/details").json()["data"]
    assert data == {"party_id": "ALP", "cpo_owner_name": "Alpha Charging GmbH", "contact_name": "",
                    "contact_number": "", "contact_email": "", "logo": ""}
    assert as_bravo.get("/ocpi/cpo/2.2/details").json()["data"]["party_id"] == "BRV"


def test_logo_upload_then_register_and_update(basic, as_alpha, alpha):
    response = basic.post("/ocpi/cpo/2.2/cpo/upload", {"cpo_logo": upload("logo.png", png())}, format="multipart")
    assert response.status_code == 200 and response.json()["data"] == []
    name = response["X-File-Name"]
    assert name == response.json()["file_name"] and name.startswith("logos/") and "logo.png" not in name
    assert default_storage.exists(name)
    patch = as_alpha.patch("/ocpi/cpo/2.2/cpo/logo/upload", {"logo": name}, format="json")
    assert patch.status_code == 200
    assert as_alpha.get("/ocpi/cpo/2.2/details").json()["data"]["logo"].endswith(name)
    assert as_alpha.patch("/ocpi/cpo/2.2/cpo/logo/upload", {"logo": "logos/nope.png"},
                          format="json").status_code == 400


def test_a_logo_of_one_cpo_cannot_be_claimed_by_another(basic, as_alpha, as_bravo):
    name = basic.post("/ocpi/cpo/2.2/cpo/upload", {"cpo_logo": upload("a.png", png())},
                      format="multipart")["X-File-Name"]
    assert as_alpha.patch("/ocpi/cpo/2.2/cpo/logo/upload", {"logo": name}, format="json").status_code == 200
    stolen = as_bravo.patch("/ocpi/cpo/2.2/cpo/logo/upload", {"logo": name}, format="json")
    assert stolen.status_code == 400 and "another CPO" in stolen.json()["message"]


def _upload_logo(api, file_name: str, color=(200, 30, 30)) -> str:
    response = api.post("/ocpi/cpo/2.2/cpo/upload", {"cpo_logo": upload(file_name, png(color=color))},
                        format="multipart")
    assert response.status_code == 200, response.json()
    return response["X-File-Name"]


def test_a_logo_is_named_by_the_file_name_its_caller_uploaded(basic, client_key, as_alpha, alpha):
    first = _upload_logo(basic, "filename.png")
    latest = _upload_logo(basic, "filename.png", color=(0, 0, 200))
    response = as_alpha.patch("/ocpi/cpo/2.2/cpo/logo/upload", {"logo": "filename.png"}, format="json")
    assert response.status_code == 200 and response.json() == {"status": 200, "data": [], "message": "Success"}
    alpha.refresh_from_db()
    assert alpha.logo == latest != first  # the latest upload of that name
    unknown = as_alpha.patch("/ocpi/cpo/2.2/cpo/logo/upload", {"logo": "other.png"}, format="json")
    assert unknown.status_code == 400 and "upload it first" in unknown.json()["message"]


def test_a_cpo_user_may_upload_its_logo_itself(as_alpha, alpha):
    name = _upload_logo(as_alpha, "mine.webp.png")
    assert as_alpha.patch("/ocpi/cpo/2.2/cpo/logo/upload", {"logo": "mine.webp.png"},
                          format="json").status_code == 200
    alpha.refresh_from_db()
    assert alpha.logo == name


def test_register_resolves_the_logo_among_its_own_clients_uploads_only(basic):
    from rest_framework.test import APIClient

    from emsp.services import portal_client_create
    from locations.models import Cpo

    _, other_key = portal_client_create(name="another front end")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Basic {other_key}")
    others = _upload_logo(api, "cpo-logo.png")
    body = {"username": "solarius", "cpo_owner_name": "Solarius", "contact_name": "CEO",
            "contact_number": "09123456782", "contact_email": "ceo@solarius.example", "ocpp_ready": True,
            "logo": "cpo-logo.png"}
    refused = basic.post("/ocpi/cpo/2.2/register", body, format="json")
    assert refused.status_code == 400 and "cpo-logo.png" in refused.json()["message"]
    own = _upload_logo(basic, "cpo-logo.png")
    assert basic.post("/ocpi/cpo/2.2/register", body, format="json").status_code == 200
    assert Cpo.objects.get(owner__username="solarius").logo == own != others


def test_a_file_name_never_resolves_to_a_logo_another_cpo_uses(basic, as_alpha, as_bravo, alpha, bravo):
    _upload_logo(basic, "logo.png")
    assert as_alpha.patch("/ocpi/cpo/2.2/cpo/logo/upload", {"logo": "logo.png"}, format="json").status_code == 200
    taken = as_bravo.patch("/ocpi/cpo/2.2/cpo/logo/upload", {"logo": "logo.png"}, format="json")
    assert taken.status_code == 400
    bravo.refresh_from_db()
    assert bravo.logo == ""


@pytest.mark.parametrize("spelling", ["logos/./{y}/{m}/{f}", "logos/{y}//{m}/{f}", "logos/{y}/{m}/../{m}/{f}",
                                      "logos/{y}/{m}", "logos/{y}/{m}/", "/logos/{y}/{m}/{f}"])
def test_another_spelling_of_a_storage_name_claims_nothing(basic, as_alpha, as_bravo, bravo, spelling):
    name = _upload_logo(basic, "a.png")
    assert as_alpha.patch("/ocpi/cpo/2.2/cpo/logo/upload", {"logo": name}, format="json").status_code == 200
    year, month, file = name.split("/")[1:]
    response = as_bravo.patch("/ocpi/cpo/2.2/cpo/logo/upload",
                              {"logo": spelling.format(y=year, m=month, f=file)}, format="json")
    assert response.status_code == 400
    bravo.refresh_from_db()
    assert bravo.logo == ""


@pytest.mark.parametrize(("content", "status"), [
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 415),
    (b"GIF89a" + b"\x00" * 40, 415),
    (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, 400),
])
def test_logo_upload_refuses_what_is_not_a_jpeg_png_or_webp(basic, content, status):
    response = basic.post("/ocpi/cpo/2.2/cpo/upload", {"cpo_logo": upload("x.png", content)}, format="multipart")
    assert response.status_code == status
    assert response.json()["status"] == status and "JPEG, PNG or WebP" in response.json()["message"]


def test_uploads_over_the_size_limit_are_413(basic, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    response = basic.post("/ocpi/cpo/2.2/cpo/upload", {"cpo_logo": upload("big.png", png((400, 400), None) +
                                                                           b"\x00" * 5000)}, format="multipart")
    assert response.status_code == 413


def test_logo_upload_needs_exactly_one_file(basic):
    response = basic.post("/ocpi/cpo/2.2/cpo/upload", {}, format="multipart")
    assert response.status_code == 400 and "cpo_logo" in response.json()["message"]


def test_photos_are_added_to_the_callers_location(as_alpha, alpha_location):
    files = [upload(f"p{i}.png", png()) for i in range(3)]
    response = as_alpha.post("/ocpi/cpo/api/v1/locations/photos/uploads",
                             {"location_photos": files, "location_id": alpha_location.pk}, format="multipart")
    assert response.status_code == 200 and response.json()["data"] == []
    photos = list(Photo.objects.filter(location=alpha_location))
    assert len(photos) == 3
    assert all(default_storage.exists(p.image) and default_storage.exists(p.thumbnail) for p in photos)
    assert photos[0].content_type == "image/png" and (photos[0].width, photos[0].height) == (64, 48)


def test_at_most_five_photos_per_request(as_alpha, alpha_location):
    files = [upload(f"p{i}.png", png()) for i in range(6)]
    response = as_alpha.post("/ocpi/cpo/api/v1/locations/photos/uploads",
                             {"location_photos": files, "location_id": alpha_location.pk}, format="multipart")
    assert response.status_code == 400 and "1 to 5" in response.json()["message"]
    assert not Photo.objects.exists()


def test_one_bad_photo_stores_none(as_alpha, alpha_location):
    files = [upload("ok.png", png()), upload("evil.svg", b"<svg/>", "image/svg+xml")]
    response = as_alpha.post("/ocpi/cpo/api/v1/locations/photos/uploads",
                             {"location_photos": files, "location_id": alpha_location.pk}, format="multipart")
    assert response.status_code == 415
    assert not Photo.objects.exists()


def test_bravo_cannot_add_photos_to_alphas_location(as_bravo, alpha_location):
    response = as_bravo.post("/ocpi/cpo/api/v1/locations/photos/uploads",
                             {"location_photos": [upload("p.png", png())], "location_id": alpha_location.pk},
                             format="multipart")
    assert response.status_code == 404
    assert not Photo.objects.exists()


def test_a_photo_is_replaced_and_bravo_cannot_replace_it(as_alpha, as_bravo, alpha_location,
                                                         django_capture_on_commit_callbacks):
    as_alpha.post("/ocpi/cpo/api/v1/locations/photos/uploads",
                  {"location_photos": [upload("p.png", png())], "location_id": alpha_location.pk}, format="multipart")
    photo = Photo.objects.get()
    old = photo.image
    stolen = as_bravo.patch(f"/ocpi/cpo/api/v1/locations/photos/uploads/{photo.pk}",
                            {"location_photo": upload("q.png", png(color=(0, 0, 0)))}, format="multipart")
    assert stolen.status_code == 404
    assert Photo.objects.get().image == old
    with django_capture_on_commit_callbacks(execute=True):
        response = as_alpha.patch(f"/ocpi/cpo/api/v1/locations/photos/uploads/{photo.pk}",
                                  {"location_photo": upload("q.png", png((32, 32)))}, format="multipart")
    assert response.status_code == 200
    photo.refresh_from_db()
    assert photo.image != old and (photo.width, photo.height) == (32, 32)
    assert not default_storage.exists(old)
    assert as_alpha.patch("/ocpi/cpo/api/v1/locations/photos/uploads/999999",
                          {"location_photo": upload("q.png", png())}, format="multipart").status_code == 404


def test_pending_counts_follow_the_publish_flow(as_alpha, as_bravo, alpha, alpha_location):
    assert as_alpha.get("/ocpi/cpo/2.2/locations/pending").json()["data"] == [
        {"pending_locations": 1, "pending_evses": 1}]
    assert as_bravo.get("/ocpi/cpo/2.2/locations/pending").json()["data"] == "NO_PENDING_LOCATIONS_AND_EVSES"
    services.location_moderate(location=alpha_location, moderation=Moderation.PUBLISHED)
    assert as_alpha.get("/ocpi/cpo/2.2/locations/pending").json()["data"] == "NO_PENDING_LOCATIONS_AND_EVSES"


def test_unknown_portal_paths_answer_in_the_envelope(api):
    response = api.get("/ocpi/cpo/2.2/nothing-here")
    assert response.status_code == 404 and response.json()["status"] == 404


def test_wrong_methods_are_405_in_the_envelope(basic):
    response = basic.delete("/ocpi/cpo/2.2/filters")
    assert response.status_code == 405 and response.json()["message"].startswith("Method Not Allowed")

"""What the fuzzers found, each replayed as found: a request that must keep its fixed answer even when the
derandomized examples of a run no longer happen to send it."""

from __future__ import annotations

import pytest

from locations.models import Evse
from tests.conftest import location_payload
from tests.emsp.conftest import api, basic, client_key  # noqa: F401  (fixtures)
from tests.ocpi.locations_fixtures import alpha_peer, ok  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def test_an_offset_past_postgresqls_bigint_is_an_empty_page_not_a_500(basic):
    # Found by the portal fuzzer: DataError "bigint out of range", answered 500.
    response = basic.get("/ocpi/cpo/2.2/filters/cities/Berlin", {"limit": "231900836298006848",
                                                                  "offset": "89529053833806154301440"})
    assert response.status_code == 200, response.content
    assert response.json() == {"status": 200, "data": [], "message": "Success"}


def test_the_schema_documents_uploaded_files_as_files(anonymous):
    # Found by the portal fuzzer: every upload's file was documented as a URI (`format: uri`), so clients
    # built from the schema (and Swagger's "Try it out") sent a string, and every upload answered 400.
    schema = anonymous.get("/api/schema/?format=json").json()
    uploads = {("/ocpi/cpo/2.2/cpo/upload", "post"): "cpo_logo",
               ("/ocpi/cpo/api/v1/locations/photos/uploads", "post"): "location_photos",
               ("/ocpi/cpo/api/v1/locations/photos/uploads/{photo_id}", "patch"): "location_photo",
               ("/ocpi/cpo/api/v2/locations/uploads/csv", "post"): "file"}
    for (path, method), field in uploads.items():
        body = schema["paths"][path][method]["requestBody"]["content"]["multipart/form-data"]["schema"]
        component = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
        documented = component["properties"][field]
        documented = documented.get("items", documented)
        assert documented == {"type": "string", "format": "binary"}, (path, field, documented)


@pytest.mark.parametrize("latitude", [-2.2250738585e-313, "49.123456789", 49.12345675])
def test_a_coordinate_is_stored_as_ocpi_says_it(alpha, alpha_peer, latitude):
    # Found by the receiver fuzzer: an EVSE latitude sent with more than OCPI's 7 decimals (a JSON number
    # 2e-313) was stored as sent and served as "-0.00000"; the sender's own object PUT back changed the row.
    body = location_payload(alpha, "L1", last_updated="2024-06-01T00:00:00Z")
    body["evses"][0]["coordinates"] = {"latitude": latitude, "longitude": "8.468098"}
    ok(alpha_peer.put("/ocpi/2.2.1/emsp/locations/DE/ALP/L1", body), 201)
    stored = list(Evse.objects.values_list("evse_lat", flat=True))
    served = ok(alpha_peer.get("/ocpi/2.2.1/emsp/locations/DE/ALP/L1"))["data"]
    assert stored == [float(served["evses"][0]["coordinates"]["latitude"])]
    assert ok(alpha_peer.put("/ocpi/2.2.1/emsp/locations/DE/ALP/L1", served))["status_message"] == "Success: unchanged"
    assert list(Evse.objects.values_list("evse_lat", flat=True)) == stored

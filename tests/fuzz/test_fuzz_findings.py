"""What the fuzzers found, each replayed as found: a request that must keep its fixed answer even when the
derandomized examples of a run no longer happen to send it."""

from __future__ import annotations

import json

import pytest

from tests.emsp.conftest import api, basic, client_key  # noqa: F401  (fixtures)

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

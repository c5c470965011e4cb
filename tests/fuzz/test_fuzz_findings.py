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

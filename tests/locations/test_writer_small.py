"""A few new rows go in as one batch of INSERTs, the lookup codes come from a per-process cache checked
against the tables once per batch, and a single location's write takes a constant handful of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from locations import services
from locations.writer import inserts, lookups
from locations.models import Facility, Location
from tests.conftest import location_payload
from tests.locations.test_writer_copy import outcomes, rich_payload, stored

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
def test_small_inserts_and_copy_store_identical_rows(alpha, bravo, monkeypatch):
    def payloads(cpo):
        return [rich_payload(cpo, f"LOC{i}") for i in range(3)] + [location_payload(cpo, "PLAIN")]

    with CaptureQueriesContext(connection) as queries:
        with_inserts = services.location_upsert_many(cpo=alpha, items=payloads(alpha))
    assert not any(str(q["sql"]).startswith("COPY") for q in queries.captured_queries)
    monkeypatch.setattr(inserts, "COPY_FROM", 1)
    with CaptureQueriesContext(connection) as queries:
        with_copy = services.location_upsert_many(cpo=bravo, items=payloads(bravo))
    assert any("COPY" in str(q["sql"]) for q in queries.captured_queries)
    assert outcomes(with_inserts) == outcomes(with_copy) == [(True, True, False)] * 4
    assert stored(alpha) == stored(bravo)
    for result in with_inserts:
        assert result.instance.pk and not result.instance._state.adding


def test_one_location_is_written_with_a_constant_handful_of_queries(alpha):
    data = location_payload(alpha, facilities=["CAFE", "WIFI"])
    services.location_upsert(cpo=alpha, data=location_payload(alpha, "WARM"))  # the lookup cache is warm
    with CaptureQueriesContext(connection) as queries:
        services.location_upsert(cpo=alpha, data=data)
    writes = [q for q in queries.captured_queries if not str(q["sql"]).startswith(("SAVEPOINT", "RELEASE"))]
    if connection.vendor == "postgresql":
        # the stored location, the lookup tables' fingerprint, the new ids, one batch of INSERTs
        assert len(writes) <= 5, [str(q["sql"])[:80] for q in writes]
    data["evses"][0]["capabilities"] = ["RESERVABLE"]
    data["facilities"] = ["WIFI"]
    data["last_updated"] = "2024-06-01T00:00:00Z"
    with CaptureQueriesContext(connection) as queries:
        result = services.location_upsert(cpo=alpha, data=data)
    assert result.changed
    through = [q for q in queries.captured_queries if "_facilities" in str(q["sql"]) or "_capabilities" in str(q["sql"])]
    assert len(through) == 3  # all through tables read at once, 1 DELETE (CAFE), 1 INSERT (RESERVABLE)
    location = Location.objects.get(ocpi_id=data["id"])
    assert list(location.facilities.values_list("code", flat=True)) == ["WIFI"]
    assert list(location.evses.get().capabilities.values_list("code", flat=True)) == ["RESERVABLE"]


def test_the_lookup_cache_notices_codes_deleted_and_added(alpha):
    services.location_upsert(cpo=alpha, data=location_payload(alpha, "L1", facilities=["CAFE"]))
    Facility.objects.filter(code="CAFE").delete()
    Facility.objects.create(code="CAFE", description="re-added: a new id")
    result = services.location_upsert(cpo=alpha, data=location_payload(alpha, "L2", facilities=["CAFE"]))
    assert list(result.instance.facilities.values_list("description", flat=True)) == ["re-added: a new id"]
    Facility.objects.filter(code="WIFI").delete()
    with pytest.raises(services.InvalidPayload, match="unknown codes: WIFI"):
        services.location_upsert(cpo=alpha, data=location_payload(alpha, "L3", facilities=["WIFI"]))
    Facility.objects.create(code="WIFI")
    result = services.location_upsert(cpo=alpha, data=location_payload(alpha, "L3", facilities=["WIFI"]))
    assert list(result.instance.facilities.values_list("code", flat=True)) == ["WIFI"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_code_replaced_by_another_process_is_noticed_by_the_next_write(alpha, monkeypatch):
    """No signal reaches this process when another one changes a lookup table, and the fingerprint is
    asked at most every few seconds: the write fails on the foreign key and is replayed with the tables
    read again."""
    monkeypatch.setattr(lookups, "LOOKUP_RECHECK_SECONDS", 3600.0)  # the cached maps are fresh throughout
    monkeypatch.setattr(lookups, "_UNCOMMITTED", set())
    services.location_upsert(cpo=alpha, data=location_payload(alpha, "L1", facilities=["CAFE"]))
    facility, through = Facility._meta.db_table, Location.facilities.through._meta.db_table
    with connection.cursor() as cursor:  # as another process would: plain SQL, no signal
        cursor.execute(f"DELETE FROM {through} WHERE facility_id IN (SELECT id FROM {facility} WHERE code = 'CAFE')")
        cursor.execute(f"DELETE FROM {facility} WHERE code = 'CAFE'")
        cursor.execute(f"INSERT INTO {facility} (code, description) VALUES ('CAFE', 'added elsewhere')")
    result = services.location_upsert(cpo=alpha, data=location_payload(alpha, "L2", facilities=["CAFE"]))
    assert list(result.instance.facilities.values_list("description", flat=True)) == ["added elsewhere"]


def test_a_lookup_change_rolled_back_makes_every_batch_check_the_tables(alpha, monkeypatch):
    monkeypatch.setattr(lookups, "_UNCOMMITTED", set())
    Facility.objects.create(code="NEW-IN-THIS-TRANSACTION")  # the test's transaction never commits
    assert connection.alias in lookups._UNCOMMITTED
    services.location_upsert(cpo=alpha, data=location_payload(alpha, "L1", facilities=["CAFE"]))
    with CaptureQueriesContext(connection) as queries:
        services.location_upsert(cpo=alpha, data=location_payload(alpha, "L2", facilities=["CAFE"]))
    assert [q for q in queries.captured_queries if "UNION ALL" in str(q["sql"])]  # the fingerprint, asked again


def test_the_lookup_tables_are_not_read_again_within_the_recheck_interval(alpha, monkeypatch):
    # An earlier test's rolled-back change of a lookup table makes this process check every batch.
    monkeypatch.setattr(lookups, "_UNCOMMITTED", set())
    services.location_upsert(cpo=alpha, data=location_payload(alpha, "L1", facilities=["CAFE"]))
    with CaptureQueriesContext(connection) as queries:
        services.location_upsert(cpo=alpha, data=location_payload(alpha, "L2", facilities=["CAFE"]))
    assert not [q for q in queries.captured_queries if "locations_facility" in str(q["sql"]).split("JOIN")[0]
                and "UNION ALL" in str(q["sql"])]

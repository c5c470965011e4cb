"""The writer's inserts under foreign keys checked statement by statement, as an import that is its own
transaction runs them: parents land before their children whichever path each takes, and a big import
into an empty catalogue checks each row by the parent's index, not by reading the whole parent."""

import pytest
from django.db import connection, transaction

from locations import services
from locations.csv_import import locations_import_csv
from locations.models import Connector, Evse, Location
from locations.writer import inserts
from tests.conftest import location_payload
from tests.locations.test_csv_import import as_csv, grid

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY and its plans are PostgreSQL's")


def payload(cpo, index: int) -> dict:
    item = location_payload(cpo, f"LOC{index}")
    second = dict(item["evses"][0], uid=f"LOC{index}-E2", evse_id="")
    item["evses"].append(second)
    return item


@pytest.mark.django_db
def test_children_copied_in_after_parents_inserted_pass_immediate_foreign_keys(alpha):
    # 20 locations, 40 EVSEs, 80 connectors: the EVSEs go by INSERT, their connectors by COPY. The COPY
    # ran first, and with immediate checks the connectors named EVSEs not there yet.
    items = [payload(alpha, i) for i in range(20)]
    assert 40 < inserts.COPY_FROM <= 80
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    results = services.location_upsert_many(cpo=alpha, items=items)
    assert all(result.created for result in results)
    assert (Location.objects.count(), Evse.objects.count(), Connector.objects.count()) == (20, 40, 80)


def _seq_scans_in_this_transaction() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, seq_scan FROM pg_stat_xact_user_tables "
                       "WHERE relname IN ('locations_location', 'locations_evse')")
        return dict(cursor.fetchall())


def _import(cpo, locations: int, first: int) -> None:
    import io

    report = locations_import_csv(cpo=cpo, file=io.BytesIO(as_csv(grid(locations, first=first))))
    assert report.committed and report.created == locations, report.errors[:3]


# serialized_rollback: the seeded lookup tables must be there whatever transactional test ran before.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_big_import_after_small_writes_in_the_same_session_reads_parents_by_index(alpha):
    # Empty tables of no pages, as after a delete and VACUUM, and a session with no plans yet.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM locations_location, locations_evse")
        cursor.execute("DISCARD PLANS")
    # The CPO tries a small file first: its foreign-key checks are planned on tables of a page or two.
    _import(alpha, 20, first=5000)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as the import does as its own transaction
        before = _seq_scans_in_this_transaction()
        _import(alpha, 600, first=1)  # 2,400 rows in two batches: 3,000 checks of a location, 3,600 of an EVSE
        after = _seq_scans_in_this_transaction()
    scans = {table: after.get(table, 0) - before.get(table, 0) for table in ("locations_location", "locations_evse")}
    # A few reads per batch may scan; a scan per checked row is what made 100,000 rows take 516 s.
    assert scans["locations_location"] <= 10 and scans["locations_evse"] <= 10, scans
    assert Connector.objects.count() == 4 * 620

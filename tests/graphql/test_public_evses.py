"""Each location's public EVSEs as PostgreSQL's triggers keep them (models.PublicEvses, migration 0008), which
the compiled search reads (locations/graphql_compiled.py).

The rows are compared with what the search's own SQL (graphql_compiled.EVSE_SQL and CONNECTOR_SQL, in the
layout EVSE_DOC and CONNECTOR_DOC) gives from the EVSE and connector tables, after each kind of write: the
services the four write paths use, the ORM's bulk updates and deletes, SQL by hand, and two transactions
writing EVSEs of one location at once.
"""

import threading
from datetime import datetime, timezone

import orjson
import pytest
from django.db import connection, connections, transaction
from django.utils.timezone import now as django_now

from locations import graphql_compiled, selectors, services
from locations.graphql_compiled import CONNECTOR_DOC, CONNECTOR_SQL, EVSE_DOC, EVSE_SQL
from locations.models import Connector, Evse, Location, PublicEvses
from tests.conftest import location_payload

from .test_compiled import EVERYTHING, NEAR, answers, stations  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's triggers keep the rows (SQLite's search reads the EVSEs themselves)")


def expected() -> dict[int, list]:
    """{location id: its public EVSEs as the search's SQL gives them from the tables}, locations with one."""
    evse_fields = ", ".join(EVSE_SQL[field] for field in EVSE_DOC[:-1])
    connector_fields = ", ".join(CONNECTOR_SQL[field] for field in CONNECTOR_DOC)
    sql = (f"SELECT e.location_id, json_agg(json_build_array({evse_fields}, "
           f"(SELECT coalesce(json_agg(json_build_array({connector_fields}) ORDER BY n.id), '[]'::json) "
           f"FROM locations_connector n WHERE n.evse_id = e.id)) ORDER BY e.id)::text "
           f"FROM locations_evse e WHERE e.moderation = 'PUBLISHED' AND e.status <> 'REMOVED' GROUP BY e.location_id")
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {location: orjson.loads(text) for location, text in cursor.fetchall()}


def kept() -> dict[int, list]:
    return {row.location_id: orjson.loads(row.evses) for row in PublicEvses.objects.all()}


def assert_kept():
    assert kept() == expected()


def test_the_rows_hold_what_the_searchs_sql_gives(stations):
    rows = kept()
    public = Evse.objects.filter(moderation="PUBLISHED").exclude(status="REMOVED")
    assert set(rows) == set(public.values_list("location_id", flat=True))
    assert len(rows) >= 26
    assert rows == expected()
    removed = Evse.objects.get(status="REMOVED")
    assert removed.uid not in {evse[0] for evses in rows.values() for evse in evses}
    sample = rows[Location.objects.get(ocpi_id="Q000").pk]
    assert [evse[EVSE_DOC.index("uid")] for evse in sample] == ["Q000-E1", "Q000-E2"]
    assert [[c[CONNECTOR_DOC.index("max_electric_power")] for c in evse[-1]] for evse in sample] == [[22000, 44000]] * 2


def test_the_apps_search_reads_them_and_a_connector_type_reads_the_tables(stations):
    from config.schema import schema
    from graphql import parse

    near = graphql_compiled.plan_of(schema.graphql_schema, parse(NEAR), None)
    assert (graphql_compiled.PUBLIC_EVSES, selectors.public_evses_doc_sql()) in near.json_columns
    assert not any(alias.startswith("_j_") for alias, _ in near.json_columns)
    everything = graphql_compiled.plan_of(schema.graphql_schema, parse(EVERYTHING), None)
    aliases = [alias for alias, _ in everything.json_columns]
    assert "_j_evses" in aliases  # the selection with connector_type
    assert graphql_compiled.PUBLIC_EVSES in aliases  # `more:` and the merged `evses { uid }`


# Every EVSE and connector field the rows hold, with aliases and __typename.
ALL_HELD = """
query Held($lat: Float!, $lng: Float!) {
  find_ev_filter_locations(lat: $lat, lng: $lng, distance: 50, limit: 30) {
    id evses { __typename uid evse_id serial_number meter_type status cpo_location_id current_ws_connection_id
               server_id date_created
               plugs: connectors { __typename id evse_uid connector_id standard format power_type max_voltage
                                   max_amperage watts: max_electric_power rate_setting status date_created
                                   date_modified } }
  }
}
"""


@pytest.mark.parametrize("point", [{"lat": 49.41, "lng": 8.47}, {"lat": 52.52, "lng": 13.405}])
def test_every_field_they_hold_answers_as_graphene(answers, stations, point):
    from config.schema import schema
    from graphql import parse

    plan = graphql_compiled.plan_of(schema.graphql_schema, parse(ALL_HELD), None)
    assert [alias for alias, _ in plan.json_columns] == [graphql_compiled.PUBLIC_EVSES]
    status, body, compiled = answers(ALL_HELD, point)
    assert compiled and status == 200
    found = body["data"]["find_ev_filter_locations"]
    assert found and any(location["evses"] for location in found)


def test_the_services_writes_keep_them(stations, answers):
    location = Location.objects.get(ocpi_id="Q003")
    evse = Evse.objects.filter(location=location).order_by("id").first()
    point = {"lat": 49.4003, "lng": 8.4603}

    services.evse_status_patch(evse=evse, status="CHARGING")
    assert_kept()
    services.evse_status_patch(evse=evse, status="REMOVED")
    assert_kept()
    assert len(kept()[location.pk]) == 1
    status, body, compiled = answers(NEAR, point)
    assert compiled and status == 200
    assert [e["uid"] for e in body["data"]["find_ev_filter_locations"][0]["evses"]] == ["Q003-E2"]

    connector = Connector.objects.filter(evse__location=location, evse__uid="Q003-E2").order_by("id").first()
    services.connector_patch(connector=connector, data={"max_electric_power": 11000,
                                                         "last_updated": "2024-06-01T10:00:00Z"})
    assert_kept()
    assert kept()[location.pk][0][-1][0][CONNECTOR_DOC.index("max_electric_power")] == 11000
    answers(NEAR, point)

    services.evse_moderate(evse=Evse.objects.get(location=location, uid="Q003-E2"), moderation="PENDING")
    assert_kept()
    assert location.pk not in kept()
    status, body, _ = answers(NEAR, point)
    assert body["data"]["find_ev_filter_locations"][0]["evses"] == []

    # A location's PUT, newer than what is stored: the EVSEs it no longer names become REMOVED.
    result = services.location_upsert(cpo=stations, data=location_payload(
        stations, "Q003", coordinates={"latitude": "49.4003", "longitude": "8.4603"},
        last_updated=django_now().isoformat(),
        evses=[{"uid": "Q003-NEW", "status": "AVAILABLE", "last_updated": "2024-07-01T10:00:00Z", "connectors": [
            {"id": "1", "standard": "IEC_62196_T2", "format": "CABLE", "power_type": "AC_3_PHASE", "max_voltage": 400,
             "max_amperage": 16, "last_updated": "2024-07-01T10:00:00Z"}]}]))
    assert result.changed and not result.stale
    services.location_moderate(location=Location.objects.get(pk=location.pk), moderation="PUBLISHED")
    assert_kept()
    public = Evse.objects.filter(location=location, moderation="PUBLISHED").exclude(status="REMOVED").order_by("id")
    assert [evse[0] for evse in kept().get(location.pk, [])] == [evse.uid for evse in public]
    assert Evse.objects.filter(location=location, uid="Q003-NEW").exists()
    answers(NEAR, point)


def test_bulk_updates_moves_deletes_and_sql_by_hand_keep_them(stations):
    first, second = Location.objects.filter(ocpi_id__in=["Q001", "Q002"]).order_by("ocpi_id")
    # An update of columns the rows do not hold leaves them as they are (and they stay right).
    Evse.objects.filter(location=first).update(last_updated=datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert_kept()
    Connector.objects.filter(evse__location=first).update(rate_setting="0.4500", status="AVAILABLE")
    assert_kept()
    # An EVSE moved to another location leaves the one and joins the other.
    moved = Evse.objects.filter(location=first).order_by("id").first()
    Evse.objects.filter(pk=moved.pk).update(location=second, uid="MOVED")
    assert_kept()
    assert [evse[0] for evse in kept()[second.pk]] == ["MOVED", "Q002-E1", "Q002-E2"]  # by id
    Connector.objects.filter(evse=moved).delete()
    assert_kept()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE locations_evse SET status = 'OUTOFORDER' WHERE location_id = %s", [second.pk])
        cursor.execute("DELETE FROM locations_connector WHERE evse_id IN "
                       "(SELECT id FROM locations_evse WHERE location_id = %s AND uid = 'Q002-E1')", [second.pk])
    assert_kept()
    Location.objects.filter(pk__in=[first.pk, second.pk]).delete()
    assert_kept()
    assert first.pk not in kept() and second.pk not in kept()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the seeded lookups stay
def test_two_transactions_writing_evses_of_one_location_both_count(alpha):
    """The second transaction's refresh waits for the first to commit (the location's lock), then reads
    both EVSEs: without the lock it would read without the first's and fail on the row the first wrote."""
    services.location_upsert(cpo=alpha, data=location_payload(alpha, "LOCK", evses=[]))
    location = Location.objects.get(ocpi_id="LOCK")
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    inserted, release, errors, done = threading.Event(), threading.Event(), [], []

    def write(uid: str, hold: bool) -> None:
        try:
            with transaction.atomic():
                Evse.objects.create(location_id=location.pk, uid=uid, status="AVAILABLE", moderation="PUBLISHED",
                                    last_updated=now)
                if hold:
                    inserted.set()
                    release.wait(10)
            done.append(uid)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    first = threading.Thread(target=write, args=("FIRST", True))
    first.start()
    assert inserted.wait(10)
    second = threading.Thread(target=write, args=("SECOND", False))
    second.start()
    second.join(0.5)
    assert second.is_alive(), "the second refresh did not wait for the first transaction"
    release.set()
    first.join(10)
    second.join(10)
    assert not errors, errors
    assert done == ["FIRST", "SECOND"]
    assert [evse[0] for evse in kept()[location.pk]] == ["FIRST", "SECOND"]
    assert_kept()


def test_the_writers_batches_refresh_once_and_then_leave_it_to_the_triggers(alpha):
    """A batch of the writer defers the triggers and refreshes its locations after its last statement: new
    rows by COPY, many updates (bulk_update's own statements), connectors deleted after the inserts. In the
    same transaction afterwards the triggers work again."""
    def payloads(power: int, connectors: int = 2) -> list[dict]:
        return [location_payload(alpha, f"W{i:02}", last_updated=f"2025-0{power}-01T00:00:00Z", evses=[
            {"uid": f"W{i:02}-E{e}", "status": "AVAILABLE", "last_updated": f"2025-0{power}-01T00:00:00Z",
             "connectors": [{"id": str(c), "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                             "max_voltage": 400, "max_amperage": 32, "max_electric_power": 1000 * power + c,
                             "last_updated": f"2025-0{power}-01T00:00:00Z"} for c in range(1, connectors + 1)]}
            for e in (1, 2)]) for i in range(30)]

    alpha.auto_publish = True
    alpha.save(update_fields=["auto_publish"])
    services.location_upsert_many(cpo=alpha, items=payloads(1))  # 60 EVSEs, 120 connectors: COPY
    assert_kept()
    assert len(kept()) == 30
    services.location_upsert_many(cpo=alpha, items=payloads(2))  # 120 connector updates: bulk_update
    assert_kept()
    assert {c[CONNECTOR_DOC.index("max_electric_power")] for evses in kept().values() for e in evses
            for c in e[-1]} == {2001, 2002}
    services.location_upsert_many(cpo=alpha, items=payloads(3, connectors=1)[:3])  # connectors deleted
    assert_kept()
    assert [len(e[-1]) for e in kept()[Location.objects.get(ocpi_id="W00").pk]] == [1, 1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('evhub.public_evses', true)")
        assert cursor.fetchone()[0] == ""
    Evse.objects.filter(uid="W05-E1").update(status="REMOVED")  # the triggers, in the same transaction
    assert_kept()
    assert [e[0] for e in kept()[Location.objects.get(ocpi_id="W05").pk]] == ["W05-E2"]

"""PostgreSQL's nearest-first page (GiST KNN over the unit-sphere cube, locations 0007) against the plain search.

locations_search_page must give exactly what `locations_search` gives (ids, order, distances to the last
bit), whichever branch of its statement answers: the KNN candidates, or the re-read when more than
KNN_SLACK rows tie at the page's edge (stacked coordinates).
"""

import pytest
from django.db import connection

from locations import selectors

from .conftest import BERLIN, place

pytestmark = pytest.mark.django_db

SHAPE = selectors.Shape(location=frozenset({"evses", "cpo"}), evse=frozenset({"connectors"}),
                        evse_fields=frozenset({"uid", "status"}),
                        connector_fields=frozenset({"standard", "max_electric_power"}))


def _same_as_plain(*, lat, lng, distance, offset, limit, **filters):
    expected = list(selectors.locations_search(lat=lat, lng=lng, distance_km=distance, **filters))
    expected = expected[offset:offset + limit]
    found = selectors.locations_search_page(shape=SHAPE, offset=offset, limit=limit, lat=lat, lng=lng,
                                            distance_km=distance, **filters)
    assert [loc.pk for loc in found] == [loc.pk for loc in expected], (lat, lng, distance, offset, limit, filters)
    assert [loc.distance for loc in found] == [loc.distance for loc in expected]
    assert all(loc.cpo.country_code == "DE" for loc in found)
    # The compiled search's rows (locations/graphql_compiled.py): one scan, or the full statement on ties.
    names, rows = selectors.locations_search_page_rows(location_fields=frozenset(), with_cpo=False, json_columns=(),
                                                       offset=offset, limit=limit, lat=lat, lng=lng,
                                                       distance_km=distance, **filters)
    assert [(row[names.index("id")], row[names.index("distance")]) for row in rows] == [
        (loc.pk, loc.distance) for loc in expected], (lat, lng, distance, offset, limit, filters)
    return found


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the KNN page is PostgreSQL's; SQLite keeps the rings")


def test_stacked_coordinates_past_the_slack_take_the_second_branch(alpha):
    # More locations on one point than KNN_SLACK: every candidate ties with the n-th, so the statement
    # must re-read the cube around it; ids then order the ties, as the plain search orders them.
    assert selectors.KNN_SLACK < 41
    for i in range(41):
        place(alpha, f"S{i:02}", BERLIN, facilities=["CAFE"] if i % 2 else [])
    place(alpha, "NEAR", (BERLIN[0] + 0.001, BERLIN[1]))
    for offset, limit in ((0, 1), (0, 20), (10, 20), (30, 20)):
        for filters in ({}, {"facilities": ["CAFE"]}):
            found = _same_as_plain(lat=BERLIN[0], lng=BERLIN[1], distance=5, offset=offset, limit=limit, **filters)
            assert len(found) == min(limit, max(0, (20 if filters else 42) - offset))


def test_sparse_filter_and_the_exact_radius(alpha):
    # A ring of points every ~150 m out to ~6 km; one in ten has the facility.
    for i in range(60):
        point = (BERLIN[0] + (i % 10) * 0.0013 * (1 if i % 2 else -1), BERLIN[1] + (i // 10) * 0.0125)
        place(alpha, f"P{i:02}", point, facilities=["WIFI"] if i % 10 == 3 else [])
    for distance in (0.05, 0.4, 1, 3, 5, 200):
        for offset, limit in ((0, 1), (0, 5), (2, 20), (55, 20)):
            for filters in ({}, {"facilities": ["WIFI"]}, {"status": "AVAILABLE"}):
                _same_as_plain(lat=BERLIN[0], lng=BERLIN[1], distance=distance, offset=offset, limit=limit,
                               **filters)


def test_across_the_antimeridian_and_over_a_pole(alpha):
    place(alpha, "EAST", (-16.5, 179.95))
    place(alpha, "WEST", (-16.5, -179.95))
    place(alpha, "FAR", (-16.5, 178.0))
    place(alpha, "N1", (89.95, 0.0))
    place(alpha, "N2", (89.95, 180.0))
    place(alpha, "N3", (89.95, -90.0))
    found = _same_as_plain(lat=-16.5, lng=179.99, distance=20, offset=0, limit=20)
    assert [loc.ocpi_id for loc in found] == ["EAST", "WEST"]
    found = _same_as_plain(lat=89.99, lng=45.0, distance=15, offset=0, limit=20)
    assert sorted(loc.ocpi_id for loc in found) == ["N1", "N2", "N3"]
    assert _same_as_plain(lat=0.0, lng=0.0, distance=200, offset=0, limit=20) == []


def test_the_page_is_read_nearest_first_from_the_gist_index(alpha):
    for i in range(30):
        place(alpha, f"I{i:02}", (BERLIN[0] + i * 0.001, BERLIN[1]))
    where, where_params = selectors._visible_where(connection)
    columns, _ = selectors._location_columns(SHAPE.location_fields, True)
    sql, params = selectors._knn_page_sql(connection, where, where_params, lat=BERLIN[0], lng=BERLIN[1],
                                          distance_km=10, offset=0, limit=20, with_cpo=True, columns=columns)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a table of 30 rows would be read whole otherwise
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "location_published_knn_idx" in plan, plan
    assert "Order By" in plan, plan  # the KNN ordering is the index's, not a sort of the radius


def test_evses_folded_into_the_page_are_those_the_separate_reads_give(alpha):
    """The page's EVSEs and connectors read inside its statement (a JSON column) against `_prefetch_public`'s
    two statements: the same rows, fields, order and parents; REMOVED and unpublished EVSEs left out."""
    from locations.models import Evse

    for i in range(12):
        place(alpha, f"E{i:02}", (BERLIN[0] + i * 0.002, BERLIN[1]))
    evses = list(Evse.objects.order_by("id"))
    Evse.objects.filter(pk=evses[1].pk).update(status="REMOVED")
    Evse.objects.filter(pk=evses[3].pk).update(moderation="PENDING")
    Evse.objects.filter(location__ocpi_id="E05").delete()  # a location without EVSEs
    assert selectors._folded_evses(SHAPE) is not None

    def rows(found):
        return [(loc.pk, [(e.id, e.location_id, e.uid, e.status, e.location is loc,
                           [(c.id, c.evse_id, c.standard, c.max_electric_power, c.evse is e)
                            for c in selectors.shaped(e, "connectors")])
                          for e in selectors.shaped(loc, "evses")]) for loc in found]

    folded = selectors.locations_search_page(shape=SHAPE, offset=0, limit=20, lat=BERLIN[0], lng=BERLIN[1],
                                             distance_km=10)
    separate = selectors.locations_search(lat=BERLIN[0], lng=BERLIN[1], distance_km=10)[:20]
    separate = list(separate.only("id", "cpo"))
    selectors._prefetch_public(separate, SHAPE, db="default")
    assert rows(folded) == rows(separate)
    by_ocpi = {loc.ocpi_id: len(selectors.shaped(loc, "evses")) for loc in folded}
    assert by_ocpi["E05"] == 0 and sum(by_ocpi.values()) == len(evses) - 2 - 1


def test_filters_written_as_literals_keep_quotes_and_percent_signs(alpha):
    # The page statement carries the filters as SQL literals (so that it can be prepared): a value with a
    # quote or a percent sign must match as the ORM's parameter does, and inject nothing.
    place(alpha, "Q1", BERLIN, city="100% Ökostrom")
    place(alpha, "Q2", (BERLIN[0] + 0.001, BERLIN[1]), city="L'Île-Saint-Denis")
    place(alpha, "Q3", (BERLIN[0] + 0.002, BERLIN[1]), city="Berlin")
    for city in ("100% Ökostrom", "l'île-saint-denis", "%", "' OR 1=1 --", "Berlin"):
        found = _same_as_plain(lat=BERLIN[0], lng=BERLIN[1], distance=10, offset=0, limit=20, city=city)
        assert len(found) == (0 if city in ("%", "' OR 1=1 --") else 1), city


def test_a_filter_kept_per_process_follows_a_lookup_made_again(alpha):
    # The WHERE clause of a filtered search is kept per filter values (lookup ids resolved): a lookup row
    # deleted and made again under the same code (a new id) must not leave searches on the old one.
    from locations.models import Facility

    location = place(alpha, "CAFE1", BERLIN, facilities=["CAFE"])
    assert len(_same_as_plain(lat=BERLIN[0], lng=BERLIN[1], distance=5, offset=0, limit=20, facilities=["CAFE"])) == 1
    old = Facility.objects.get(code="CAFE")
    old.delete()
    new = Facility.objects.create(code="CAFE", description=old.description)
    assert new.pk != old.pk
    location.facilities.add(new)
    assert len(_same_as_plain(lat=BERLIN[0], lng=BERLIN[1], distance=5, offset=0, limit=20, facilities=["CAFE"])) == 1


def test_the_scan_is_planned_once_per_connection(alpha):
    """The compiled search's statement (`_knn_scan_sql`) is prepared, and PostgreSQL settles on its generic
    plan after its first custom plans: later searches are not planned again (the reason it exists)."""
    for i in range(30):
        place(alpha, f"G{i:02}", (BERLIN[0] + i * 0.001, BERLIN[1] + (i % 3) * 0.001))
    for i in range(12):
        names, rows = selectors.locations_search_page_rows(
            location_fields=frozenset({"name"}), with_cpo=True, json_columns=(), offset=0, limit=5,
            lat=BERLIN[0] + i * 0.0005, lng=BERLIN[1], distance_km=10)
        assert len(rows) == 5
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                       "WHERE statement LIKE '%%_rn%%' AND statement NOT LIKE '%%WITH knn%%'")
        plans = cursor.fetchall()
    assert len(plans) == 1, plans
    generic, custom = plans[0]
    assert custom <= 5 and generic >= 7, plans

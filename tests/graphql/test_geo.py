"""The geo search of locations.selectors: haversine distance in SQL, exact radius, nearest first."""

import math

import pytest

from locations import selectors
from locations.selectors import SearchError, bounding_box, haversine_km_python, locations_near

from .conftest import BERLIN, BRANDENBURG, HAMBURG, POTSDAM, place


def test_haversine_matches_known_distances():
    # Great-circle distances on the mean-radius sphere (the figures any haversine calculator gives).
    assert haversine_km_python(*BERLIN, *POTSDAM) == pytest.approx(26.5, abs=0.2)
    assert haversine_km_python(*BERLIN, *BRANDENBURG) == pytest.approx(59.4, abs=0.2)
    assert haversine_km_python(*BERLIN, *HAMBURG) == pytest.approx(254.8, abs=0.3)
    assert haversine_km_python(0, 0, 0, 1) == pytest.approx(111.195, abs=0.001)
    assert haversine_km_python(0, 179.5, 0, -179.5) == pytest.approx(111.195, abs=0.001)
    assert haversine_km_python(90, 0, 90, 120) == pytest.approx(0, abs=1e-9)


@pytest.mark.smoke
@pytest.mark.django_db
def test_distance_in_sql_is_exact_and_nearest_first(alpha):
    place(alpha, "BER", BERLIN)
    place(alpha, "POT", POTSDAM)
    place(alpha, "BRB", BRANDENBURG)
    place(alpha, "HAM", HAMBURG)
    found = list(locations_near(lat=BERLIN[0], lng=BERLIN[1], distance_km=100))
    assert [location.ocpi_id for location in found] == ["BER", "POT", "BRB"]
    assert found[0].distance == pytest.approx(0, abs=1e-6)
    for location in found:
        expected = haversine_km_python(*BERLIN, location.address_lat, location.address_lng)
        assert location.distance == pytest.approx(expected, abs=1e-6)
    assert found[1].distance == pytest.approx(26.5, abs=0.2)


@pytest.mark.smoke
@pytest.mark.django_db
def test_radius_is_exact_at_the_boundary(alpha):
    place(alpha, "POT", POTSDAM)
    exact = haversine_km_python(*BERLIN, *POTSDAM)
    assert [loc.ocpi_id for loc in locations_near(lat=BERLIN[0], lng=BERLIN[1], distance_km=exact + 0.001)] == ["POT"]
    assert list(locations_near(lat=BERLIN[0], lng=BERLIN[1], distance_km=exact - 0.001)) == []


@pytest.mark.django_db
def test_only_visible_locations_are_found(alpha, bravo):
    place(alpha, "PUB", BERLIN)
    place(alpha, "PEND", BERLIN, moderated=False)
    place(bravo, "NOT-BY-CPO", BERLIN, publish=False)  # the CPO itself does not publish it
    assert [loc.ocpi_id for loc in locations_near(lat=BERLIN[0], lng=BERLIN[1], distance_km=1)] == ["PUB"]


@pytest.mark.smoke
@pytest.mark.django_db
def test_search_across_the_antimeridian(alpha):
    place(alpha, "EAST", (-16.5, 179.95))   # Fiji, east of the date line's western edge
    place(alpha, "WEST", (-16.5, -179.95))  # ...and just across it
    place(alpha, "FAR", (-16.5, 178.0))
    found = list(locations_near(lat=-16.5, lng=179.99, distance_km=20))
    assert [loc.ocpi_id for loc in found] == ["EAST", "WEST"]
    assert found[1].distance == pytest.approx(haversine_km_python(-16.5, 179.99, -16.5, -179.95), abs=1e-6)
    assert found[1].distance < 10


@pytest.mark.django_db
def test_search_near_a_pole_takes_every_longitude(alpha):
    place(alpha, "N1", (89.95, 0.0))
    place(alpha, "N2", (89.95, 180.0))
    place(alpha, "N3", (89.95, -90.0))
    place(alpha, "SOUTH", (-89.95, 0.0))
    found = list(locations_near(lat=89.99, lng=45.0, distance_km=15))
    assert sorted(loc.ocpi_id for loc in found) == ["N1", "N2", "N3"]
    assert all(loc.distance <= 15 for loc in found)


def test_bounding_box_holds_the_whole_circle():
    # The widest longitude of a cap lies poleward of its centre: r / cos(lat) would be too narrow.
    box = bounding_box(lat=60.0, lng=10.0, distance_km=200)
    (west, east), = box.lng_ranges
    for bearing in range(0, 360, 2):
        lat, lng = _destination(60.0, 10.0, 200, bearing)
        assert box.min_lat <= lat <= box.max_lat
        assert west <= lng <= east


def test_bounding_box_splits_at_the_antimeridian_and_opens_at_the_poles():
    assert len(bounding_box(lat=0, lng=179.9, distance_km=50).lng_ranges) == 2
    assert len(bounding_box(lat=0, lng=-179.9, distance_km=50).lng_ranges) == 2
    assert bounding_box(lat=89.9, lng=0, distance_km=50).lng_ranges == ()
    assert bounding_box(lat=-89.9, lng=0, distance_km=50).max_lat < -89


@pytest.mark.parametrize("lat, lng, distance, message", [
    (91, 0, 1, "lat must be a latitude between -90 and 90"),
    (-90.5, 0, 1, "lat must be"),
    (0, 180.5, 1, "lng must be a longitude between -180 and 180"),
    (0, 0, -1, "distance must be between 0 and 200 km"),
    (0, 0, 201, "distance must be between 0 and 200 km"),
    (math.nan, 0, 1, "lat must be"),
])
def test_bad_points_are_refused(lat, lng, distance, message):
    with pytest.raises(SearchError, match=message):
        locations_near(lat=lat, lng=lng, distance_km=distance)


def test_default_and_maximum_radius_are_documented_values():
    assert selectors.DEFAULT_DISTANCE_KM == 10
    assert selectors.MAX_DISTANCE_KM == 200


def _destination(lat: float, lng: float, km: float, bearing_deg: float) -> tuple[float, float]:
    r = km / selectors.EARTH_RADIUS_KM
    phi, lam, theta = math.radians(lat), math.radians(lng), math.radians(bearing_deg)
    phi2 = math.asin(math.sin(phi) * math.cos(r) + math.cos(phi) * math.sin(r) * math.cos(theta))
    lam2 = lam + math.atan2(math.sin(theta) * math.sin(r) * math.cos(phi), math.cos(r) - math.sin(phi) * math.sin(phi2))
    return math.degrees(phi2), math.degrees(lam2)


@pytest.mark.django_db
def test_a_page_read_in_rings_is_the_page_of_one_search(alpha):
    """locations_search_page widens a small radius; its pages must be those of the plain search."""
    # A dense cluster (every ~100 m around Berlin) and a few far away, with EVSEs to prefetch.
    for i in range(40):
        place(alpha, f"C{i:02}", (BERLIN[0] + (i % 7) * 0.0009, BERLIN[1] + (i // 7) * 0.0013),
              facilities=["CAFE"] if i % 3 else [])
    for i, point in enumerate((POTSDAM, BRANDENBURG, (52.6, 13.6))):
        place(alpha, f"F{i}", point)
    shape = selectors.Shape(location=frozenset({"evses", "cpo"}), evse=frozenset({"connectors"}),
                            evse_fields=frozenset({"uid", "status"}),
                            connector_fields=frozenset({"standard", "max_electric_power"}))

    def rows(found):
        return [(loc.pk, loc.distance, loc.cpo.country_code,
                 [(e.pk, e.uid, e.location is loc, [(c.pk, c.standard, c.evse is e)
                                                    for c in selectors.shaped(e, "connectors")])
                  for e in selectors.shaped(loc, "evses")]) for loc in found]

    for distance in (0.1, 0.3, 1, 5, 30, 100):
        for offset, limit in ((0, 1), (0, 20), (5, 10), (35, 20), (60, 5)):
            for filters in ({}, {"facilities": ["CAFE"]}):
                expected = list(selectors.locations_search(lat=BERLIN[0], lng=BERLIN[1], distance_km=distance,
                                                           **filters))[offset:offset + limit]
                found = selectors.locations_search_page(shape=shape, offset=offset, limit=limit, lat=BERLIN[0],
                                                        lng=BERLIN[1], distance_km=distance, **filters)
                assert [loc.pk for loc in found] == [loc.pk for loc in expected], (distance, offset, limit, filters)
                assert [loc.distance for loc in found] == [loc.distance for loc in expected]
                assert all(len(row[3]) == 1 and row[3][0][2] and len(row[3][0][3]) == 2 for row in rows(found))

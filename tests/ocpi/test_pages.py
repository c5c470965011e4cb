"""Sender pages that cost the same at any depth (ocpi.paging): the Link's keyset cursor, the total carried
from the first page, client-built offsets, and what changes between pages do to a crawl."""

from datetime import datetime, timedelta, timezone

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from locations import services
from tests.conftest import location_payload
from tests.ocpi.locations_fixtures import (  # noqa: F401  (fixtures)
    bravo_peer,
    emsp_peer,
    ok,
    published,
    refused,
)

from tests.ocpi.test_locations_sender import ids, next_link  # the Link of the sender's list, read alike

pytestmark = pytest.mark.django_db

URL = "/ocpi/2.2.1/cpo/locations"
START = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)


def stamp(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def payload(cpo, location_id: str, minute: int, **fields) -> dict:
    data = location_payload(cpo, location_id, last_updated=stamp(minute), **fields)
    for evse in data["evses"]:
        evse["last_updated"] = stamp(minute)
        for connector in evse["connectors"]:
            connector["last_updated"] = stamp(minute)
    return data


def series(cpo, count: int, *, same_minute: bool = False) -> list[str]:
    """`count` published locations, one minute apart (or all in one minute: the id breaks the ties)."""
    names = [f"S{i:02}" for i in range(count)]
    for i, name in enumerate(names):
        published(cpo, payload(cpo, name, 0 if same_minute else i))
    return names




def crawl(caller, **params) -> tuple[list[str], list]:
    """Every page, following the Link as given; the ids in order, and the responses."""
    responses = [caller.get(URL, **params)]
    while (following := next_link(responses[-1])) is not None:
        assert len(responses) < 50, "the Link never ends"
        responses.append(caller.get(URL, **following))
    return [i for response in responses for i in ids(response)], responses


@pytest.mark.smoke  # the keyset condition is a row comparison, in each engine's SQL
def test_following_the_link_gives_every_location_once_in_order(alpha, emsp_peer):
    names = series(alpha, 11)
    seen, responses = crawl(emsp_peer, limit=3)
    assert seen == names
    assert len(responses) == 4
    assert [r.headers["X-Total-Count"] for r in responses] == ["11"] * 4
    assert [next_link(r)["offset"] for r in responses[:-1]] == ["3", "6", "9"]


@pytest.mark.smoke
def test_rows_of_one_moment_are_told_apart_by_id(alpha, emsp_peer):
    names = series(alpha, 7, same_minute=True)
    assert crawl(emsp_peer, limit=2)[0] == names


def test_changes_between_pages_skip_nothing(alpha, emsp_peer):
    """An object updated meanwhile moves to the end and comes again, a new one comes at the end, and none
    is skipped (an OFFSET would skip S03: S01's move shifts every later object one place to the left)."""
    series(alpha, 9)
    first = emsp_peer.get(URL, limit=3)
    assert ids(first) == ["S00", "S01", "S02"]
    services.location_upsert(cpo=alpha, data=payload(alpha, "S01", 20, name="seen, then updated"))
    services.location_upsert(cpo=alpha, data=payload(alpha, "S05", 21, name="updated before seen"))
    published(alpha, payload(alpha, "NEW", 22))
    responses = [first]
    while (following := next_link(responses[-1])) is not None:
        responses.append(emsp_peer.get(URL, **following))
    seen = [i for response in responses for i in ids(response)]
    assert seen == ["S00", "S01", "S02", "S03", "S04", "S06", "S07", "S08", "S01", "S05", "NEW"]
    last = {location["id"]: location for response in responses for location in ok(response)["data"]}
    assert last["S01"]["name"] == "seen, then updated" and last["S05"]["name"] == "updated before seen"


def test_a_cursor_that_is_not_ours_is_2001(alpha, emsp_peer, bravo_peer):
    series(alpha, 5)
    following = next_link(emsp_peer.get(URL, limit=2))
    cursor = following["cursor"]
    flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    for bad in (flipped, cursor[:-1], "x" * 500, "not-a-cursor"):
        body = refused(emsp_peer.get(URL, **{**following, "cursor": bad}), 400, 2001)
        assert "cursor" in body["status_message"]
    # Another list's or another caller's cursor: bound to the filters and to what the caller sees.
    refused(emsp_peer.get(URL, **{**following, "date_from": stamp(1)}), 400, 2001)
    refused(bravo_peer.get(URL, **following), 400, 2001)
    assert ids(emsp_peer.get(URL, **following)) == ["S02", "S03"]


@pytest.mark.smoke
def test_a_client_built_offset_still_works(alpha, emsp_peer):
    series(alpha, 7)
    cache.clear()  # no page served before: the offset is an OFFSET
    deep = emsp_peer.get(URL, offset=4, limit=2)
    assert ids(deep) == ["S04", "S05"] and deep.headers["X-Total-Count"] == "7"
    assert next_link(deep)["offset"] == "6"
    beyond = emsp_peer.get(URL, offset=10)
    assert ids(beyond) == [] and "Link" not in beyond.headers and beyond.headers["X-Total-Count"] == "7"
    # An offset that continues a page we served is a keyset page (the anchor), with the same rows.
    emsp_peer.get(URL, offset=0, limit=3)
    with CaptureQueriesContext(connection) as queries:
        continued = emsp_peer.get(URL, offset=3, limit=3)
    assert ids(continued) == ["S03", "S04", "S05"] and continued.headers["X-Total-Count"] == "7"
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper() or "OFFSET" in q["sql"].upper()]


def test_queries_per_page_do_not_grow_with_depth(alpha, emsp_peer):
    series(alpha, 12)
    captured = []
    response = None
    following = {"limit": 2}
    while following is not None:
        with CaptureQueriesContext(connection) as queries:
            response = emsp_peer.get(URL, **following)
        captured.append([q["sql"].upper() for q in queries.captured_queries])
        following = next_link(response)
    assert len(captured) == 6
    first, *deeper = captured
    assert any("COUNT(" in sql for sql in first)  # the first page counts, once
    for sqls in deeper:
        assert len(sqls) == len(first) - 1  # the same, less the count
        assert not [sql for sql in sqls if "COUNT(" in sql or "OFFSET" in sql]


@pytest.mark.parametrize("limit", ["0", "00"])
def test_limit_zero_is_2001(emsp_peer, limit):
    body = refused(emsp_peer.get(URL, limit=limit), 400, 2001)
    assert "limit" in body["status_message"]

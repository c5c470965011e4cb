"""New locations are written as rows straight from their validated values (locations/writer/new_rows.py)
instead of model instances: both paths store the same rows, report the same outcomes, signal the same
locations and hand back equal instances.

The same payloads go in once through each path, under two CPOs, at one frozen instant (the time of the
write is what a source without timestamps is stamped with); everything must be equal except what tells
the two apart by construction (ids, the CPO, creation and modification times).
"""

import copy
from datetime import datetime, timezone

import pytest
from django.db import connection

from locations import services
from locations.models import Connector, Evse, Location
from locations.signals import locations_changed
from locations.writer import batch, new_rows
from tests.conftest import location_payload
from tests.locations.test_writer_copy import IGNORED, outcomes, rich_payload, stored

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="rows stand in for instances on PostgreSQL only"),
]

NOW = datetime(2024, 6, 3, 12, 0, 0, 123456, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(batch.timezone, "now", lambda: NOW)


def unstamped(payload: dict) -> dict:
    """A source without timestamps (stamped=False), but for one connector, stamped after the write."""
    payload = copy.deepcopy(payload)
    payload.pop("last_updated")
    for evse in payload["evses"]:
        evse.pop("last_updated")
        for connector in evse["connectors"]:
            connector.pop("last_updated")
    payload["evses"][0]["connectors"][0]["last_updated"] = "2024-06-04T08:00:00Z"
    return payload


def newer_parts(payload: dict) -> dict:
    """The location older than one of its EVSEs, that EVSE older than one of its connectors."""
    payload = copy.deepcopy(payload)
    payload["last_updated"] = "2024-05-01T10:00:00Z"
    payload["evses"][0]["last_updated"] = "2024-05-02T10:00:00Z"
    payload["evses"][0]["connectors"][1]["last_updated"] = "2024-05-03T10:00:00Z"
    return payload


def fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields if f.attname not in IGNORED}


def write_both(monkeypatch, alpha, bravo, payloads, **kwargs):
    """(results, signalled ocpi ids) of the row path under alpha and of the instance path under bravo."""
    signalled = []

    def receiver(sender, location_ids, **_):
        signalled.append(sorted(Location.objects.filter(pk__in=location_ids).values_list("ocpi_id", flat=True)))

    locations_changed.connect(receiver)
    try:
        assert batch.ROWS_FOR_NEW and new_rows.usable()
        with_rows = services.location_upsert_many(cpo=alpha, items=payloads(alpha), **kwargs)
        monkeypatch.setattr(batch, "ROWS_FOR_NEW", False)
        with_instances = services.location_upsert_many(cpo=bravo, items=payloads(bravo), **kwargs)
        monkeypatch.setattr(batch, "ROWS_FOR_NEW", True)
    finally:
        locations_changed.disconnect(receiver)
    assert len(signalled) == 2 and signalled[0] == signalled[1]
    return with_rows, with_instances


def assert_same_instances(with_rows, with_instances, cpos) -> None:
    for row_result, instance_result in zip(with_rows, with_instances):
        if isinstance(row_result, Exception):
            assert type(row_result) is type(instance_result) and row_result.errors == instance_result.errors
            continue
        made, built = row_result.instance, instance_result.instance
        assert type(made) is type(built) and fields(made) == fields(built)
        assert made.pk and not made._state.adding and made._state.db == built._state.db
        if row_result.created:
            assert made.date_created == made.date_modified == NOW
        if isinstance(made, Location) and row_result.created:
            assert made.cpo is cpos[0] and built.cpo is cpos[1]  # cached, as the general path's are
            assert [fields(e) for e in made.evses.order_by("uid")] == [fields(e) for e in built.evses.order_by("uid")]


def test_new_locations_as_rows_store_what_instances_store(monkeypatch, alpha, bravo):
    def payloads(cpo):
        return ([rich_payload(cpo, f"LOC{i}") for i in range(3)] + [location_payload(cpo, "PLAIN")]
                + [newer_parts(location_payload(cpo, "NEWER"))]
                + [location_payload(cpo, "BAD", coordinates={"latitude": "x", "longitude": "8.1"})]
                # The same id twice in one batch: merged, the later EVSEs and fields win.
                + [location_payload(cpo, "TWICE"), location_payload(cpo, "TWICE", name="Second")])

    with_rows, with_instances = write_both(monkeypatch, alpha, bravo, payloads)
    assert outcomes(with_rows[:5]) == outcomes(with_instances[:5]) == [(True, True, False)] * 5
    assert stored(alpha) == stored(bravo)
    assert Location.objects.get(cpo=alpha, ocpi_id="NEWER").last_updated == datetime(2024, 5, 3, 10, tzinfo=timezone.utc)
    assert Location.objects.get(cpo=alpha, ocpi_id="TWICE").name == "Second"
    assert_same_instances(with_rows, with_instances, (alpha, bravo))
    # Rows took their ids in the order the general path gives them: ids follow the payloads.
    for cpo in (alpha, bravo):
        assert list(Location.objects.filter(cpo=cpo).order_by("pk").values_list("ocpi_id", flat=True)) == [
            "LOC0", "LOC1", "LOC2", "PLAIN", "NEWER", "TWICE"]
        assert list(Connector.objects.filter(evse__location__cpo=cpo, evse__location__ocpi_id="LOC0")
                    .order_by("pk").values_list("evse__uid", "connector_id")) == [
            ("LOC0-E1", "1"), ("LOC0-E1", "2"), ("LOC0-E2", "1"), ("LOC0-E2", "2")]


def test_a_batch_of_new_and_stored_locations_without_timestamps(monkeypatch, alpha, bravo):
    """Sources without timestamps (webhooks, CSV) are stamped with the time of the write; a CPO that
    auto-publishes has its new objects published; a stored location updated in the same batch (with a
    new EVSE: an instance among the rows) keeps the general path."""
    for cpo in (alpha, bravo):
        cpo.auto_publish = True
        cpo.save()
        services.location_upsert(cpo=cpo, data=location_payload(cpo, "OLD"))

    def payloads(cpo):
        old = location_payload(cpo, "OLD", name="Renamed")
        extra = copy.deepcopy(old["evses"][0])
        extra["uid"] = "OLD-E2"
        old["evses"].append(extra)
        # NEW3: the location stamped, its EVSE not, and the EVSE's connector after the time of the write.
        new3 = unstamped(location_payload(cpo, "NEW3"))
        new3["last_updated"] = "2024-05-01T10:00:00Z"
        return [unstamped(rich_payload(cpo, "NEW1")), unstamped(old), unstamped(location_payload(cpo, "NEW2")), new3]

    with_rows, with_instances = write_both(monkeypatch, alpha, bravo, payloads, stamped=False)
    assert outcomes(with_rows) == outcomes(with_instances) == [(True, True, False), (False, True, False),
                                                               (True, True, False), (True, True, False)]
    assert stored(alpha) == stored(bravo)
    new = Location.objects.get(cpo=alpha, ocpi_id="NEW1")
    assert new.moderation == "PUBLISHED"
    # The connector's own stamp is newer than the write: kept; its EVSE and location are stamped now.
    assert Evse.objects.get(location=new, uid="NEW1-E1").last_updated == NOW
    assert new.last_updated == NOW
    # A location's own stamp is the newest given in it (the connector's), above its EVSE stamped now.
    assert Location.objects.get(cpo=alpha, ocpi_id="NEW3").last_updated == datetime(2024, 6, 4, 8, tzinfo=timezone.utc)
    assert_same_instances(with_rows, with_instances, (alpha, bravo))


def test_csv_columns_only_given_fields_of_new_locations(monkeypatch, alpha, bravo):
    """A CSV has columns for some fields only: a new location's missing ones take the models' defaults."""
    def payloads(cpo):
        payload = location_payload(cpo, "CSV1")
        payload.pop("postal_code")
        payload["evses"][0].pop("evse_id")
        return [payload]

    with_rows, with_instances = write_both(monkeypatch, alpha, bravo, payloads, only_given_fields=True,
                                           replace_evses=False)
    assert outcomes(with_rows) == outcomes(with_instances) == [(True, True, False)]
    assert stored(alpha) == stored(bravo)
    assert_same_instances(with_rows, with_instances, (alpha, bravo))

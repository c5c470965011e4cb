"""The one ingestion path: `location_upsert` and friends, on the real database."""

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from locations import services
from locations.enums import Moderation, Status
from locations.models import Connector, Cpo, Evse, Location
from locations.signals import locations_changed
from tests.conftest import location_payload

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

SPEC_EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "ocpi-spec" / "2.2.1" / "examples"


def stored(location: Location) -> dict:
    """What is stored of a location, as comparable plain data."""
    location = Location.objects.get(pk=location.pk)
    return {
        "location": {f.attname: getattr(location, f.attname) for f in Location._meta.fields
                     if f.attname not in ("date_modified",)},
        "facilities": sorted(location.facilities.values_list("code", flat=True)),
        "evses": [
            ({f.attname: getattr(e, f.attname) for f in Evse._meta.fields if f.attname != "date_modified"},
             [({f.attname: getattr(c, f.attname) for f in Connector._meta.fields if f.attname != "date_modified"})
              for c in e.connectors.order_by("connector_id")])
            for e in location.evses.order_by("uid")
        ],
    }


def test_a_new_location_is_stored_whole_and_pending(alpha):
    result = services.location_upsert(cpo=alpha, data=location_payload(alpha, facilities=["CAFE", "WIFI"]))
    location = result.instance
    assert result.created and result.changed
    assert location.moderation == Moderation.PENDING
    assert sorted(location.facilities.values_list("code", flat=True)) == ["CAFE", "WIFI"]
    evse = location.evses.get()
    assert evse.moderation == Moderation.PENDING
    assert list(evse.connectors.order_by("connector_id").values_list("standard", "max_electric_power")) == [
        ("IEC_62196_T2", 22000), ("IEC_62196_T2_COMBO", 150000)]
    assert evse.connectors.get(connector_id="1").connector_type.code == "IEC_62196_T2"


def test_a_cpo_trusted_to_auto_publish_is_published_at_once(alpha):
    alpha.auto_publish = True
    alpha.save()
    location = services.location_upsert(cpo=alpha, data=location_payload(alpha)).instance
    assert location.moderation == Moderation.PUBLISHED
    assert location.evses.get().moderation == Moderation.PUBLISHED


def test_the_same_payload_twice_changes_nothing_the_second_time(alpha):
    data = location_payload(alpha, facilities=["CAFE"])
    first = services.location_upsert(cpo=alpha, data=data)
    before = stored(first.instance)
    with CaptureQueriesContext(connection) as queries:
        second = services.location_upsert(cpo=alpha, data=copy.deepcopy(data))
    assert not second.created and not second.changed
    assert stored(second.instance) == before
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []


def test_an_update_older_than_what_is_stored_is_ignored(alpha):
    services.location_upsert(cpo=alpha, data=location_payload(alpha, name="Newer"))
    older = location_payload(alpha, name="Older", last_updated="2024-04-01T00:00:00Z")
    for evse in older["evses"]:
        evse["last_updated"] = "2024-04-01T00:00:00Z"
        for connector in evse["connectors"]:
            connector["last_updated"] = "2024-04-01T00:00:00Z"
    result = services.location_upsert(cpo=alpha, data=older)
    assert result.stale and not result.changed
    assert Location.objects.get().name == "Newer"


def test_last_updated_propagates_from_connector_to_evse_to_location(alpha):
    data = location_payload(alpha)
    data["evses"][0]["connectors"][1]["last_updated"] = "2024-05-03T08:00:00Z"
    location = services.location_upsert(cpo=alpha, data=data).instance
    newest = datetime(2024, 5, 3, 8, tzinfo=timezone.utc)
    assert location.evses.get().last_updated == newest
    assert Location.objects.get().last_updated == newest

    connector = Connector.objects.get(connector_id="1")
    services.connector_patch(connector=connector, data={"max_amperage": 16, "last_updated": "2024-05-04T00:00:00Z"})
    later = datetime(2024, 5, 4, tzinfo=timezone.utc)
    assert Evse.objects.get().last_updated == later
    assert Location.objects.get().last_updated == later


def test_evse_status_patch_changes_status_and_timestamps(alpha):
    location = services.location_upsert(cpo=alpha, data=location_payload(alpha)).instance
    evse = location.evses.get()
    result = services.evse_status_patch(evse=evse, status="CHARGING", last_updated="2024-05-02T00:00:00Z")
    assert result.changed
    evse.refresh_from_db()
    assert evse.status == Status.CHARGING
    assert Location.objects.get().last_updated == datetime(2024, 5, 2, tzinfo=timezone.utc)
    stale = services.evse_status_patch(evse=evse, status="AVAILABLE", last_updated="2024-05-01T12:00:00Z")
    assert stale.stale
    evse.refresh_from_db()
    assert evse.status == Status.CHARGING


def test_a_replaced_location_marks_missing_evses_removed_and_drops_missing_connectors(alpha):
    data = location_payload(alpha)
    services.location_upsert(cpo=alpha, data=data)
    replacement = location_payload(alpha, last_updated="2024-06-01T00:00:00Z")
    replacement["evses"][0]["connectors"].pop()
    replacement["evses"][0]["last_updated"] = "2024-06-01T00:00:00Z"
    replacement["evses"].append({
        "uid": "LOC1-E2", "status": "PLANNED", "last_updated": "2024-06-01T00:00:00Z",
        "connectors": [{"id": "1", "standard": "CHADEMO", "format": "CABLE", "power_type": "DC",
                        "max_voltage": 500, "max_amperage": 125, "last_updated": "2024-06-01T00:00:00Z"}],
    })
    services.location_upsert(cpo=alpha, data=replacement)
    assert list(Connector.objects.filter(evse__uid="LOC1-E1").values_list("connector_id", flat=True)) == ["1"]
    replacement["evses"] = replacement["evses"][1:]
    replacement["last_updated"] = "2024-07-01T00:00:00Z"
    services.location_upsert(cpo=alpha, data=replacement)
    assert Evse.objects.get(uid="LOC1-E1").status == Status.REMOVED
    assert Evse.objects.get(uid="LOC1-E2").status == Status.PLANNED


def test_a_location_of_another_party_is_refused_and_nothing_is_written(alpha, bravo):
    with pytest.raises(services.InvalidPayload) as caught:
        services.location_upsert(cpo=alpha, data=location_payload(bravo))
    assert "does not match" in caught.value.errors["party_id"]
    assert not Location.objects.exists()


def test_a_rejected_update_leaves_what_is_stored_untouched(alpha):
    location = services.location_upsert(cpo=alpha, data=location_payload(alpha)).instance
    before = stored(location)
    bad = location_payload(alpha, name="Broken", last_updated="2024-08-01T00:00:00Z")
    bad["evses"][0]["connectors"][1]["power_type"] = "PLASMA"
    with pytest.raises(services.InvalidPayload) as caught:
        services.location_upsert(cpo=alpha, data=bad)
    assert "evses[0].connectors[1].power_type" in caught.value.errors
    assert stored(location) == before


def test_same_ids_of_two_cpos_are_two_locations(alpha, bravo):
    services.location_upsert(cpo=alpha, data=location_payload(alpha, name="Alpha's"))
    services.location_upsert(cpo=bravo, data=location_payload(bravo, name="Bravo's"))
    assert Location.objects.get(cpo=alpha).name == "Alpha's"
    assert Location.objects.get(cpo=bravo).name == "Bravo's"


def test_patch_changes_only_given_fields_and_never_an_id(alpha):
    location = services.location_upsert(cpo=alpha, data=location_payload(alpha)).instance
    services.location_patch(location=location, data={"name": "Renamed", "last_updated": "2024-06-01T00:00:00Z"})
    location.refresh_from_db()
    assert (location.name, location.city) == ("Renamed", "Mannheim")
    with pytest.raises(services.InvalidPayload):
        services.location_patch(location=location, data={"id": "OTHER", "last_updated": "2024-06-02T00:00:00Z"})
    with pytest.raises(services.InvalidPayload) as caught:
        services.location_patch(location=location, data={"name": "No timestamp"})
    assert "last_updated" in caught.value.errors


def test_evse_upsert_adds_an_evse_to_a_location(alpha):
    location = services.location_upsert(cpo=alpha, data=location_payload(alpha)).instance
    evse = {"uid": "NEW", "status": "AVAILABLE", "last_updated": "2024-06-01T00:00:00Z", "payment_types": ["GCASH"],
            "capabilities": ["CREDIT_DEBIT_PAYABLE", "RFID_READER"], "kwh": "22.5",
            "connectors": [{"id": "1", "standard": "TYPE_2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                            "max_voltage": 230, "max_amperage": 32, "last_updated": "2024-06-01T00:00:00Z"}]}
    result = services.evse_upsert(location=location, data=evse)
    assert result.created
    assert sorted(result.instance.capabilities.values_list("code", flat=True)) == ["CREDIT_DEBIT_PAYABLE",
                                                                                  "RFID_READER"]
    assert result.instance.connectors.get().connector_type.code == "TYPE_2"
    assert Location.objects.get().last_updated == datetime(2024, 6, 1, tzinfo=timezone.utc)
    assert not services.evse_upsert(location=location, data=evse).changed


def test_connector_upsert_creates_and_replaces(alpha):
    evse = services.location_upsert(cpo=alpha, data=location_payload(alpha)).instance.evses.get()
    data = {"id": "3", "standard": "DOMESTIC_F", "format": "SOCKET", "power_type": "AC_1_PHASE",
            "max_voltage": 230, "max_amperage": 16, "last_updated": "2024-06-01T00:00:00Z"}
    assert services.connector_upsert(evse=evse, data=data).created
    assert services.connector_upsert(evse=evse, data={**data, "max_amperage": 10,
                                                      "last_updated": "2024-06-02T00:00:00Z"}).changed
    assert Connector.objects.get(connector_id="3").max_amperage == 10


def test_moderation_publishes_a_location_with_its_evses(alpha):
    location = services.location_upsert(cpo=alpha, data=location_payload(alpha)).instance
    services.location_moderate(location=location, moderation=Moderation.PUBLISHED)
    assert Location.objects.get().moderation == Moderation.PUBLISHED
    assert Evse.objects.get().moderation == Moderation.PUBLISHED
    services.evse_moderate(evse=Evse.objects.get(), moderation=Moderation.UNPUBLISHED)
    assert Evse.objects.get().moderation == Moderation.UNPUBLISHED


def test_changes_are_announced_inside_their_transaction_and_only_when_something_changed(alpha):
    """Sent inside the transaction (a receiver writes in it what must commit or roll back with the change),
    so a receiver sees the change before it commits, and a change rolled back was announced in it."""
    seen = []

    def receiver(sender, location_ids, **kwargs):
        seen.append((location_ids, Location.objects.filter(pk__in=location_ids).count()))

    locations_changed.connect(receiver)
    try:
        location = services.location_upsert(cpo=alpha, data=location_payload(alpha)).instance
        services.location_upsert(cpo=alpha, data=location_payload(alpha))  # nothing changed: no signal
        with pytest.raises(RuntimeError), transaction.atomic():
            services.location_upsert(cpo=alpha, data=location_payload(alpha, "LOC2"))
            assert len(seen) == 2  # before the (failing) commit
            raise RuntimeError
    finally:
        locations_changed.disconnect(receiver)
    assert seen[0] == ([location.pk], 1) and seen[1][1] == 1
    assert not Location.objects.filter(ocpi_id="LOC2").exists()


def test_every_spec_example_location_is_accepted_and_stored_as_sent(db):
    if not SPEC_EXAMPLES.is_dir():
        pytest.skip("../shared/ocpi-spec is absent")
    examples = sorted(SPEC_EXAMPLES.glob("location_example*.json"))
    assert len(examples) == 6
    for path in examples:
        data = json.loads(path.read_text())
        cpo = Cpo.objects.filter(country_code=data["country_code"], party_id=data["party_id"]).first()
        if cpo is None:
            cpo, _ = services.cpo_create(country_code=data["country_code"], party_id=data["party_id"],
                                         owner_name=path.stem)
        location = services.location_upsert(cpo=cpo, data=data).instance
        location.refresh_from_db()
        assert (location.ocpi_id, location.address, location.publish) == (data["id"], data["address"],
                                                                          data["publish"]), path.name
        assert location.evses.count() == len(data.get("evses", [])), path.name


def _unstamped(payload: dict) -> dict:
    payload.pop("last_updated")
    for evse in payload["evses"]:
        evse.pop("last_updated")
        for connector in evse["connectors"]:
            connector.pop("last_updated")
    return payload


def test_sources_without_timestamps_are_stamped_only_when_something_changed(alpha):
    first = services.location_upsert(cpo=alpha, data=_unstamped(location_payload(alpha)), stamped=False)
    assert first.created
    stamp = Location.objects.get().last_updated
    assert stamp > datetime(2025, 1, 1, tzinfo=timezone.utc)
    again = services.location_upsert(cpo=alpha, data=_unstamped(location_payload(alpha)), stamped=False)
    assert not again.changed and Location.objects.get().last_updated == stamp
    changed = _unstamped(location_payload(alpha))
    changed["evses"][0]["connectors"][0]["max_amperage"] = 16
    assert services.location_upsert(cpo=alpha, data=changed, stamped=False).changed
    connector = Connector.objects.get(connector_id="1")
    assert connector.last_updated > stamp
    assert Location.objects.get().last_updated == connector.last_updated == Evse.objects.get().last_updated
    assert Connector.objects.get(connector_id="2").last_updated == stamp


def test_merging_evses_keeps_the_ones_not_named(alpha):
    services.location_upsert(cpo=alpha, data=location_payload(alpha))
    extra = location_payload(alpha, last_updated="2024-06-01T00:00:00Z")
    extra["evses"][0]["uid"] = "LOC1-E2"
    extra["evses"][0]["last_updated"] = "2024-06-01T00:00:00Z"
    results = services.location_upsert_many(cpo=alpha, items=[extra], replace_evses=False)
    assert results[0].changed
    assert sorted(Evse.objects.values_list("uid", "status")) == [("LOC1-E1", "AVAILABLE"), ("LOC1-E2", "AVAILABLE")]


def test_upsert_many_reports_each_item_in_order(alpha):
    good = location_payload(alpha, "A")
    bad = location_payload(alpha, "B", country="Atlantis")
    results = services.location_upsert_many(cpo=alpha, items=[good, bad, location_payload(alpha, "C")])
    assert results[0].created and results[2].created
    assert isinstance(results[1], services.InvalidPayload) and "country" in results[1].errors
    assert sorted(Location.objects.values_list("ocpi_id", flat=True)) == ["A", "C"]

"""The writer inserts new rows with COPY on PostgreSQL (a few rows: one INSERT from a JSON array of them)
and with bulk_create elsewhere: all store the same.

The same payloads go in once through each path (under two CPOs, so that the rows can sit side by side);
every stored field, the M2M codes and what the writer reports must be equal, except what tells the two
apart by construction (ids, the CPO, the creation and modification times).
"""

import copy

import pytest
from django.db import connection

from locations import services, writer
from locations.writer import inserts
from locations.models import Connector, Evse, Location
from tests.conftest import location_payload

pytestmark = pytest.mark.django_db

IGNORED = {"id", "cpo_id", "location_id", "evse_id", "date_created", "date_modified"}


def rich_payload(cpo, ocpi_id: str) -> dict:
    """Every kind of column: JSON objects and lists, decimals, nulls, text COPY must escape."""
    payload = location_payload(
        cpo, ocpi_id,
        name="Back\\slash \"quoted\" ünïcödé \\N",
        address="Straße 1\\2",
        facilities=["CAFE", "WIFI"],
        parking_type="PARKING_LOT",
        parking_restrictions=["EV_ONLY"],
        directions=[{"language": "de", "text": "Links \\ dann \"rechts\" — 😀"}],
        opening_times={"twentyfourseven": False,
                       "regular_hours": [{"weekday": 1, "period_begin": "08:00", "period_end": "20:00"}]},
        operator={"name": "Operator \\ GmbH", "website": "https://example.com/a?b=c&d=\\"},
        energy_mix={"is_green_energy": True, "energy_sources": [{"source": "SOLAR", "percentage": 62.5}]},
        charging_when_closed=False,
    )
    evse = payload["evses"][0]
    evse.update(capabilities=["RFID_READER", "REMOTE_START_STOP_CAPABLE"], floor_level="-1",
                coordinates={"latitude": "49.494410", "longitude": "8.468099"}, kwh="1234.56",
                physical_reference="A\tB")
    evse["connectors"][0].update(tariff_ids=["T1", "T\\2"], rate_setting="0.4321",
                                 terms_and_conditions="https://example.com/t&c")
    evse["connectors"][1].pop("max_electric_power")
    second = copy.deepcopy(evse)
    second.update(uid=f"{ocpi_id}-E2", evse_id="", status="OUTOFORDER", capabilities=[])
    second.pop("coordinates")
    payload["evses"].append(second)
    return payload


def stored(cpo) -> list:
    def fields(obj) -> dict:
        return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields if f.attname not in IGNORED}

    result = []
    for location in Location.objects.filter(cpo=cpo).order_by("ocpi_id"):
        result.append((
            fields(location),
            {name: sorted(getattr(location, name).values_list("code", flat=True)) for name in writer.LOCATION_M2M},
            [(fields(evse), {name: sorted(getattr(evse, name).values_list("code", flat=True)) for name in writer.EVSE_M2M},
              [fields(c) for c in Connector.objects.filter(evse=evse).order_by("connector_id")])
             for evse in Evse.objects.filter(location=location).order_by("uid")],
        ))
    return result


def outcomes(results) -> list:
    return [(r.created, r.changed, r.stale) for r in results]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
@pytest.mark.parametrize("copy_from", [1, inserts.COPY_FROM], ids=["copy", "json-insert"])
def test_copy_and_bulk_create_store_identical_rows(alpha, bravo, monkeypatch, copy_from):
    def payloads(cpo):
        return [rich_payload(cpo, f"LOC{i}") for i in range(3)] + [location_payload(cpo, "PLAIN")]

    monkeypatch.setattr(inserts, "COPY_FROM", copy_from)  # 1: every table by COPY; else a few rows by INSERT
    with_copy = services.location_upsert_many(cpo=alpha, items=payloads(alpha))
    assert inserts._uses_copy(Location)
    monkeypatch.setattr(inserts, "_uses_copy", lambda model: None)
    with_bulk_create = services.location_upsert_many(cpo=bravo, items=payloads(bravo))
    assert outcomes(with_copy) == outcomes(with_bulk_create) == [(True, True, False)] * 4
    assert stored(alpha) == stored(bravo)
    assert stored(alpha)[0][0]["name"] == "Back\\slash \"quoted\" ünïcödé \\N"

    # The instances handed back are saved ones either way: ids set, no longer adding.
    for result in with_copy + with_bulk_create:
        assert result.instance.pk and not result.instance._state.adding
        for evse in result.instance.evses.all():
            assert evse.connectors.count() == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
def test_rows_copied_in_are_updated_like_any_other(alpha):
    services.location_upsert_many(cpo=alpha, items=[rich_payload(alpha, "LOC1")])
    again = services.location_upsert_many(cpo=alpha, items=[rich_payload(alpha, "LOC1")])
    assert outcomes(again) == [(False, False, False)]  # JSON, decimals and timestamps read back equal
    changed = rich_payload(alpha, "LOC1")
    changed["evses"][0]["connectors"][0]["max_amperage"] = 16
    changed["evses"][0]["connectors"][0]["last_updated"] = "2024-06-01T10:00:00Z"
    result = services.location_upsert_many(cpo=alpha, items=[changed])[0]
    assert (result.created, result.changed) == (False, True)
    assert Connector.objects.get(evse__location__cpo=alpha, evse__uid="LOC1-E1", connector_id="1").max_amperage == 16

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from vehicles import models as m
from vehicles import selectors, services
from vehicles.providers.base import DiscoveredVehicle, Snapshot, Tokens

from .conftest import T0

# Also on the embedded default (SQLite): `make test`'s smoke phase.
pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def snap(ts, **kw):
    base = dict(soc=50.0, range_km=150.0, charging_state="CHARGING", plugged=True, charging_power_kw=11.0)
    base.update(kw)
    return Snapshot(maker_timestamp=ts, **base)


def test_tokens_are_encrypted_at_rest_and_read_back(dora_car):
    account = dora_car.account
    raw = m.MakerAccount.objects.values_list("secrets", flat=True).get(pk=account.pk)
    assert "token-of-dora" not in raw and "access_token" not in raw and raw.startswith("gAAAA")  # Fernet
    tokens = services.maker_account_tokens(account=account)
    assert (tokens.access_token, tokens.refresh_token) == ("access-token-of-dora", "refresh-token-of-dora")
    services.maker_account_tokens_save(account=account, tokens=Tokens(access_token="a2", refresh_token="r2",
                                                                      expires_at=T0))
    account.refresh_from_db()
    assert services.maker_account_tokens(account=account).expires_at == T0
    assert account.access_expires_at == T0


def test_sample_upsert_never_duplicates_and_state_only_moves_forward(dora_car):
    first = services.vehicle_sample_upsert(vehicle=dora_car, snapshot=snap(T0))
    again = services.vehicle_sample_upsert(vehicle=dora_car, snapshot=snap(T0, soc=99.0))
    assert first.created and first.state_updated
    assert not again.created and not again.state_updated
    assert m.VehicleSample.objects.filter(vehicle=dora_car).count() == 1
    assert m.VehicleSample.objects.get(vehicle=dora_car).soc == 50.0

    services.vehicle_sample_upsert(vehicle=dora_car, snapshot=snap(T0 + timedelta(minutes=5), soc=55.0))
    older = services.vehicle_sample_upsert(vehicle=dora_car, snapshot=snap(T0 - timedelta(minutes=5), soc=45.0))
    # An older reading arriving late is history, not the latest state.
    assert older.created and not older.state_updated
    assert m.VehicleState.objects.get(vehicle=dora_car).soc == 55.0
    assert m.VehicleSample.objects.filter(vehicle=dora_car).count() == 3


def test_many_readings_of_many_cars_in_one_call(dora_car):
    items = [(dora_car.pk, snap(T0 + timedelta(minutes=i), soc=50.0 + i)) for i in range(5)]
    results = services.vehicle_samples_upsert(items=items + items)
    assert len(results) == 1 and results[0].created
    assert m.VehicleSample.objects.filter(vehicle=dora_car).count() == 5
    assert m.VehicleState.objects.get(vehicle=dora_car).soc == 54.0


def test_out_of_bounds_values_are_dropped_not_stored(dora_car):
    services.vehicle_sample_upsert(vehicle=dora_car, snapshot=snap(T0, soc=255.0, range_km=-3, latitude=91.0,
                                                                   charging_state="WARP"))
    state = m.VehicleState.objects.get(vehicle=dora_car)
    assert state.soc is None and state.range_km is None and state.latitude is None
    assert state.charging_state == "UNKNOWN"
    state.full_clean()


def test_naive_maker_timestamp_is_refused(dora_car):
    with pytest.raises(services.VehicleError):
        services.vehicle_sample_upsert(vehicle=dora_car, snapshot=snap(T0.replace(tzinfo=None)))


def test_estimate_while_charging_is_marked(dora_car):
    services.vehicle_sample_upsert(vehicle=dora_car, snapshot=snap(T0, soc=50.0, charging_power_kw=10.4))
    dora_car.refresh_from_db()
    fresh = selectors.vehicle_state_latest(vehicle=dora_car, now=T0 + timedelta(seconds=10))
    assert fresh.soc == 50.0 and not fresh.estimated
    later = selectors.vehicle_state_latest(vehicle=dora_car, now=T0 + timedelta(hours=1))
    # 10.4 kW for an hour into 52 kWh: 20 points more.
    assert later.estimated and later.soc == 70.0
    capped = selectors.vehicle_state_latest(vehicle=dora_car, now=T0 + timedelta(hours=9))
    assert capped.soc == 100.0


def test_vin_of_another_driver_is_a_conflict_and_not_visible(dora_car, eve):
    other = services.maker_account_link(driver=eve, provider="simulator", external_id="sim-eve", tokens=Tokens())
    with pytest.raises(services.VehicleError) as err:
        services.vehicle_upsert(account=other, discovered=DiscoveredVehicle(vin=dora_car.vin))
    assert err.value.code == "conflict"
    with pytest.raises(services.VehicleError) as err:
        selectors.vehicle_of_driver(driver=eve, vin=dora_car.vin)
    assert err.value.code == "not_found"
    with pytest.raises(services.VehicleError) as err:
        services.maker_account_link(driver=eve, provider="simulator", external_id="sim-dora", tokens=Tokens())
    assert err.value.code == "conflict"


def test_action_lifecycle_ends_once(dora_car, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        action = services.vehicle_action_create(vehicle=dora_car, action="charging-start")
    assert len(callbacks) == 1 and action.status == "PENDING"
    services.vehicle_action_advance(action=action, status="COMPLETED")
    again = services.vehicle_action_advance(action=action, status="FAILED", error="late")
    assert again.status == "COMPLETED" and again.finished_at is not None
    assert list(selectors.vehicle_actions(vehicle=dora_car, action_id=str(action.pk))) == [again]
    assert not selectors.vehicle_actions(vehicle=dora_car, action_id="not-a-uuid").exists()


def test_unsupported_action_and_battery_floor(dora_car):
    dora_car.capabilities = ["battery-status", "hvac-start"]
    dora_car.save()
    with pytest.raises(services.VehicleError) as err:
        services.vehicle_action_create(vehicle=dora_car, action="charging-start")
    assert err.value.code == "unsupported" and err.value.capability == "charging-start"
    services.vehicle_sample_upsert(vehicle=dora_car, snapshot=snap(T0, soc=30.0))
    with pytest.raises(services.VehicleError) as err:
        services.vehicle_action_create(vehicle=dora_car, action="hvac-start")
    assert "45" in err.value.message


def test_relogin_pauses_and_relink_resumes(dora_car):
    services.maker_account_status_set(account=dora_car.account, status="NEEDS_RELOGIN", error="refresh rejected")
    dora_car.refresh_from_db()
    assert dora_car.poll_status == "PAUSED" and dora_car.next_poll_at is None
    with pytest.raises(services.VehicleError) as err:
        services.vehicle_action_create(vehicle=dora_car, action="charging-start")
    assert err.value.code == "relogin"
    services.maker_account_link(driver=dora_car.account.driver, provider="simulator", external_id="sim-dora",
                                tokens=Tokens(access_token="new"))
    dora_car.refresh_from_db()
    assert dora_car.poll_status == "OK" and dora_car.next_poll_at is not None


def test_charging_schedule_several_windows_a_day(dora_car):
    schedule = services.charging_schedule_set(vehicle=dora_car, windows=[
        {"weekday": "mon", "start": "0100", "duration": "0115"},
        {"weekday": 0, "start": "1800", "duration": 240},
        {"weekday": "sun", "start": "2300", "duration": "0200"},
    ])
    got = selectors.charging_schedule_get(vehicle=dora_car)
    assert [(w.weekday, w.start, w.duration_minutes) for w in got.windows.all()] == [
        (0, "0100", 75), (0, "1800", 240), (6, "2300", 120)]
    assert schedule.deployed_at is None
    for bad in ({"weekday": 1, "start": "0110", "duration": "0015"},
                {"weekday": 1, "start": "0100", "duration": "0010"},
                {"weekday": 7, "start": "0100", "duration": "0015"},
                {"weekday": 1, "start": "2400", "duration": "0015"}):
        with pytest.raises(services.VehicleError):
            services.charging_schedule_set(vehicle=dora_car, windows=[bad])
    # Sunday 23:00 for 2 hours runs into Monday 00:30.
    with pytest.raises(services.VehicleError, match="overlap"):
        services.charging_schedule_set(vehicle=dora_car, windows=[
            {"weekday": "sun", "start": "2300", "duration": "0200"},
            {"weekday": "mon", "start": "0030", "duration": "0015"}])


def test_precondition_schedule_set_and_cancel(dora_car):
    services.precondition_schedule_set(vehicle=dora_car, start="1753")
    services.precondition_schedule_set(vehicle=dora_car, start="0730", weekdays=[0, 1, 2, 3, 4])
    active = list(selectors.precondition_schedules(vehicle=dora_car, active_only=True))
    assert [(p.start, p.weekdays) for p in active] == [("0730", 0b11111)]
    assert services.precondition_schedule_cancel(vehicle=dora_car) == 1
    assert not selectors.precondition_schedules(vehicle=dora_car, active_only=True).exists()
    with pytest.raises(services.VehicleError):
        services.precondition_schedule_set(vehicle=dora_car, start="2460")


def test_notification_settings(dora_car):
    assert selectors.notification_settings_get(vehicle=dora_car).charge_start == "NONE"
    services.notification_settings_set(vehicle=dora_car, values={"charge_start": "SMS",
                                                                 "do_not_disturb": {"start": "1710", "end": "1811"}})
    row = selectors.notification_settings_get(vehicle=dora_car)
    assert (row.charge_start, row.do_not_disturb_start, row.do_not_disturb_end) == ("SMS", "1710", "1811")
    for bad in ({"charge_start": "PIGEON"}, {"nope": "SMS"}, {"do_not_disturb": {"start": "1710"}}):
        with pytest.raises(services.VehicleError):
            services.notification_settings_set(vehicle=dora_car, values=bad)
    services.notification_settings_set(vehicle=dora_car, values={"do_not_disturb": None})
    assert selectors.notification_settings_get(vehicle=dora_car).do_not_disturb_start == ""


def test_model_bounds_hold(dora_car):
    sample = m.VehicleSample(vehicle=dora_car, maker_timestamp=T0, fetched_at=T0, soc=100.5)
    with pytest.raises(ValidationError):
        sample.full_clean()
    window = m.ChargingWindow(schedule=m.ChargingSchedule.objects.create(vehicle=dora_car), weekday=1,
                              start="0100", duration_minutes=20)
    with pytest.raises(ValidationError):
        window.full_clean()

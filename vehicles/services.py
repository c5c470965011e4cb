"""Every write to drivers' car accounts, cars, samples, actions and schedules.

Raised to callers: `VehicleError` only (its `code` says what the endpoint answers: invalid 400,
unsupported 400 naming the capability, forbidden 403, not_found 404, conflict 409, relogin 409,
unavailable 503 with `retry_after` seconds: the maker's quota, or its cloud failing).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any, Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from locations.tokens import secret_decrypt, secret_encrypt
from vehicles import models as m
from vehicles.providers.base import ACTIONS, DiscoveredVehicle, Snapshot, Tokens

log = logging.getLogger(__name__)

__all__ = [
    "VehicleError", "SampleResult",
    "maker_account_link", "maker_account_unlink", "maker_account_tokens", "maker_account_tokens_save",
    "maker_account_status_set",
    "vehicle_upsert", "vehicle_capability_unsupported", "vehicle_sample_upsert", "vehicle_samples_upsert",
    "vehicle_action_create", "vehicle_action_advance",
    "charging_schedule_set", "charging_schedule_enable", "charging_schedule_deploy",
    "precondition_schedule_set", "precondition_schedule_cancel",
    "notification_settings_set", "demo_car_link",
]


class VehicleError(Exception):
    """What a driver asked that cannot be done; `code` maps to the HTTP status (see the module doc)."""

    def __init__(self, message: str, *, code: str = "invalid", capability: str = "",
                 retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.capability = capability
        self.retry_after = retry_after


# --- maker accounts ---------------------------------------------------------------------------------


def _tokens_dump(tokens: Tokens) -> str:
    data = asdict(tokens)
    for key in ("expires_at", "refresh_expires_at"):
        if data[key] is not None:
            data[key] = data[key].isoformat()
    return secret_encrypt(json.dumps(data))


def maker_account_tokens(*, account: m.MakerAccount) -> Tokens:
    """The account's tokens, decrypted (an account never logged in has empty ones)."""
    if not account.secrets:
        return Tokens()
    data = json.loads(secret_decrypt(account.secrets))
    for key in ("expires_at", "refresh_expires_at"):
        data[key] = parse_datetime(data[key]) if data.get(key) else None
    return Tokens(**data)


def maker_account_tokens_save(*, account: m.MakerAccount, tokens: Tokens) -> m.MakerAccount:
    """Store new tokens (after a login or refresh): encrypted, expiry visible, the account active again."""
    account.secrets = _tokens_dump(tokens)
    account.access_expires_at = tokens.expires_at
    account.refresh_expires_at = tokens.refresh_expires_at
    fields = ["secrets", "access_expires_at", "refresh_expires_at", "updated_at"]
    if account.status == m.AccountStatus.NEEDS_RELOGIN:
        account.status = m.AccountStatus.ACTIVE
        account.last_error = ""
        fields += ["status", "last_error"]
    account.save(update_fields=fields)
    return account


@transaction.atomic
def maker_account_link(*, driver, provider: str, external_id: str, tokens: Tokens, label: str = "",
                       options: dict[str, Any] | None = None) -> m.MakerAccount:
    """Link (or re-link, after a re-login) a maker account to `driver`; another driver's account is a conflict."""
    if provider not in m.Provider.values:
        raise VehicleError(f"unknown car maker {provider!r}; one of {', '.join(m.Provider.values)}")
    external_id = (external_id or "").strip()
    if not external_id or len(external_id) > 128:
        raise VehicleError("the maker's account id is empty or longer than 128 characters")
    account = (m.MakerAccount.objects.select_for_update()
               .filter(provider=provider, external_id=external_id).first())
    if account is not None and account.driver_id != driver.pk:
        raise VehicleError("this maker account is linked by another driver", code="conflict")
    if account is None:
        account = m.MakerAccount(driver=driver, provider=provider, external_id=external_id)
    account.label = (label or account.label)[:254]
    if options is not None:
        account.options = {**account.options, **options}
    account.status = m.AccountStatus.ACTIVE
    account.last_error = ""
    account.cooldown_until = None
    account.secrets = _tokens_dump(tokens)
    account.access_expires_at = tokens.expires_at
    account.refresh_expires_at = tokens.refresh_expires_at
    account.save()
    # Cars paused while the account needed a re-login are due again at once.
    account.vehicles.filter(poll_status=m.PollStatus.PAUSED).update(
        poll_status=m.PollStatus.OK, next_poll_at=timezone.now(), poll_failures=0)
    return account


def maker_account_unlink(*, account: m.MakerAccount) -> None:
    """Forget the account, its tokens and its cars with all their history."""
    account.delete()


def maker_account_status_set(*, account: m.MakerAccount, status: str, error: str = "") -> m.MakerAccount:
    """Mark the account (NEEDS_RELOGIN pauses its cars: polling a rejected token only burns quota)."""
    with transaction.atomic():
        account.status = status
        account.last_error = error[:500]
        account.last_error_at = timezone.now() if error else account.last_error_at
        account.save(update_fields=["status", "last_error", "last_error_at", "updated_at"])
        if status == m.AccountStatus.NEEDS_RELOGIN:
            account.vehicles.update(poll_status=m.PollStatus.PAUSED, next_poll_at=None)
    return account


# --- vehicles ----------------------------------------------------------------------------------------

def _capabilities_clean(names: Iterable[str]) -> list[str]:
    from vehicles.providers.base import READINGS

    known = set(READINGS) | set(ACTIONS)
    return sorted({n for n in names if n in known})


@transaction.atomic
def vehicle_upsert(*, account: m.MakerAccount, discovered: DiscoveredVehicle) -> m.Vehicle:
    """A car found in the account (discovery): created due at once, or its facts updated.

    A VIN already linked through another driver's account is a conflict; through another account of the
    same driver (a re-linked login), it moves here with its history."""
    vin = (discovered.vin or "").strip().upper()
    if not vin or len(vin) > 32:
        raise VehicleError(f"a VIN of 1 to 32 characters, not {discovered.vin!r}")
    vehicle = m.Vehicle.objects.select_for_update().select_related("account").filter(vin=vin).first()
    if vehicle is not None and vehicle.account.driver_id != account.driver_id:
        raise VehicleError(f"the car {vin} is linked by another driver", code="conflict")
    if vehicle is None:
        vehicle = m.Vehicle(vin=vin, next_poll_at=timezone.now())
    vehicle.account = account
    vehicle.maker_id = (discovered.maker_id or vin)[:64]
    vehicle.brand = (discovered.brand or vehicle.brand)[:32]
    vehicle.model = (discovered.model or vehicle.model)[:64]
    vehicle.year = discovered.year if discovered.year and 1900 <= discovered.year <= 2100 else vehicle.year
    capacity = discovered.battery_capacity_kwh
    vehicle.battery_capacity_kwh = capacity if capacity and 0 < capacity <= 1000 else vehicle.battery_capacity_kwh
    vehicle.capabilities = _capabilities_clean(discovered.capabilities)
    floor = discovered.hvac_min_soc
    vehicle.hvac_min_soc = floor if floor is not None and 0 <= floor <= 100 else None
    vehicle.save()
    return vehicle


def vehicle_capability_unsupported(*, vehicle: m.Vehicle, capability: str, reason: str) -> m.Vehicle:
    """The maker refused a capability for good: never asked again, and the reason kept for the driver."""
    with transaction.atomic():
        vehicle = m.Vehicle.objects.select_for_update().get(pk=vehicle.pk)
        vehicle.unsupported = {**(vehicle.unsupported or {}), capability: reason[:200]}
        vehicle.save(update_fields=["unsupported", "updated_at"])
    return vehicle


# --- samples and state ---------------------------------------------------------------------------------

_BOUNDS = {
    "soc": (0.0, 100.0), "range_km": (0.0, 5000.0), "charging_power_kw": (-1000.0, 1000.0),
    "latitude": (-90.0, 90.0), "longitude": (-180.0, 180.0), "odometer_km": (0.0, 10_000_000.0),
}
_FIELDS = ("soc", "range_km", "charging_state", "plugged", "charging_power_kw", "latitude", "longitude",
           "odometer_km")


def _state_fields(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot's values within the columns' bounds: a value out of them (a maker's 255 % for
    'unknown') is dropped, not stored and not a failure of the whole sample."""
    out: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(snapshot, name)
        if name in _BOUNDS and value is not None:
            low, high = _BOUNDS[name]
            try:
                value = float(value)
            except (TypeError, ValueError):
                value = None
            if value is not None and (math.isnan(value) or not low <= value <= high):
                value = None
        out[name] = value
    if out["charging_state"] not in m.ChargingState.values:
        out["charging_state"] = m.ChargingState.UNKNOWN
    if out["plugged"] is not None:
        out["plugged"] = bool(out["plugged"])
    return out


@dataclass(frozen=True)
class SampleResult:
    vehicle_id: int
    created: bool  # a new sample (never twice for one maker timestamp)
    state_updated: bool  # the latest state moved forward


def vehicle_sample_upsert(*, vehicle: m.Vehicle, snapshot: Snapshot, source: str = m.SampleSource.POLL,
                          fetched_at: datetime | None = None) -> SampleResult:
    """One reading of one car: a sample on the maker's timestamp (never duplicated) and the latest state."""
    return vehicle_samples_upsert(items=[(vehicle.pk, snapshot)], source=source, fetched_at=fetched_at)[0]


def vehicle_samples_upsert(*, items: list[tuple[int, Snapshot]], source: str = m.SampleSource.POLL,
                           fetched_at: datetime | None = None) -> list[SampleResult]:
    """Readings of many cars (vehicle id, snapshot) in a few statements whatever their number.

    A sample is keyed on (vehicle, maker_timestamp): the same reading twice (a retried task, a stream
    message and a poll) is one row. The state moves only forward in maker time; a reading as old as the
    state still tells that the car was asked (`fetched_at`)."""
    fetched_at = fetched_at or timezone.now()
    for _, snap in items:
        if snap.maker_timestamp is None or timezone.is_naive(snap.maker_timestamp):
            raise VehicleError("a reading needs the maker's timestamp, timezone-aware")
    if not items:
        return []
    # One reading per car per call: the latest in maker time (a stream may hand over several).
    latest: dict[int, Snapshot] = {}
    for vid, snap in items:
        if vid not in latest or snap.maker_timestamp > latest[vid].maker_timestamp:
            latest[vid] = snap
    ids = list({vid for vid, _ in items})
    with transaction.atomic():
        states = {s.vehicle_id: s for s in m.VehicleState.objects.select_for_update().filter(vehicle_id__in=ids)}
        keys = {(vid, snap.maker_timestamp) for vid, snap in items}
        existing = set(m.VehicleSample.objects.filter(vehicle_id__in=ids,
                                                      maker_timestamp__in={ts for _, ts in keys})
                       .values_list("vehicle_id", "maker_timestamp"))
        new_samples, seen = [], set()
        for vid, snap in items:
            key = (vid, snap.maker_timestamp)
            if key in existing or key in seen:
                continue
            seen.add(key)
            new_samples.append(m.VehicleSample(vehicle_id=vid, maker_timestamp=snap.maker_timestamp,
                                               fetched_at=fetched_at, source=source, **_state_fields(snap)))
        # ignore_conflicts: a concurrent writer of the same reading (stream and poll) wins quietly.
        m.VehicleSample.objects.bulk_create(new_samples, ignore_conflicts=True, batch_size=500)

        to_create, to_update, touched = [], [], []
        moved: set[int] = set()
        for vid, snap in latest.items():
            state = states.get(vid)
            fields = _state_fields(snap)
            if state is None:
                to_create.append(m.VehicleState(vehicle_id=vid, maker_timestamp=snap.maker_timestamp,
                                                fetched_at=fetched_at, estimated=False,
                                                readings=_readings(None, snap, fetched_at), **fields))
                moved.add(vid)
            elif snap.maker_timestamp > state.maker_timestamp:
                for k, v in fields.items():
                    setattr(state, k, v)
                state.maker_timestamp = snap.maker_timestamp
                state.fetched_at = fetched_at
                state.estimated = False
                state.readings = _readings(state.readings, snap, fetched_at)
                to_update.append(state)
                moved.add(vid)
            else:
                state.fetched_at = max(state.fetched_at, fetched_at)
                if snap.readings:
                    state.readings = _readings(state.readings, snap, fetched_at)
                touched.append(state)
        m.VehicleState.objects.bulk_create(to_create, batch_size=500)
        if to_update:
            m.VehicleState.objects.bulk_update(
                to_update, [*_FIELDS, "maker_timestamp", "fetched_at", "estimated", "readings"], batch_size=500)
        if touched:
            m.VehicleState.objects.bulk_update(touched, ["fetched_at", "readings"], batch_size=500)
    created = {s.vehicle_id for s in new_samples}
    return [SampleResult(vid, vid in created, vid in moved) for vid in latest]


def _readings(current: dict | None, snap: Snapshot, fetched_at: datetime) -> dict:
    readings = dict(current or {})
    stamp = fetched_at.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name, data in (snap.readings or {}).items():
        readings[name] = {"data": data, "fetched_at": stamp}
    return readings


# --- remote actions ----------------------------------------------------------------------------------------

ACTION_TIMEOUT = timedelta(seconds=getattr(settings, "VEHICLES_ACTION_TIMEOUT_SECONDS", 300))


def vehicle_action_create(*, vehicle: m.Vehicle, action: str, params: dict | None = None) -> m.RemoteAction:
    """Record an action asked of the car (PENDING; its id is the notificationId) and send it after commit."""
    if action not in ACTIONS:
        raise VehicleError(f"unknown action {action!r}", code="not_found")
    if not vehicle.supports(action):
        reason = (vehicle.unsupported or {}).get(action, "")
        raise VehicleError(f"this car does not support {action}" + (f": {reason}" if reason else ""),
                           code="unsupported", capability=action)
    account = vehicle.account
    if account.status == m.AccountStatus.NEEDS_RELOGIN:
        raise VehicleError("the car maker account needs a new login before the car can be reached",
                           code="relogin")
    params = params or {}
    if action == "hvac-start" and vehicle.hvac_min_soc is not None:
        state = m.VehicleState.objects.filter(vehicle=vehicle).first()
        if state is None or state.soc is None or state.soc < vehicle.hvac_min_soc:
            raise VehicleError(f"preconditioning needs the battery above {vehicle.hvac_min_soc:g} %"
                               f" (it is at {'an unknown level' if state is None or state.soc is None else f'{state.soc:g} %'})",
                               code="unsupported", capability=action)
    if len(json.dumps(params)) > 10_000:
        raise VehicleError("action parameters too large")
    with transaction.atomic():
        action_row = m.RemoteAction.objects.create(vehicle=vehicle, action=action, params=params,
                                                   deadline_at=timezone.now() + ACTION_TIMEOUT)
        transaction.on_commit(lambda: _action_enqueue(action_row, account.provider))
    return action_row


def _action_enqueue(action: m.RemoteAction, provider: str) -> None:
    # By name: services must not import tasks (tasks import services).
    from celery import current_app

    current_app.send_task("vehicles.action_run", args=[str(action.pk)], queue=queue_for(provider))


def queue_for(provider: str) -> str:
    """The Celery queue of a maker's work: one maker's slowness never holds another's cars."""
    return f"vehicles.{provider}"


@transaction.atomic
def vehicle_action_advance(*, action: m.RemoteAction, status: str, error: str = "",
                           external_id: str | None = None) -> m.RemoteAction:
    """Move an action on; once it has ended (COMPLETED, FAILED, TIMEOUT) it never changes again, so a task
    that runs twice cannot undo what the first run recorded."""
    if status not in m.ActionStatus.values:
        raise VehicleError(f"unknown action status {status!r}")
    row = m.RemoteAction.objects.select_for_update().get(pk=action.pk)
    if row.status != m.ActionStatus.PENDING:
        return row
    now = timezone.now()
    if external_id is not None:
        row.external_id = external_id[:128]
    if status == m.ActionStatus.PENDING:
        row.sent_at = row.sent_at or now
        row.attempts += 1
    else:
        row.finished_at = now
        row.error = error[:500]
    row.status = status
    row.save()
    return row


# --- schedules and settings ------------------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _duration_minutes(value: str | int) -> int:
    """'0115' (HHMM, as the ZE Services wrote it) or minutes."""
    if isinstance(value, int) and not isinstance(value, bool):
        minutes = value
    elif isinstance(value, str) and len(value) == 4 and value.isdigit():
        minutes = int(value[:2]) * 60 + int(value[2:])
        if int(value[2:]) >= 60:
            raise VehicleError(f"a duration as HHMM, not {value!r}")
    else:
        raise VehicleError(f"a duration as HHMM, not {value!r}")
    if minutes < 15 or minutes > 1440 or minutes % 15:
        raise VehicleError("a duration of 15 minutes to 24 hours, in 15-minute steps")
    return minutes


def charging_schedule_set(*, vehicle: m.Vehicle, windows: list[dict], optimized_charge: bool | None = None,
                          enabled: bool | None = None) -> m.ChargingSchedule:
    """Replace the car's charging windows: each `{"weekday": 0-6 or "mon".."sun", "start": "HHMM" on the
    quarter hour, "duration": "HHMM" or minutes in 15-minute steps}`; several a day, never overlapping."""
    if not vehicle.supports("charge-schedule"):
        raise VehicleError("this car does not support charging schedules", code="unsupported",
                           capability="charge-schedule")
    if len(windows) > 7 * 24 * 4:
        raise VehicleError("too many charging windows")
    rows = []
    for window in windows:
        day = window.get("weekday")
        if isinstance(day, str) and day.lower()[:3] in WEEKDAYS:
            day = WEEKDAYS.index(day.lower()[:3])
        if not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= 6:
            raise VehicleError(f"a weekday 0-6 or mon..sun, not {window.get('weekday')!r}")
        start = window.get("start")
        try:
            m.quarter_validator(start if isinstance(start, str) else "")
        except ValidationError:
            raise VehicleError(f"a start as HHMM on :00, :15, :30 or :45, not {start!r}") from None
        rows.append(m.ChargingWindow(weekday=day, start=start, duration_minutes=_duration_minutes(window.get("duration"))))
    _no_overlap(rows)
    with transaction.atomic():
        schedule, _ = m.ChargingSchedule.objects.select_for_update().get_or_create(vehicle=vehicle)
        schedule.windows.all().delete()
        for row in rows:
            row.schedule = schedule
        m.ChargingWindow.objects.bulk_create(rows)
        if optimized_charge is not None:
            schedule.optimized_charge = bool(optimized_charge)
        if enabled is not None:
            schedule.enabled = bool(enabled)
        schedule.deployed_at = None
        schedule.save()
    return schedule


def _no_overlap(rows: list[m.ChargingWindow]) -> None:
    # A window may run past midnight into the next day: compare on the week's minute axis, wrapping.
    week = 7 * 1440
    spans = sorted((r.weekday * 1440 + r.start_minute, r.duration_minutes) for r in rows)
    for i, (start, length) in enumerate(spans):
        nxt_start = spans[(i + 1) % len(spans)][0] + (week if i + 1 == len(spans) else 0)
        if len(spans) > 1 and start + length > nxt_start:
            raise VehicleError("charging windows overlap")


def charging_schedule_enable(*, vehicle: m.Vehicle, enabled: bool) -> m.ChargingSchedule:
    with transaction.atomic():
        schedule, _ = m.ChargingSchedule.objects.select_for_update().get_or_create(vehicle=vehicle)
        schedule.enabled = bool(enabled)
        schedule.save(update_fields=["enabled", "updated_at"])
    return schedule


def charging_schedule_deploy(*, vehicle: m.Vehicle) -> m.RemoteAction:
    """Send the schedule to the car (an action); `deployed_at` is set when the car confirms."""
    schedule = m.ChargingSchedule.objects.filter(vehicle=vehicle).first()
    if schedule is None or not schedule.windows.exists():
        raise VehicleError("no charging schedule to deploy: create one first", code="not_found")
    windows = [{"weekday": w.weekday, "start": w.start, "duration_minutes": w.duration_minutes}
               for w in schedule.windows.all()]
    return vehicle_action_create(vehicle=vehicle, action="charge-schedule",
                                 params={"windows": windows, "enabled": schedule.enabled,
                                         "optimized_charge": schedule.optimized_charge})


def precondition_schedule_set(*, vehicle: m.Vehicle, start: str, weekdays: Iterable[int] = ()) -> m.PreconditionSchedule:
    """Precondition at a time of day (once, or on weekdays); it replaces the car's previous one."""
    if not vehicle.supports("hvac-schedule"):
        raise VehicleError("this car does not support scheduled preconditioning", code="unsupported",
                           capability="hvac-schedule")
    try:
        m.hhmm_validator(start if isinstance(start, str) else "")
    except ValidationError:
        raise VehicleError(f"a start as HHMM (0000 to 2359), not {start!r}") from None
    mask = 0
    for day in weekdays:
        if not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= 6:
            raise VehicleError(f"a weekday 0-6, not {day!r}")
        mask |= 1 << day
    with transaction.atomic():
        m.PreconditionSchedule.objects.filter(vehicle=vehicle, cancelled_at__isnull=True).update(
            cancelled_at=timezone.now(), enabled=False)
        schedule = m.PreconditionSchedule.objects.create(vehicle=vehicle, start=start, weekdays=mask)
        vehicle_action_create(vehicle=vehicle, action="hvac-schedule",
                              params={"start": start, "weekdays": sorted(set(weekdays))})
    return schedule


def precondition_schedule_cancel(*, vehicle: m.Vehicle) -> int:
    """Cancel the car's scheduled preconditioning (what the old service could not); how many were active."""
    with transaction.atomic():
        count = m.PreconditionSchedule.objects.filter(vehicle=vehicle, cancelled_at__isnull=True).update(
            cancelled_at=timezone.now(), enabled=False)
        if count and vehicle.supports("hvac-schedule-cancel"):
            vehicle_action_create(vehicle=vehicle, action="hvac-schedule-cancel", params={})
    return count


def notification_settings_set(*, vehicle: m.Vehicle, values: dict[str, Any]) -> m.NotificationSettings:
    """Write the contract's keys (each EMAIL | SMS | NONE) and `do_not_disturb` (null or {"start", "end"});
    keys not given keep their value."""
    unknown = set(values) - set(m.NotificationSettings.KEYS) - {"do_not_disturb"}
    if unknown:
        raise VehicleError(f"unknown notification settings: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        row, _ = m.NotificationSettings.objects.select_for_update().get_or_create(vehicle=vehicle)
        for key in m.NotificationSettings.KEYS:
            if key in values:
                if values[key] not in m.NotificationChannel.values:
                    raise VehicleError(f"{key}: one of EMAIL, SMS, NONE")
                setattr(row, key, values[key])
        if "do_not_disturb" in values:
            dnd = values["do_not_disturb"]
            if dnd is None:
                row.do_not_disturb_start = row.do_not_disturb_end = ""
            elif isinstance(dnd, dict) and set(dnd) == {"start", "end"}:
                for edge in ("start", "end"):
                    try:
                        m.hhmm_validator(dnd[edge] if isinstance(dnd[edge], str) else "")
                    except ValidationError:
                        raise VehicleError(f"do_not_disturb.{edge}: a time as HHMM") from None
                row.do_not_disturb_start, row.do_not_disturb_end = dnd["start"], dnd["end"]
            else:
                raise VehicleError('do_not_disturb: null or {"start": "HHMM", "end": "HHMM"}')
        row.save()
    return row


# --- the demo ----------------------------------------------------------------------------------------------

DEMO_SIMULATOR_USER = ("demo-driver", "demo-driver-simulator")


def demo_car_link(*, username: str = "demo-driver"):
    """The demo driver's simulated car: the driver (created with an unusable password when absent: the
    drivers' side sets one), linked to the simulator account `make run` serves (Procfile `simulator`),
    its car due for a poll at once. Safe to run again."""
    from django.contrib.auth import get_user_model

    from vehicles.simulator_server import account_offline

    User = get_user_model()
    driver = User.objects.filter(username=username).first()
    if driver is None:
        driver = User(username=username)
        driver.set_unusable_password()
        driver.save()
    offline = account_offline(*DEMO_SIMULATOR_USER, cars=1)
    with transaction.atomic():
        account = m.MakerAccount.objects.filter(provider=m.Provider.SIMULATOR, external_id=offline["account_id"]).first()
        if account is None or account.status == m.AccountStatus.NEEDS_RELOGIN or account.driver_id != driver.pk:
            if account is not None and account.driver_id != driver.pk:
                account.delete()
            account = maker_account_link(
                driver=driver, provider=m.Provider.SIMULATOR, external_id=offline["account_id"],
                tokens=Tokens(access_token=offline["access_token"], refresh_token=offline["refresh_token"],
                              expires_at=timezone.now() + timedelta(seconds=offline["expires_in"])),
                label=DEMO_SIMULATOR_USER[0])
        vehicles = [vehicle_upsert(account=account, discovered=DiscoveredVehicle(
            vin=car["vin"], maker_id=car["id"], brand=car["brand"], model=car["model"], year=car["year"],
            battery_capacity_kwh=car["battery_capacity_kwh"], capabilities=car["capabilities"],
            hvac_min_soc=car["hvac_min_soc"])) for car in offline["cars"]]
    return driver, vehicles

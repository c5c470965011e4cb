"""The ZE Services answers (seed 002) drawn from the hub's rows: battery, preconditioning and charging
history by month, charging schedules with several windows a day. Pure shaping over selectors' rows."""

from __future__ import annotations

from datetime import datetime, timezone as dt_timezone

from django.utils import timezone

from emsp.drivers.plumbing import CarApiError
from emsp.drivers.shapes import epoch_ms
from vehicles import models as m
from vehicles import selectors
from vehicles.services import WEEKDAYS

# The scopes the ZE login listed, by the capability behind each.
SCOPES = (("BATTERY_CHARGE_STATUS", "battery-status"), ("BATTERY_CHARGE_HISTORY", "battery-status"),
          ("BATTERY_CHARGE_REMOTE_ACTIVATION", "charging-start"), ("BATTERY_CHARGE_SCHEDULING", "charge-schedule"),
          ("AC_REMOTE_CONTROL", "hvac-start"), ("BATTERY_CHARGE_LOWALERT", "notification-settings"))


def scopes(vehicle: m.Vehicle | None) -> list[str]:
    return [scope for scope, capability in SCOPES if vehicle is not None and vehicle.supports(capability)]


def month_range(begin: str | None, end: str | None) -> tuple[datetime, datetime]:
    """`?begin=MMYY&end=MMYY` (October 2016 is 1016) as [first instant of begin, first instant after end);
    `end` defaults to `begin`, both to this month."""
    now = timezone.now()
    begin = begin or end or now.strftime("%m%y")
    end = end or begin
    start_year, start_month = _mmyy(begin, "begin")
    end_year, end_month = _mmyy(end, "end")
    since = datetime(start_year, start_month, 1, tzinfo=dt_timezone.utc)
    until = datetime(end_year + end_month // 12, end_month % 12 + 1, 1, tzinfo=dt_timezone.utc)
    if until <= since:
        raise CarApiError(400, "end is before begin: both are MMYY (October 2016 is 1016)")
    return since, until


def _mmyy(value: str, name: str) -> tuple[int, int]:
    if not (isinstance(value, str) and len(value) == 4 and value.isascii() and value.isdigit()
            and 1 <= int(value[:2]) <= 12):
        raise CarApiError(400, f"{name} must be MMYY (October 2016 is 1016), not {value!r}")
    return 2000 + int(value[2:]), int(value[:2])


def charging_point(power_kw: float | None) -> str:
    """The ZE Services' kinds of charger, from the power the car draws."""
    if not power_kw or power_kw <= 0:
        return "INVALID"
    if power_kw <= 7.4:
        return "SLOW"
    if power_kw <= 22.0:
        return "ACCELERATED"
    return "FAST"


def remaining_minutes(*, soc: float | None, capacity_kwh: float | None, power_kw: float | None) -> int | None:
    if soc is None or not capacity_kwh or not power_kw or power_kw <= 0:
        return None
    return int(round((100.0 - soc) / 100.0 * capacity_kwh / power_kw * 60))


def battery(vehicle: m.Vehicle, view: selectors.StateView) -> dict:
    charging = view.charging_state == m.ChargingState.CHARGING
    body = {"charging": charging, "plugged": bool(view.plugged),
            "charge_level": None if view.soc is None else int(round(view.soc)),
            "remaining_range": view.range_km, "last_update": epoch_ms(view.maker_timestamp)}
    if view.plugged:
        body["charging_point"] = charging_point(view.charging_power_kw) if charging else "INVALID"
    if charging:
        cached = (selectors.vehicle_reading_cached(vehicle=vehicle, reading="battery-status") or {}).get("data") or {}
        minutes = cached.get("chargingRemainingTime")
        if not isinstance(minutes, (int, float)) or view.estimated:
            minutes = remaining_minutes(soc=view.soc, capacity_kwh=vehicle.battery_capacity_kwh,
                                        power_kw=view.charging_power_kw)
        if minutes is not None:
            body["remaining_time"] = int(minutes)
    # Not in the old answer: whether charge_level is the car's reading or the hub's estimate since.
    body["estimated"] = view.estimated
    return body


def _ms_of(text) -> int | None:
    if not isinstance(text, str):
        return None
    from django.utils.dateparse import parse_datetime

    try:
        value = parse_datetime(text)
    except ValueError:
        return None
    if value is None:
        return None
    if timezone.is_naive(value):
        value = value.replace(tzinfo=dt_timezone.utc)
    return epoch_ms(value)


def charge_history(vehicle: m.Vehicle, since: datetime, until: datetime) -> list[dict]:
    """START and END notifications of the month(s), most recent first: the maker's own charge history when
    the car gives one, else the hub's samples where charging began and ended."""
    cached = (selectors.vehicle_reading_cached(vehicle=vehicle, reading="charge-history") or {}).get("data") or {}
    charges = cached.get("charges") if vehicle.supports("charge-history") else None
    entries = _from_charges(charges) if isinstance(charges, list) else _from_samples(vehicle, since, until)
    low, high = epoch_ms(since), epoch_ms(until)
    return sorted((e for e in entries if low <= e["date"] < high), key=lambda e: e["date"], reverse=True)


def _from_charges(charges: list) -> list[dict]:
    out = []
    for charge in charges:
        if not isinstance(charge, dict):
            continue
        start, end = _ms_of(charge.get("chargeStartDate")), _ms_of(charge.get("chargeEndDate"))
        if start is not None:
            out.append({"date": start, "type": "START_NOTIFICATION",
                        "charging_point": charging_point(charge.get("chargePower")),
                        "charge_level": charge.get("chargeStartBatteryLevel"), "remaining_autonomy": None})
        if end is not None:
            out.append({"date": end, "type": "END_NOTIFICATION", "charging_point": "INVALID",
                        "charge_level": charge.get("chargeEndBatteryLevel"), "remaining_autonomy": None})
    return out


def _from_samples(vehicle: m.Vehicle, since: datetime, until: datetime) -> list[dict]:
    fields = ("maker_timestamp", "charging_state", "soc", "range_km", "charging_power_kw")
    before = selectors.vehicle_samples(vehicle=vehicle, until=since).only(*fields).first()
    rows = selectors.vehicle_samples(vehicle=vehicle, since=since, until=until).only(*fields).order_by("maker_timestamp")
    charging = before is not None and before.charging_state == m.ChargingState.CHARGING
    out = []
    for row in rows.iterator(chunk_size=2000):
        now_charging = row.charging_state == m.ChargingState.CHARGING
        if now_charging == charging or row.charging_state == m.ChargingState.UNKNOWN:
            continue
        charging = now_charging
        entry = {"date": epoch_ms(row.maker_timestamp),
                 "type": "START_NOTIFICATION" if now_charging else "END_NOTIFICATION",
                 "charging_point": charging_point(row.charging_power_kw) if now_charging else "INVALID",
                 "charge_level": None if row.soc is None else int(round(row.soc)),
                 "remaining_autonomy": None if row.range_km is None else int(round(row.range_km))}
        minutes = remaining_minutes(soc=row.soc, capacity_kwh=vehicle.battery_capacity_kwh,
                                    power_kw=row.charging_power_kw) if now_charging else None
        if minutes is not None:
            entry["remaining_time"] = minutes * 60_000  # milliseconds, as the old history said it
        out.append(entry)
    return out


def precondition_history(vehicle: m.Vehicle, since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """Preconditionings, most recent first: the driver's own (USER_REQUEST, from the hub's actions) and the
    car's (CAR_NOTIFICATION, from the maker's hvac history when the car gives one)."""
    out = []
    actions = selectors.vehicle_actions(vehicle=vehicle).filter(action="hvac-start").exclude(
        status=m.ActionStatus.PENDING)
    if since:
        actions = actions.filter(requested_at__gte=since, requested_at__lt=until)
    for action in actions:
        out.append({"date": epoch_ms(action.requested_at), "type": "USER_REQUEST",
                    "result": "SUCCESS" if action.status == m.ActionStatus.COMPLETED else "ERROR"})
    cached = (selectors.vehicle_reading_cached(vehicle=vehicle, reading="hvac-history") or {}).get("data") or {}
    for session in cached.get("hvacSessions") or []:
        if not isinstance(session, dict):
            continue
        date = _ms_of(session.get("hvacSessionStartDate") or session.get("hvacSessionRequestDate"))
        if date is None or (since and not epoch_ms(since) <= date < epoch_ms(until)):
            continue
        status = str(session.get("hvacSessionEndStatus") or "").lower()
        out.append({"date": date, "type": "CAR_NOTIFICATION",
                    "result": "ERROR" if any(w in status for w in ("error", "fail", "cancel")) else "SUCCESS"})
    return sorted(out, key=lambda e: e["date"], reverse=True)


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}{minutes % 60:02d}"


def schedule(row: m.ChargingSchedule | None) -> dict:
    """The onboard answer: one window a day as the old service showed it, a list where a day has several."""
    if row is None:
        return {"enabled": False, "optimized_charge": False, "schedule": {}, "deployed": False, "deployed_at": None}
    days: dict[str, list[dict]] = {}
    for window in row.windows.all():
        days.setdefault(WEEKDAYS[window.weekday], []).append(
            {"start": window.start, "duration": hhmm(window.duration_minutes)})
    from emsp.drivers.shapes import iso

    return {"enabled": row.enabled, "optimized_charge": row.optimized_charge,
            "schedule": {day: windows[0] if len(windows) == 1 else windows for day, windows in days.items()},
            "deployed": row.deployed_at is not None, "deployed_at": iso(row.deployed_at)}


def windows_of(body: dict) -> list[dict] | None:
    """The offboard body's days (`"mon": {"start", "duration"}` or a list of them) as windows; None when
    it names no day. A `schedule` object holding the days is read too (the onboard answer's shape)."""
    days = body.get("schedule") if isinstance(body.get("schedule"), dict) else body
    named = [day for day in WEEKDAYS if day in days]
    if not named:
        return None
    windows = []
    for day in named:
        value = days[day]
        for window in (value if isinstance(value, list) else [value]):
            if window is None:
                continue
            if not isinstance(window, dict):
                raise CarApiError(400, f'{day}: {{"start": "HHMM", "duration": "HHMM"}} or a list of them')
            windows.append({"weekday": day, "start": window.get("start"), "duration": window.get("duration")})
    return windows

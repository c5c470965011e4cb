"""Kamereon's and Gigya's answers as ours (readings, errors), and our schedules as Kamereon's: pure
functions, no I/O.

Readings are the attributes `read` returns and the snapshot keeps: Kamereon's own names (the provider
contract's names for every maker), times as UTC `...Z` strings, power in kW, keys Kamereon leaves out left out.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import marshmallow
from renault_api.exceptions import EndpointNotAvailableError, NotAuthenticatedException, RenaultException
from renault_api.gigya import exceptions as gigya_errors
from renault_api.kamereon import exceptions as kamereon_errors
from renault_api.kamereon import models

from vehicles.providers.base import ProviderError, Snapshot

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Kamereon keeps at most five weekly schedules, each with one window a day.
MAX_SCHEDULES = 5
# The contract's precondition time is when it starts; Kamereon's is when the car is ready, about five
# minutes later (seed 002: "the process takes five minutes").
HVAC_LEAD = timedelta(minutes=5)
_CAPACITY_IN_VCD = re.compile(r"(?:^|/)0*(\d{2,3})KWH(?:/|$)")
# Kamereon's quota error says nothing of when the quota refills; MyRenault users see it lift after some
# minutes. The whole account cools down this long instead of every car retrying.
QUOTA_COOL_DOWN = 15 * 60
RETRY = 120
PRIVACY_RETRY = 3600
# Gigya's answers that mean the login token itself is dead (renault-api clears it on the first two).
_LOGIN_TOKEN_DEAD = {403005, 403013, 403042}


def when(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def iso(value: str | datetime | None) -> str | None:
    moment = when(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def _given(raw: dict[str, Any], times: tuple[str, ...] = ()) -> dict[str, Any]:
    """Kamereon's attributes as given (a key it leaves out stays out), its times as UTC '...Z'."""
    out = {k: v for k, v in raw.items() if v is not None}
    for key in times:
        if out.get(key):
            out[key] = iso(out[key])
    return out


def battery(data: models.KamereonVehicleBatteryStatusData, *, power_in_watts: bool) -> dict[str, Any]:
    out = _given(data.raw_data, ("timestamp", "chargingRemainingTimeLastUpdateDateTime"))
    power = out.get("chargingInstantaneousPower")
    if power is not None and power_in_watts:
        out["chargingInstantaneousPower"] = power / 1000  # kW, whatever the model says in
    return out


def cockpit(data: models.KamereonVehicleCockpitData) -> dict[str, Any]:
    return _given(data.raw_data, ("timestamp",))


def location(data: models.KamereonVehicleLocationData) -> dict[str, Any]:
    return _given(data.raw_data, ("lastUpdateTime",))


def hvac_status(data: models.KamereonVehicleHvacStatusData) -> dict[str, Any]:
    return _given(data.raw_data, ("lastUpdateTime", "nextHvacStartDate"))


def lock_status(data: models.KamereonVehicleLockStatusData) -> dict[str, Any]:
    out = _given(data.raw_data, ("lastUpdateTime",))
    # Newer cars say statusDoor*; renault-api reads them into the older names, which are the contract's.
    for name in ("doorStatusRearLeft", "doorStatusRearRight", "doorStatusDriver", "doorStatusPassenger",
                 "hatchStatus"):
        if getattr(data, name) is not None:
            out[name] = getattr(data, name)
    return out


def charge_mode_name(mode: str | None) -> str | None:
    """charging-settings' and ev/settings' modes in charge-mode's two words."""
    if not mode:
        return None
    return "always" if mode.lower() == "always" else "schedule_mode"


def charge_mode(*, mode: dict | None, settings: dict | None, schedule: dict | None,
                soc_levels: dict | None) -> dict[str, Any]:
    """charge-mode with what else the model says of charging, each part in Kamereon's own names."""
    out: dict[str, Any] = {}
    if settings:
        out.update(_given({k: settings.get(k) for k in ("mode", "schedules", "delay", "startDateTime")},
                          ("startDateTime",)))
        out["chargeMode"] = charge_mode_name(settings.get("mode"))
    if schedule:
        out.update(_given({k: schedule.get(k) for k in ("calendar", "chargeModeRq", "programs")}))
        out["chargeMode"] = charge_mode_name(schedule.get("chargeModeRq")) or out.get("chargeMode")
    if mode and mode.get("chargeMode"):
        out["chargeMode"] = mode["chargeMode"]
    if soc_levels:
        out.update(_given({k: soc_levels.get(k) for k in ("socMin", "socTarget")}))
    return {k: v for k, v in out.items() if v is not None}


def charges(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Charging sessions, newest first (as the ZE Services history was); chargeDuration in minutes."""
    sessions = []
    for charge in raw.get("charges") or []:
        session = _given(charge, ("chargeStartDate", "chargeEndDate"))
        start, end = when(charge.get("chargeStartDate")), when(charge.get("chargeEndDate"))
        # Models disagree on chargeDuration's unit (minutes or seconds; renault-api's table of which is
        # incomplete): the two dates, where given, settle it.
        if start and end:
            session["chargeDuration"] = round((end - start).total_seconds() / 60)
        sessions.append(session)
    return sorted(sessions, key=lambda s: s.get("chargeStartDate") or "", reverse=True)


def hvac_history(raw: dict[str, Any]) -> dict[str, Any]:
    sessions = [_given(s, ("hvacSessionRequestDate", "hvacSessionStartDate", "hvacSessionEndDate"))
                for s in raw.get("hvacSessions") or []]
    out: dict[str, Any] = {"hvacSessions": sorted(sessions, key=lambda s: s.get("hvacSessionStartDate") or "",
                                                  reverse=True)}
    for key in ("hvacSessionsSummaries", "hvacSummaries"):
        if raw.get(key):
            out[key] = raw[key]
    return out


def car_facts(raw: dict[str, Any]) -> dict[str, Any]:
    """Year and battery size from the vehicle details (the size is in the option codes: '045KWH')."""
    registered = raw.get("firstRegistrationDate") or raw.get("registrationDate") or ""
    capacity = _CAPACITY_IN_VCD.search(raw.get("vcd") or "")
    return {"year": int(registered[:4]) if registered[:4].isdigit() else None,
            "battery_capacity_kwh": float(capacity.group(1)) if capacity else None}


def charging_state(battery_reading: dict[str, Any]) -> str:
    status = battery_reading.get("chargingStatus")
    if status is None or status == -1.1:  # -1.1: unavailable
        return "UNKNOWN"
    if status == 1.0:  # the only value that means energy flowing (DESIGN, "Car makers")
        return "CHARGING"
    if status == 0.2:
        return "COMPLETE"
    if status == -1.0:
        # "Not charging" on a ZE40 and an error on a ZE50: an error only with the plug in.
        return "ERROR" if battery_reading.get("plugStatus") == 1 else "NOT_CHARGING"
    return "NOT_CHARGING"


def snapshot(readings: dict[str, dict]) -> Snapshot:
    batt = readings.get("battery-status") or {}
    loc = readings.get("location") or {}
    cock = readings.get("cockpit") or {}
    # The battery's own time is the sample's; a car that gives none is stamped when we asked.
    stamp = (when(batt.get("timestamp")) or when(loc.get("lastUpdateTime")) or when(cock.get("timestamp"))
             or datetime.now(UTC))
    plug = batt.get("plugStatus")
    return Snapshot(
        maker_timestamp=stamp, soc=batt.get("batteryLevel"), range_km=batt.get("batteryAutonomy"),
        charging_state=charging_state(batt), plugged=None if plug not in (0, 1) else plug == 1,
        charging_power_kw=batt.get("chargingInstantaneousPower"), latitude=loc.get("gpsLatitude"),
        longitude=loc.get("gpsLongitude"), odometer_km=cock.get("totalMileage"), readings=dict(readings),
    )


def _utc_time(hhmm: str, lead: timedelta = timedelta(0)) -> str:
    moment = datetime(2000, 1, 1, int(hhmm[:2]), int(hhmm[2:]), tzinfo=UTC) + lead
    return f"T{moment:%H:%M}Z"


def charge_schedule_models(windows: list[dict[str, Any]], *, enabled: bool) -> list[models.ChargeSchedule]:
    """Our windows ({weekday 0-6, start 'HHMM', duration_minutes}) as Kamereon's weekly schedules: the
    n-th window of each day goes in schedule n, so several windows a day take several schedules."""
    by_day: dict[int, list[dict[str, Any]]] = {}
    for window in sorted(windows, key=lambda w: (w["weekday"], w["start"])):
        by_day.setdefault(int(window["weekday"]), []).append(window)
    count = max((len(v) for v in by_day.values()), default=0)
    if count > MAX_SCHEDULES:
        raise ProviderError(f"Renault keeps at most {MAX_SCHEDULES} charging windows a day, not {count}",
                            permanent=True, kind="server")
    schedules = []
    for number in range(max(count, 1)):
        days = {}
        for weekday, day_windows in by_day.items():
            if number < len(day_windows):
                w = day_windows[number]
                days[DAYS[weekday]] = models.ChargeDaySchedule(
                    raw_data={}, startTime=_utc_time(w["start"]), duration=int(w["duration_minutes"]))
        schedules.append(models.ChargeSchedule(
            raw_data={}, id=number + 1, activated=enabled and bool(days),
            **{day: days.get(day) for day in DAYS}))
    return schedules


def hvac_schedule_model(start: str, weekdays: list[int], *, enabled: bool,
                        now: datetime | None = None) -> models.HvacSchedule:
    """A precondition at `start` on `weekdays` (none: once, the next time that time comes round)."""
    if enabled and not weekdays:
        now = now or datetime.now(UTC)
        weekdays = [now.weekday() if f"{now:%H%M}" < start else (now.weekday() + 1) % 7]
    ready = _utc_time(start, HVAC_LEAD)
    days = {DAYS[d]: models.HvacDaySchedule(raw_data={}, readyAtTime=ready) for d in weekdays} if enabled else {}
    return models.HvacSchedule(raw_data={}, id=1, activated=enabled, **{day: days.get(day) for day in DAYS})


# --- errors -----------------------------------------------------------------------------------------------

def provider_error(exc: BaseException, capability: str = "") -> ProviderError:
    """Every renault-api, aiohttp and parsing error as our one error type."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, EndpointNotAvailableError):
        return ProviderError(f"{capability or exc.endpoint} is not available on this model ({exc.model_code})",
                             permanent=True, kind="unsupported", capability=capability)
    if isinstance(exc, kamereon_errors.KamereonResponseException):
        return _kamereon_error(exc, capability)
    if isinstance(exc, gigya_errors.PendingTwoFactorAuthenticationException):
        return ProviderError("Renault asks this account for a one-time code sent by e-mail, which the hub cannot "
                             "take yet (two-factor login)",
                             permanent=True, kind="auth")
    if isinstance(exc, gigya_errors.GigyaResponseException):
        return _gigya_error(exc)
    if isinstance(exc, NotAuthenticatedException):
        cause = exc.__cause__
        if isinstance(cause, gigya_errors.GigyaResponseException) and cause.error_code not in _LOGIN_TOKEN_DEAD:
            return _gigya_error(cause)
        return ProviderError("Renault no longer accepts this login: the driver must link the account again",
                             permanent=True, kind="auth")
    if isinstance(exc, aiohttp.ClientResponseError):
        return _http_error(exc, capability)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return ProviderError("Renault did not answer in time", permanent=False, retry_after=RETRY, kind="timeout")
    if isinstance(exc, aiohttp.ClientError):
        return ProviderError(f"Renault could not be reached: {exc}", permanent=False, retry_after=RETRY,
                             kind="server")
    if isinstance(exc, (marshmallow.ValidationError, ValueError, KeyError, TypeError, RenaultException)):
        return ProviderError(f"Renault answered something we cannot read: {exc!r}", permanent=False,
                             retry_after=RETRY, kind="server")
    raise exc


def _gigya_error(exc: gigya_errors.GigyaResponseException) -> ProviderError:
    if exc.error_code >= 500000:
        return ProviderError(f"Renault's login service failed: {exc.error_details} ({exc.error_code})",
                             permanent=False, retry_after=RETRY, kind="server")
    return ProviderError(f"Renault refused the login: {exc.error_details} ({exc.error_code})",
                         permanent=True, kind="auth")


def _kamereon_error(exc: kamereon_errors.KamereonResponseException, capability: str) -> ProviderError:
    detail = f"{exc.error_details or ''} ({exc.error_code})".strip()
    if isinstance(exc, kamereon_errors.QuotaLimitException):
        return ProviderError(f"Renault's quota for this account is spent: {detail}", permanent=False,
                             retry_after=QUOTA_COOL_DOWN, kind="quota")
    unsupported = (kamereon_errors.NotSupportedException, kamereon_errors.ForbiddenException,
                   kamereon_errors.ResourceNotFoundException)
    # err.func.403 is both "not supported for this car" (403011) and "access denied": a car sold or unlinked.
    if isinstance(exc, unsupported) or (isinstance(exc, kamereon_errors.AccessDeniedException)
                                        and "not supported" in detail.lower()):
        return ProviderError(f"The car does not offer {capability or 'this'}: {detail}", permanent=True,
                             kind="unsupported", capability=capability)
    if isinstance(exc, kamereon_errors.AccessDeniedException):
        return ProviderError(f"Renault denies this account the car: {detail}", permanent=True, kind="gone")
    if isinstance(exc, kamereon_errors.UnauthorizedException):
        return ProviderError(f"Renault refused the access token: {detail}", permanent=False, kind="auth")
    if isinstance(exc, kamereon_errors.PrivacyModeOnException):
        return ProviderError(f"The car's privacy mode is on: {detail}", permanent=False,
                             retry_after=PRIVACY_RETRY, kind="asleep")
    if isinstance(exc, (kamereon_errors.InvalidInputException, kamereon_errors.InsufficientBatteryLevelException)):
        # Refused for this request (a date in the past, a battery below the floor): asking again won't help.
        return ProviderError(f"Renault refused the request: {detail}", permanent=True, kind="server")
    if isinstance(exc, kamereon_errors.FailedForwardException):
        return ProviderError(f"The car did not answer Renault: {detail}", permanent=False, retry_after=RETRY,
                             kind="asleep")
    return ProviderError(f"Renault failed: {detail}", permanent=False, retry_after=RETRY, kind="server")


def _http_error(exc: aiohttp.ClientResponseError, capability: str) -> ProviderError:
    header = (exc.headers or {}).get("Retry-After", "")
    retry_after = float(header) if header.strip().isdigit() else None
    if exc.status == 429:
        return ProviderError("Renault answered 429 Too Many Requests", permanent=False,
                             retry_after=retry_after or QUOTA_COOL_DOWN, kind="quota")
    if exc.status in (401, 403):
        return ProviderError(f"Renault refused the access ({exc.status})", permanent=False, kind="auth")
    if exc.status == 404:
        return ProviderError(f"Renault has no {capability or 'such resource'} for this car (404)", permanent=True,
                             kind="unsupported", capability=capability)
    return ProviderError(f"Renault answered HTTP {exc.status}", permanent=False,
                         retry_after=retry_after or RETRY, kind="server")

"""Reads of drivers' accounts, cars and their state, shaped for the endpoints (emsp) and the admin.

Every read that starts from a VIN takes the driver too: a driver never reaches another driver's car."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from vehicles import models as m
from vehicles.services import VehicleError

__all__ = [
    "StateView", "maker_accounts_of_driver", "vehicles_of_driver", "vehicle_of_driver", "vehicle_state_latest",
    "vehicle_samples", "vehicle_actions", "vehicle_reading_cached", "charging_schedule_get",
    "precondition_schedules", "notification_settings_get",
]


def maker_accounts_of_driver(*, driver) -> QuerySet[m.MakerAccount]:
    return m.MakerAccount.objects.filter(driver=driver).order_by("provider", "id")


def vehicles_of_driver(*, driver, provider: str | None = None) -> QuerySet[m.Vehicle]:
    """The driver's cars with their account and latest state (no query per car)."""
    qs = (m.Vehicle.objects.filter(account__driver=driver).select_related("account", "state")
          .order_by("account__provider", "vin"))
    return qs.filter(account__provider=provider) if provider else qs


def vehicle_of_driver(*, driver, vin: str) -> m.Vehicle:
    """The driver's car by VIN; another driver's car is not found (its existence is not told)."""
    if not isinstance(vin, str) or not vin or len(vin) > 32:
        raise VehicleError("no such vehicle", code="not_found")
    vehicle = vehicles_of_driver(driver=driver).filter(vin=vin.upper()).first()
    if vehicle is None:
        raise VehicleError("no such vehicle", code="not_found")
    return vehicle


@dataclass(frozen=True)
class StateView:
    """The latest state as a driver sees it: read from the maker, or estimated since (marked)."""

    soc: float | None
    range_km: float | None
    charging_state: str
    plugged: bool | None
    charging_power_kw: float | None
    latitude: float | None
    longitude: float | None
    odometer_km: float | None
    maker_timestamp: datetime
    fetched_at: datetime
    estimated: bool
    # How old the maker's reading is, in seconds: staleness is shown, never silent.
    age_seconds: float
    account_status: str
    quota_tokens: float | None
    cooldown_until: datetime | None


# Below this an estimate is not worth the word: the reading is as good.
ESTIMATE_AFTER_SECONDS = 60


def soc_estimate(*, soc: float | None, charging_state: str, power_kw: float | None, capacity_kwh: float | None,
                 since: datetime, now: datetime) -> float | None:
    """The state of charge now, from the last reading, the charging power and the time since; None when
    the car is not charging or the numbers to estimate from are missing."""
    if (soc is None or charging_state != m.ChargingState.CHARGING or not power_kw or power_kw <= 0
            or not capacity_kwh or capacity_kwh <= 0):
        return None
    hours = max(0.0, (now - since).total_seconds()) / 3600
    return round(min(100.0, soc + power_kw * hours / capacity_kwh * 100), 1)


def vehicle_state_latest(*, vehicle: m.Vehicle, now: datetime | None = None) -> StateView | None:
    """The car's latest state; while it charges and the reading ages, SoC estimated and marked so."""
    now = now or timezone.now()
    try:
        state = vehicle.state
    except m.VehicleState.DoesNotExist:
        return None
    soc, estimated = state.soc, state.estimated
    if (now - state.maker_timestamp).total_seconds() >= ESTIMATE_AFTER_SECONDS:
        guess = soc_estimate(soc=state.soc, charging_state=state.charging_state, power_kw=state.charging_power_kw,
                             capacity_kwh=vehicle.battery_capacity_kwh, since=state.maker_timestamp, now=now)
        if guess is not None:
            soc, estimated = guess, True
    account = vehicle.account
    return StateView(
        soc=soc, range_km=state.range_km, charging_state=state.charging_state, plugged=state.plugged,
        charging_power_kw=state.charging_power_kw, latitude=state.latitude, longitude=state.longitude,
        odometer_km=state.odometer_km, maker_timestamp=state.maker_timestamp, fetched_at=state.fetched_at,
        estimated=estimated, age_seconds=max(0.0, (now - state.maker_timestamp).total_seconds()),
        account_status=account.status, quota_tokens=account.quota_tokens, cooldown_until=account.cooldown_until,
    )


def vehicle_samples(*, vehicle: m.Vehicle, since: datetime | None = None,
                    until: datetime | None = None) -> QuerySet[m.VehicleSample]:
    """History, newest first; `until` exclusive."""
    qs = m.VehicleSample.objects.filter(vehicle=vehicle).order_by("-maker_timestamp")
    if since:
        qs = qs.filter(maker_timestamp__gte=since)
    if until:
        qs = qs.filter(maker_timestamp__lt=until)
    return qs


def vehicle_actions(*, vehicle: m.Vehicle, action_id: str | None = None) -> QuerySet[m.RemoteAction]:
    """The car's actions in the order they were asked (the notifications list); one by its notificationId."""
    qs = m.RemoteAction.objects.filter(vehicle=vehicle).order_by("requested_at")
    if action_id is not None:
        import uuid

        try:
            qs = qs.filter(pk=uuid.UUID(str(action_id)))
        except ValueError:
            return qs.none()
    return qs


def vehicle_reading_cached(*, vehicle: m.Vehicle, reading: str) -> dict | None:
    """The latest answer of a reading that the sync stored: {"data": {...}, "fetched_at": "...Z"} or None."""
    state = m.VehicleState.objects.filter(vehicle=vehicle).only("readings").first()
    return (state.readings or {}).get(reading) if state else None


def charging_schedule_get(*, vehicle: m.Vehicle) -> m.ChargingSchedule | None:
    return (m.ChargingSchedule.objects.filter(vehicle=vehicle)
            .prefetch_related(Prefetch("windows", queryset=m.ChargingWindow.objects.order_by("weekday", "start")))
            .first())


def precondition_schedules(*, vehicle: m.Vehicle, active_only: bool = False) -> QuerySet[m.PreconditionSchedule]:
    qs = m.PreconditionSchedule.objects.filter(vehicle=vehicle).order_by("-created_at")
    return qs.filter(cancelled_at__isnull=True, enabled=True) if active_only else qs


def notification_settings_get(*, vehicle: m.Vehicle) -> m.NotificationSettings:
    """The car's settings; defaults (all NONE, no quiet time), unsaved, when never written."""
    return m.NotificationSettings.objects.filter(vehicle=vehicle).first() or m.NotificationSettings(vehicle=vehicle)

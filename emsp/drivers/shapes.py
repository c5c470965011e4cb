"""The contract's shapes of a car, drawn from the hub's rows: the linked-device record (seed 000), the
Kamereon readings and notifications (seed 001) and the ZE Services answers (seed 002). Pure functions:
no query beyond the relations the selectors already loaded.
"""

from __future__ import annotations

from datetime import datetime, timezone as dt_timezone

from django.utils import timezone

from vehicles import models as m
from vehicles import selectors


def iso(value: datetime | None) -> str | None:
    return value.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def epoch_ms(value: datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value else None


def _number(value: float | None):
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(value, 1)


# --- freshness and quota: never silent -------------------------------------------------------------------

def account_status(account: m.MakerAccount, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    cooling = bool(account.cooldown_until and account.cooldown_until > now)
    return {
        "id": account.pk, "provider": account.provider, "label": account.label, "status": account.status,
        "needs_relogin": account.status == m.AccountStatus.NEEDS_RELOGIN,
        "relogin_hint": _relogin_hint(account) if account.status == m.AccountStatus.NEEDS_RELOGIN else None,
        "last_error": account.last_error or None, "last_error_at": iso(account.last_error_at),
        "quota": {"tokens_left": account.quota_tokens, "refills_at": iso(account.quota_refill_at),
                  "cooling_down": cooling, "cooldown_until": iso(account.cooldown_until) if cooling else None},
        "access_expires_at": iso(account.access_expires_at), "refresh_expires_at": iso(account.refresh_expires_at),
    }


def _relogin_hint(account: m.MakerAccount) -> str:
    if account.provider == m.Provider.BMW:
        return ("BMW refused the stored tokens: link the account again with POST /api/bmw/oauth-token "
                "{\"client_id\"}; the cars keep their history and are polled again once linked.")
    return (f"{account.get_provider_display()} refused the stored tokens: log in again with POST /api/accounts "
            f"{{\"provider\": \"{account.provider}\", \"username\", \"password\"}} to resume syncing; until then "
            f"the cars' data is as old as `fetched_at` says.")


def freshness(vehicle: m.Vehicle, view: selectors.StateView | None, now: datetime | None = None) -> dict:
    """How old what we know of the car is, and why it may not be newer."""
    now = now or timezone.now()
    return {
        "maker_timestamp": iso(view.maker_timestamp) if view else None,
        "fetched_at": iso(view.fetched_at) if view else None,
        "age_seconds": int(view.age_seconds) if view else None,
        "estimated": view.estimated if view else False,
        "last_success_at": iso(vehicle.last_success_at),
        "next_poll_at": iso(vehicle.next_poll_at),
        "poll_status": vehicle.poll_status,
        "last_error": vehicle.last_error or None,
        "unsupported": vehicle.unsupported or {},
        "account": account_status(vehicle.account, now),
    }


# --- seed 000: the linked-device record -----------------------------------------------------------------

def device(vehicle: m.Vehicle, view: selectors.StateView | None) -> dict:
    soc = view.soc if view else None
    return {
        "_id": str(vehicle.pk),
        "electric_range": {"distance": {"value": _number(view.range_km) if view else None, "units": "KILOMETERS"}},
        "device_type": vehicle.account.provider,
        "user_id": str(vehicle.account.driver_id),
        "device_id": vehicle.vin,
        "id": vehicle.maker_id,
        "model": vehicle.model,
        "year": vehicle.year,
        "brand": vehicle.brand,
        "charging_state": {
            "charge_percentage": None if soc is None else str(int(round(soc))),
            "state": view.charging_state if view else m.ChargingState.UNKNOWN,
            "type": "CONDUCTIVE",
            "is_charger_connected": bool(view and view.plugged),
        },
        "__v": 0,
        "capabilities": list(vehicle.capabilities or []),
        "sync": freshness(vehicle, view),
    }


# --- seed 001: Kamereon readings and notifications ---------------------------------------------------------

# Kamereon's chargingStatus: 1.0 charging, 0.2 ended, 0.0 not charging, -1.0 error, -1.1 not available.
CHARGING_STATUS = {m.ChargingState.CHARGING: 1.0, m.ChargingState.COMPLETE: 0.2,
                   m.ChargingState.NOT_CHARGING: 0.0, m.ChargingState.ERROR: -1.0, m.ChargingState.UNKNOWN: -1.1}


def kamereon(vehicle: m.Vehicle, view: selectors.StateView | None, attributes: dict, fetched_at: str | None) -> dict:
    """Kamereon's JSON:API envelope, with the hub's freshness of the reading in `meta`."""
    meta = freshness(vehicle, view)
    meta["reading_fetched_at"] = fetched_at
    return {"data": {"type": "Car", "id": vehicle.vin, "attributes": attributes}, "meta": meta}


def battery_status(view: selectors.StateView) -> dict:
    return {
        "timestamp": iso(view.maker_timestamp), "batteryLevel": _number(view.soc),
        "batteryAutonomy": _number(view.range_km), "plugStatus": 1 if view.plugged else 0,
        "chargingStatus": CHARGING_STATUS.get(view.charging_state, -1.1),
        "chargingInstantaneousPower": view.charging_power_kw, "estimated": view.estimated,
    }


def cockpit(view: selectors.StateView) -> dict:
    return {"totalMileage": view.odometer_km, "timestamp": iso(view.maker_timestamp)}


def location(view: selectors.StateView) -> dict:
    return {"gpsLatitude": view.latitude, "gpsLongitude": view.longitude, "lastUpdateTime": iso(view.maker_timestamp)}


def notification_settings(row: m.NotificationSettings) -> dict:
    """The ZE Services' shape (the Kamereon reading serves it as attributes)."""
    body = {key: getattr(row, key) for key in m.NotificationSettings.KEYS}
    body["do_not_disturb"] = ({"start": row.do_not_disturb_start, "end": row.do_not_disturb_end}
                              if row.do_not_disturb_start else None)
    return body


def action_status(action: m.RemoteAction, now: datetime | None = None) -> str:
    """Its status; past its deadline a PENDING action is a TIMEOUT even before the sweeper marks it."""
    now = now or timezone.now()
    if action.status == m.ActionStatus.PENDING and action.deadline_at and action.deadline_at <= now:
        return m.ActionStatus.TIMEOUT
    return action.status


def _notification(action: m.RemoteAction, user_id: str, status: str, at: datetime) -> dict:
    return {
        "notificationId": str(action.pk), "notifDate": at.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "vin": action.vehicle.vin, "personId": user_id, "kmrUserId": user_id, "actionType": "COMMAND_RESPONSE",
        "commandResponse": {"status": status, **({"error": action.error} if action.error else {})},
        "commandType": action.action.upper().replace("-", "_"),
    }


def notifications(actions, user_id: str, now: datetime | None = None) -> list[dict]:
    """Each action as Kamereon told it: PENDING when asked, then how it ended, in order."""
    now = now or timezone.now()
    out = []
    for action in actions:
        out.append(_notification(action, user_id, m.ActionStatus.PENDING, action.requested_at))
        status = action_status(action, now)
        if status != m.ActionStatus.PENDING:
            out.append(_notification(action, user_id, status, action.finished_at or action.deadline_at))
    return out

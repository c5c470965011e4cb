"""The one interface every car maker is reached through, and its one error type.

Contract for provider authors (renault, bmw, simulator):

- Subclass `Provider`, set `name` (a `vehicles.models.Provider` value) and `queue`, and add the class to
  `REGISTRY` below as "module:Class" (imported lazily: a worker that never meets a maker never imports its
  package). Get instances with `provider_get(name)`; use them as `async with provider:` so that an
  HTTP session opened in `__aenter__` is closed in `__aexit__`. One instance serves many accounts and cars
  concurrently within one event loop: keep per-account state in the `AccountContext`, never on `self`.
- Every method is a coroutine, takes an `AccountContext` and returns plain data (the dataclasses here, or
  dicts in the contract's reading shapes). Never touch the ORM: the sync engine does, outside the loop.
- Before EVERY request to the maker, `await ctx.spend()`: it draws one token from the account's (and the
  maker's) bucket and raises `ProviderError(kind="quota")` when none is left, so no poll, refresh or
  action can exceed a quota. Login and refresh draw too.
- `ctx.tokens` are the account's current tokens; after an access token is rejected raise
  `ProviderError(kind="auth", permanent=False)`: the engine refreshes (one refresh at a time per account)
  and calls again. A rejected refresh or login token is `kind="auth", permanent=True`: the account is
  marked NEEDS_RELOGIN and not retried.
- Errors: raise only `ProviderError` (wrap the library's). `permanent` says whether trying again can
  help; `retry_after` (seconds) is the maker's Retry-After or our own estimate; `kind` is one of KINDS:
    quota        the maker's rate or quota limit (429, err.func.wired.overloaded): the whole account cools down
    auth         token rejected (permanent=False: refresh it; permanent=True: the driver must log in again)
    unsupported  the car or account lacks this reading or action (permanent; `capability` names it)
    asleep       the car did not wake up or answer in time (retryable)
    timeout      the maker did not answer in time (retryable)
    server       5xx and other failures of the maker (retryable)
    gone         the account or the car no longer exists at the maker (permanent)
- Readings, by the contract's names (READINGS): `read` returns the reading's `attributes` in Kamereon's
  names, whatever the maker (the endpoint serves `{"data": {"type": "Car", "id": VIN, "attributes": ...}}`):
    battery-status  timestamp, batteryLevel, batteryAutonomy (km), plugStatus (0|1), chargingStatus
                    (1.0 charging, 0.0 not, -1.0 error), chargingInstantaneousPower (kW), chargingRemainingTime (min)
    cockpit         totalMileage (km)
    location        gpsLatitude, gpsLongitude, lastUpdateTime
    hvac-status     hvacStatus ("on"|"off"), externalTemperature, socThreshold
    lock-status     lockStatus ("locked"|"unlocked"), lastUpdateTime
    charge-mode     chargeMode ("always"|"schedule_mode")
    charge-history  charges: [{chargeStartDate, chargeEndDate, chargeDuration, chargeStartBatteryLevel,
                    chargeEndBatteryLevel, chargePower, chargeEndStatus}], newest first
    hvac-history    hvacSessions: [{hvacSessionRequestDate, hvacSessionStartDate, hvacSessionEndStatus}]
    notification-settings  the maker's own keys (often empty)
  A key the maker does not give is left out, never invented. `snapshot` returns the state the sync engine
  stores, using as few maker calls as the maker allows (one battery call, plus location and cockpit when
  supported); timestamps are aware UTC datetimes in dataclasses, ISO 8601 "...Z" strings in dicts.
- Actions (ACTIONS): `act` returns an `ActionResult`: COMPLETED when the maker confirms at once, else
  PENDING, with the maker's job id when it gives one. `action_status` is then asked until the action
  ends; a maker without job ids confirms by re-reading state (Renault).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable

READINGS = (
    "cockpit", "battery-status", "location", "hvac-status", "lock-status", "charge-mode",
    "charge-history", "hvac-history", "notification-settings",
)
ACTIONS = (
    "refresh-battery-status", "refresh-hvac-status", "refresh-location", "refresh-lock-status",
    "charging-start", "hvac-start", "lock-unlock", "horn-lights",
    # Behind the ZE Services calls: a charging schedule sent to the car, a precondition at a time of day
    # and its cancellation.
    "charge-schedule", "hvac-schedule", "hvac-schedule-cancel",
)
KINDS = ("quota", "auth", "unsupported", "asleep", "timeout", "server", "gone")


class ProviderError(Exception):
    """Anything a maker's cloud answered other than what was asked for."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None, kind: str,
                 capability: str = ""):
        if kind not in KINDS:
            raise ValueError(f"unknown ProviderError kind {kind!r}; one of {', '.join(KINDS)}")
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.kind = kind
        self.capability = capability

    def __repr__(self) -> str:
        return (f"ProviderError({self.message!r}, kind={self.kind!r}, permanent={self.permanent}, "
                f"retry_after={self.retry_after})")


@dataclass
class Tokens:
    """What a login gives; stored encrypted as a whole (`extra` holds other secrets: id_token, gigya login token)."""

    access_token: str = ""
    refresh_token: str = ""
    expires_at: datetime | None = None  # of the access token (aware, UTC)
    refresh_expires_at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class LoginResult:
    tokens: Tokens
    external_id: str  # the maker's id of the account (Kamereon accountId, CarData gcid)
    label: str = ""  # what the driver knows the account by (login e-mail)
    options: dict[str, Any] = field(default_factory=dict)  # not secret: country, client_id...


@dataclass
class DiscoveredVehicle:
    vin: str
    maker_id: str = ""  # defaults to the VIN
    brand: str = ""
    model: str = ""
    year: int | None = None
    battery_capacity_kwh: float | None = None
    capabilities: list[str] = field(default_factory=list)  # names from READINGS and ACTIONS
    hvac_min_soc: float | None = None  # preconditioning refused below this state of charge (%)


@dataclass
class Snapshot:
    """The state of a car as the maker last knew it; `maker_timestamp` is the maker's, aware UTC."""

    maker_timestamp: datetime
    soc: float | None = None
    range_km: float | None = None
    charging_state: str = "UNKNOWN"  # a vehicles.models.ChargingState value
    plugged: bool | None = None
    charging_power_kw: float | None = None
    latitude: float | None = None
    longitude: float | None = None
    odometer_km: float | None = None
    # Other readings fetched on the way ({"hvac-status": {...}}), kept as the latest of each.
    readings: dict[str, dict] = field(default_factory=dict)


@dataclass
class VehicleRef:
    vin: str
    maker_id: str
    capabilities: list[str] = field(default_factory=list)


@dataclass
class ActionResult:
    status: str  # "PENDING" | "COMPLETED" | "FAILED" (vehicles.models.ActionStatus)
    external_id: str = ""
    error: str = ""


async def _no_spend(n: int = 1) -> None:
    return None


@dataclass
class AccountContext:
    """One maker account as a provider sees it: ids, options (not secret), tokens and the quota to draw from."""

    account_id: int | None
    external_id: str
    tokens: Tokens
    options: dict[str, Any] = field(default_factory=dict)
    spend: Callable[..., Awaitable[None]] = _no_spend


class Provider:
    name: str = ""
    # Celery queue its syncs run on, so that one maker's slowness never holds another's cars.
    queue: str = ""
    # How many of this maker's calls one worker process keeps in flight, and how many of one account's:
    # one at a time per account, so that the maker's first quota error stops the account's next call.
    concurrency: int = 50
    account_concurrency: int = 1
    # Default quotas (overridable in settings.VEHICLES_QUOTAS): per account and per maker, as
    # (capacity, refill per second). None: unlimited.
    account_quota: tuple[float, float] | None = None
    maker_quota: tuple[float, float] | None = None
    # How often a car is polled while it charges, and otherwise (jittered by the engine); the engine
    # backs off from these after errors and never polls faster than the quotas allow.
    poll_charging_seconds: float = 300
    poll_idle_seconds: float = 1800

    async def __aenter__(self) -> "Provider":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        return None

    async def login(self, ctx: AccountContext, credentials: dict[str, Any]) -> LoginResult:
        raise ProviderError(f"{self.name}: login is not supported", permanent=True, kind="unsupported")

    async def refresh(self, ctx: AccountContext) -> Tokens:
        raise ProviderError(f"{self.name}: token refresh is not supported", permanent=True, kind="auth")

    async def discover(self, ctx: AccountContext) -> list[DiscoveredVehicle]:
        raise NotImplementedError

    async def snapshot(self, ctx: AccountContext, vehicle: VehicleRef) -> Snapshot:
        raise NotImplementedError

    async def read(self, ctx: AccountContext, vehicle: VehicleRef, reading: str) -> dict:
        raise ProviderError(f"{self.name}: {reading} is not available", permanent=True, kind="unsupported",
                            capability=reading)

    async def act(self, ctx: AccountContext, vehicle: VehicleRef, action: str, params: dict) -> ActionResult:
        raise ProviderError(f"{self.name}: {action} is not available", permanent=True, kind="unsupported",
                            capability=action)

    async def action_status(self, ctx: AccountContext, vehicle: VehicleRef, action: str,
                            external_id: str) -> ActionResult:
        return ActionResult(status="COMPLETED")


REGISTRY: dict[str, str] = {
    "simulator": "vehicles.providers.simulator:SimulatorProvider",
    "renault": "vehicles.providers.renault:RenaultProvider",
    "bmw": "vehicles.providers.bmw:BmwProvider",
}


def provider_class(name: str) -> type[Provider]:
    try:
        module, cls = REGISTRY[name].split(":")
    except KeyError:
        raise ProviderError(f"no provider {name!r}", permanent=True, kind="unsupported") from None
    return getattr(importlib.import_module(module), cls)


def provider_get(name: str, **kwargs) -> Provider:
    """A new provider instance (use it as `async with`)."""
    return provider_class(name)(**kwargs)


# The brief's name for it: providers by name.
registry = REGISTRY

"""Renault and Dacia cars through Kamereon, on the `renault-api` package.

Gigya's password login gives a long-lived login token: that token is what we keep (`Tokens.extra`), never
the password. Every Kamereon call carries a 15-minute Gigya JWT (`Tokens.access_token`), minted again from
the login token by `refresh`. Kamereon's actions return no job id: they are confirmed by reading again.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt as pyjwt
from renault_api import gigya
from renault_api.const import AVAILABLE_LOCALES
from renault_api.credential import Credential, JWTCredential
from renault_api.exceptions import EndpointNotAvailableError
from renault_api.kamereon import exceptions as kamereon_errors
from renault_api.kamereon import models, schemas
from renault_api.renault_session import RenaultSession
from renault_api.renault_vehicle import RenaultVehicle

from vehicles.providers import renault_parse as parse
from vehicles.providers.base import (AccountContext, ActionResult, DiscoveredVehicle, LoginResult, Provider,
                                     ProviderError, Snapshot, Tokens, VehicleRef)
from vehicles.providers.renault_parse import provider_error

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)
CAR_ACCOUNT_TYPES = {"MYRENAULT", "MYDACIA", "MYALPINE"}

# Each contract reading or action -> the renault-api endpoints that can serve it (any one suffices).
READING_ENDPOINTS = {
    "battery-status": ("battery-status",),
    "cockpit": ("cockpit",),
    "location": ("location",),
    "hvac-status": ("hvac-status",),
    "lock-status": ("lock-status",),
    "charge-mode": ("charge-mode", "charge-schedule", "charging-settings", "soc-levels"),
    "charge-history": ("charges", "charge-history"),
    "hvac-history": ("hvac-sessions", "hvac-history"),
    "notification-settings": ("notification-settings",),
}
ACTION_ENDPOINTS = {
    "charging-start": ("actions/charge-start",),
    "hvac-start": ("actions/hvac-start",),
    "horn-lights": ("actions/lights-start", "actions/horn-start"),
    "refresh-location": ("actions/refresh-location",),
    "charge-schedule": ("actions/charge-set-schedule",),
    "hvac-schedule": ("actions/hvac-set-schedule",),
    "hvac-schedule-cancel": ("actions/hvac-set-schedule",),
    # Kamereon has these refreshes (seed 001) but renault-api has no endpoint for them: offered where the
    # reading they refresh is, on the car adapter every such car has.
    "refresh-battery-status": ("battery-status",),
    "refresh-hvac-status": ("hvac-status",),
    "refresh-lock-status": ("lock-status",),
}
UNSUPPORTED_ACTIONS = {
    "lock-unlock": "Renault lets no third party lock or unlock a car: Kamereon wants an SRP exchange "
                   "with the MyRenault app's own secret for it",
}
_REFRESH_TYPES = {"refresh-battery-status": "RefreshBatteryStatus", "refresh-hvac-status": "RefreshHvacStatus",
                  "refresh-lock-status": "RefreshLockStatus"}
# The floor below which the car refuses to precondition, where the model is known for it (seed 002: ZOE).
HVAC_MIN_SOC = {"X101VE": 45.0}

# Which account's quota the HTTP request being made draws from: set by each provider call, read by the
# aiohttp trace hook, so every request renault-api makes is counted, including its Gigya calls.
_spend: contextvars.ContextVar[Callable[..., Awaitable[None]] | None] = contextvars.ContextVar(
    "renault_spend", default=None)


async def _spend_before_request(session, trace_ctx, params) -> None:
    spend = _spend.get()
    if spend is not None:
        await spend()


# --- ids and tokens -----------------------------------------------------------------------------------------

def maker_id(account_id: str, vin: str, model_code: str | None) -> str:
    """Kamereon's account and the model code travel in the car's id: each later call needs the account, and
    the model picks the endpoints, which would otherwise cost a details call per car and process."""
    return f"{account_id}:{vin}:{model_code or ''}"


def maker_id_parts(vehicle: VehicleRef, ctx: AccountContext) -> tuple[str, str | None]:
    parts = vehicle.maker_id.split(":")
    if len(parts) == 3:
        return parts[0], parts[2] or None
    return ctx.external_id, None


def _tokens(session: RenaultSession, previous: Tokens | None = None) -> Tokens:
    store = session._credentials  # renault-api keeps the JWT and person id only there
    jwt_credential = store.get(gigya.GIGYA_JWT)
    extra = dict(previous.extra) if previous else {}
    extra["gigya_login_token"] = session.login_token or extra.get("gigya_login_token", "")
    extra["gigya_person_id"] = store.get_value(gigya.GIGYA_PERSON_ID) or extra.get("gigya_person_id", "")
    extra.update(session.device_ids)
    expires = None
    if isinstance(jwt_credential, JWTCredential):
        expires = datetime.fromtimestamp(jwt_credential.expiry, tz=UTC)
    return Tokens(access_token=jwt_credential.value if jwt_credential else "", expires_at=expires,
                  refresh_token="", extra=extra)


# --- the provider -------------------------------------------------------------------------------------------

class RenaultProvider(Provider):
    name = "renault"
    queue = "vehicles.renault"
    concurrency = 50
    # Kamereon publishes no quota, only err.func.wired.overloaded once it is spent. Our estimate, kept
    # modest: a burst of 60 calls, refilled at one a minute; the cool-down after the error does the rest.
    account_quota = (60.0, 1 / 60)

    def __init__(self, *, locale: str = "fr_FR", locale_details: dict[str, str] | None = None,
                 timeout: aiohttp.ClientTimeout = REQUEST_TIMEOUT) -> None:
        # Without `locale_details`, Gigya's and Kamereon's addresses and keys are renault-api's own table for
        # the locale, so Renault's locale server is never asked.
        from django.conf import settings

        self.locale = locale
        # Settings may name other servers for every account (a test's loopback server, a proxy).
        locale_details = locale_details or getattr(settings, "VEHICLES_RENAULT_LOCALE_DETAILS", None)
        self.locale_details = dict(locale_details) if locale_details else None
        self.timeout = timeout
        self._websession: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RenaultProvider:
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(_spend_before_request)
        # No cookie jar: one session serves many accounts, and Gigya's cookies are one account's.
        self._websession = aiohttp.ClientSession(timeout=self.timeout, trace_configs=[trace],
                                                 cookie_jar=aiohttp.DummyCookieJar())
        return self

    async def aclose(self) -> None:
        if self._websession is not None:
            await self._websession.close()
            self._websession = None

    def _session(self, ctx: AccountContext) -> RenaultSession:
        if self._websession is None:
            raise RuntimeError("use the provider as `async with provider:`")
        locale = ctx.options.get("locale") or self.locale
        # The account's locale picks Renault's servers (Europe, Americas, Oceania).
        details = self.locale_details or AVAILABLE_LOCALES.get(locale) or AVAILABLE_LOCALES["fr_FR"]
        session = RenaultSession(websession=self._websession, locale=locale,
                                 country=ctx.options.get("country") or locale[-2:], locale_details=dict(details))
        extra = ctx.tokens.extra or {}
        if extra.get("gigya_login_token"):
            session.set_login_token(extra["gigya_login_token"])
        session.set_device_ids({k: extra[k] for k in ("gmid", "ucid") if extra.get(k)})
        if extra.get("gigya_person_id"):
            session._credentials[gigya.GIGYA_PERSON_ID] = Credential(extra["gigya_person_id"])
        if ctx.tokens.access_token:
            try:  # an expired JWT is simply not restored: renault-api mints the next one
                session._credentials[gigya.GIGYA_JWT] = JWTCredential(ctx.tokens.access_token)
            except pyjwt.PyJWTError:
                pass
        return session

    async def _run(self, ctx: AccountContext, work: Callable[[RenaultSession], Awaitable[Any]],
                   capability: str = "") -> Any:
        token = _spend.set(ctx.spend)
        try:
            session = self._session(ctx)
            result = await work(session)
            # A JWT minted on the way (the stored one had expired) is kept for the next call.
            ctx.tokens = _tokens(session, ctx.tokens)
            return result
        except Exception as exc:  # noqa: BLE001 - each is mapped, or re-raised when it is not Renault's
            raise provider_error(exc, capability) from exc
        finally:
            _spend.reset(token)

    async def login(self, ctx: AccountContext, credentials: dict[str, Any]) -> LoginResult:
        """Gigya login: the password serves this one call and is kept nowhere."""
        username = credentials.get("username") or credentials.get("email") or ""
        password = credentials.get("password") or ""
        if not username or not password:
            raise ProviderError("Renault needs the MyRenault e-mail and password", permanent=True, kind="auth")
        ctx.tokens = Tokens()

        async def work(session: RenaultSession) -> LoginResult:
            await session.login(username, password)
            person = await session.get_person()
            accounts = [a.accountId for a in person.accounts or []
                        if a.accountId and (a.accountType or "").upper() in CAR_ACCOUNT_TYPES]
            if not accounts:
                raise ProviderError("This Renault login has no MyRenault or MyDacia account", permanent=True,
                                    kind="gone")
            return LoginResult(tokens=_tokens(session), external_id=accounts[0], label=username,
                               options={"locale": ctx.options.get("locale") or self.locale,
                                        "country": session._credentials.get_value("country") or ""})

        return await self._run(ctx, work)

    async def refresh(self, ctx: AccountContext) -> Tokens:
        """A new JWT from the login token; a rejected login token is `auth`, permanent."""
        ctx.tokens = Tokens(extra=dict(ctx.tokens.extra or {}))

        async def work(session: RenaultSession) -> Tokens:
            await session._get_jwt()
            return _tokens(session, ctx.tokens)

        return await self._run(ctx, work)

    async def discover(self, ctx: AccountContext) -> list[DiscoveredVehicle]:
        async def work(session: RenaultSession) -> list[DiscoveredVehicle]:
            person = await session.get_person()
            found = []
            for account in person.accounts or []:
                if not account.accountId or (account.accountType or "").upper() not in CAR_ACCOUNT_TYPES:
                    continue
                response = await session.get_account_vehicles(account.accountId)
                for link in response.vehicleLinks or []:
                    if link.vin and link.vehicleDetails:
                        found.append(discovered(link.vehicleDetails, account.accountId))
            return found

        return await self._run(ctx, work)

    def _vehicle(self, session: RenaultSession, ctx: AccountContext, vehicle: VehicleRef) -> RenaultVehicle:
        account_id, model_code = maker_id_parts(vehicle, ctx)
        # Without a model code renault-api asks Kamereon for the car's details (one call) before choosing.
        return RenaultVehicle(account_id=account_id, vin=vehicle.vin, session=session,
                              vehicle_details=details_for(vehicle.vin, model_code) if model_code else None)

    def _require(self, vehicle: VehicleRef, capability: str) -> None:
        if vehicle.capabilities and capability not in vehicle.capabilities:
            raise ProviderError(f"This car does not offer {capability}", permanent=True, kind="unsupported",
                                capability=capability)

    async def read(self, ctx: AccountContext, vehicle: VehicleRef, reading: str) -> dict:
        if reading not in READING_ENDPOINTS:
            raise ProviderError(f"There is no reading {reading!r}", permanent=True, kind="unsupported",
                                capability=reading)
        self._require(vehicle, reading)

        async def work(session: RenaultSession) -> dict:
            car = self._vehicle(session, ctx, vehicle)
            return await READERS[reading](car, await car.get_details())

        return await self._run(ctx, work, reading)

    async def snapshot(self, ctx: AccountContext, vehicle: VehicleRef) -> Snapshot:
        """The battery, plus mileage and location where the car reports them, in one call each. A car
        without a battery reading (a fuel car in the same account) still gives its mileage and position."""
        async def work(session: RenaultSession) -> Snapshot:
            car = self._vehicle(session, ctx, vehicle)
            details = await car.get_details()
            readings = {}
            if details.supports_endpoint("battery-status"):
                readings["battery-status"] = await READERS["battery-status"](car, details)
            for name in ("cockpit", "location"):
                if details.supports_endpoint(name) and (not vehicle.capabilities or name in vehicle.capabilities):
                    try:
                        readings[name] = await READERS[name](car, details)
                    except kamereon_errors.KamereonResponseException as exc:
                        if provider_error(exc, name).kind != "unsupported":
                            raise  # the car lacking it is no failure of the snapshot
            if not readings:
                raise EndpointNotAvailableError("battery-status", details.get_model_code())
            return parse.snapshot(readings)

        return await self._run(ctx, work, "battery-status")

    async def act(self, ctx: AccountContext, vehicle: VehicleRef, action: str, params: dict) -> ActionResult:
        if action in UNSUPPORTED_ACTIONS:
            raise ProviderError(UNSUPPORTED_ACTIONS[action], permanent=True, kind="unsupported", capability=action)
        if action not in ACTION_ENDPOINTS:
            raise ProviderError(f"There is no action {action!r}", permanent=True, kind="unsupported",
                                capability=action)
        self._require(vehicle, action)

        async def work(session: RenaultSession) -> ActionResult:
            car = self._vehicle(session, ctx, vehicle)
            details = await car.get_details()
            if not any(details.supports_endpoint(e) for e in ACTION_ENDPOINTS[action]):
                raise EndpointNotAvailableError(ACTION_ENDPOINTS[action][0], details.get_model_code())
            sent_at = datetime.now(UTC)
            try:
                await ACTORS[action](car, params or {})
            except EndpointNotAvailableError:
                if not stopping(params):
                    raise
                # The model starts but cannot stop this remotely: no reason to take the start away.
                raise ProviderError(f"This model cannot stop {action.removesuffix('-start')} remotely",
                                    permanent=True, kind="server") from None
            # Kamereon accepted it; what the car did is seen only by reading it again (action_status), and
            # only readings newer than this moment count. A stop has nothing to wait for.
            status = "PENDING" if action in CONFIRM_BY and not stopping(params) else "COMPLETED"
            return ActionResult(status=status, external_id=f"{sent_at:%Y%m%dT%H%M%SZ}")

        return await self._run(ctx, work, action)

    async def action_status(self, ctx: AccountContext, vehicle: VehicleRef, action: str,
                            external_id: str) -> ActionResult:
        """PENDING until a reading shows the action done; the engine times it out if it never does."""
        if action not in CONFIRM_BY:
            return ActionResult(status="COMPLETED", external_id=external_id)
        reading, done = CONFIRM_BY[action]
        sent_at = datetime.strptime(external_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        state = await self.read(ctx, vehicle, reading)
        return ActionResult(status="COMPLETED" if done(state, sent_at) else "PENDING", external_id=external_id)


def details_for(vin: str, model_code: str | None) -> models.KamereonVehicleDetails:
    """The model code is all renault-api needs of the details to pick a car's endpoints."""
    return schemas.KamereonVehicleDetailsResponseSchema.load({"vin": vin, "model": {"code": model_code}})


def capabilities(details: models.KamereonVehicleDetails) -> list[str]:
    """What this model offers, from renault-api's tables of what Kamereon answers per model."""
    names = [name for name, endpoints in {**READING_ENDPOINTS, **ACTION_ENDPOINTS}.items()
             if any(details.supports_endpoint(e) for e in endpoints)]
    return sorted(names)


def discovered(details: models.KamereonVehicleDetails, account_id: str) -> DiscoveredVehicle:
    facts = parse.car_facts(details.raw_data)
    model_code = details.get_model_code()
    return DiscoveredVehicle(
        vin=details.vin or details.raw_data["vin"], maker_id=maker_id(account_id, details.vin, model_code),
        brand=(details.get_brand_label() or "").title() or "Renault", model=details.get_model_label() or "",
        year=facts["year"], battery_capacity_kwh=facts["battery_capacity_kwh"],
        capabilities=capabilities(details), hvac_min_soc=HVAC_MIN_SOC.get(model_code or ""),
    )


# --- readers, actors, and how an action is seen done -------------------------------------------------------

def _supports(details: models.KamereonVehicleDetails, endpoint: str) -> bool:
    return details.supports_endpoint(endpoint)


async def _battery(car: RenaultVehicle, details) -> dict:
    return parse.battery(await car.get_battery_status(), power_in_watts=details.reports_charging_power_in_watts())


async def _charge_mode(car: RenaultVehicle, details) -> dict:
    """The charge mode, with the schedules and the target state of charge where the model has them."""
    mode = settings = schedule = soc_levels = None
    if _supports(details, "charge-mode"):
        mode = (await car.get_charge_mode()).raw_data
    if _supports(details, "charge-schedule"):
        schedule = await car.get_charge_schedule()
    elif _supports(details, "charging-settings"):
        settings = (await car.get_charging_settings()).raw_data
    if _supports(details, "soc-levels"):
        soc_levels = (await car.get_battery_soc()).raw_data
    return parse.charge_mode(mode=mode, settings=settings, schedule=schedule, soc_levels=soc_levels)


def _window() -> tuple[datetime, datetime]:
    end = datetime.now(UTC)
    return end - timedelta(days=30), end


async def _charge_history(car: RenaultVehicle, details) -> dict:
    start, end = _window()
    out: dict = {}
    if _supports(details, "charges"):
        out["charges"] = parse.charges((await car.get_charges(start, end)).raw_data)
    if _supports(details, "charge-history"):
        out["chargeSummaries"] = (await car.get_charge_history(start, end, "month")).raw_data.get(
            "chargeSummaries") or []
    return out


async def _hvac_history(car: RenaultVehicle, details) -> dict:
    start, end = _window()
    raw: dict = {}
    if _supports(details, "hvac-history"):
        raw.update((await car.get_hvac_history(start, end, "month")).raw_data)
    if _supports(details, "hvac-sessions"):
        raw.update((await car.get_hvac_sessions(start, end)).raw_data)
    return parse.hvac_history(raw)


READERS: dict[str, Callable[..., Awaitable[dict]]] = {
    "battery-status": _battery,
    "cockpit": lambda car, d: _then(car.get_cockpit(), parse.cockpit),
    "location": lambda car, d: _then(car.get_location(), parse.location),
    "hvac-status": lambda car, d: _then(car.get_hvac_status(), parse.hvac_status),
    "lock-status": lambda car, d: _then(car.get_lock_status(), parse.lock_status),
    "charge-mode": _charge_mode,
    "charge-history": _charge_history,
    "hvac-history": _hvac_history,
    "notification-settings": lambda car, d: _then(car.get_notification_settings(), lambda x: dict(x.raw_data)),
}


async def _then(awaitable: Awaitable[Any], then: Callable[[Any], Any]) -> Any:
    return then(await awaitable)


async def _refresh(car: RenaultVehicle, action: str) -> dict:
    endpoint = f"/commerce/v1/accounts/{{account_id}}/kamereon/kca/car-adapter/v1/cars/{{vin}}/actions/{action}"
    return (await car.http_post(endpoint, {"data": {"type": _REFRESH_TYPES[action]}})).raw_data


def stopping(params: dict) -> bool:
    """Kamereon stops charging and preconditioning through the start actions ({"action": "stop"|"cancel"})."""
    return (params or {}).get("action") in ("stop", "cancel")


def _start_at(params: dict) -> datetime | None:
    return parse.when(params.get("startDateTime") or params.get("when"))


async def _hvac_start(car: RenaultVehicle, params: dict) -> dict:
    if stopping(params):
        return (await car.set_ac_stop()).raw_data
    temperature = params.get("targetTemperature", params.get("temperature", 21.0))
    return (await car.set_ac_start(float(temperature), _start_at(params))).raw_data


async def _charging_start(car: RenaultVehicle, params: dict) -> dict:
    if stopping(params):
        return (await car.set_charge_stop()).raw_data
    return (await car.set_charge_start(_start_at(params))).raw_data


async def _horn_lights(car: RenaultVehicle, params: dict) -> dict:
    return await (car.start_horn() if params.get("target") == "horn" else car.start_lights())


async def _charge_schedule(car: RenaultVehicle, params: dict) -> dict:
    schedules = parse.charge_schedule_models(params.get("windows") or [], enabled=bool(params.get("enabled", True)))
    return (await car.set_charge_schedules(schedules)).raw_data


async def _hvac_schedule(car: RenaultVehicle, params: dict, *, enabled: bool = True) -> dict:
    schedule = parse.hvac_schedule_model(params.get("start") or "0000", params.get("weekdays") or [],
                                         enabled=enabled)
    return (await car.set_hvac_schedules([schedule])).raw_data


ACTORS: dict[str, Callable[[RenaultVehicle, dict], Awaitable[dict]]] = {
    "charging-start": _charging_start,
    "hvac-start": _hvac_start,
    "horn-lights": _horn_lights,
    "refresh-location": lambda car, p: car.refresh_location(),
    "charge-schedule": _charge_schedule,
    "hvac-schedule": _hvac_schedule,
    "hvac-schedule-cancel": lambda car, p: _hvac_schedule(car, p, enabled=False),
    **{name: (lambda car, p, name=name: _refresh(car, name)) for name in _REFRESH_TYPES},
}


def _newer(key: str) -> Callable[[dict, datetime], bool]:
    def done(state: dict, sent_at: datetime) -> bool:
        when = state.get(key)
        return bool(when) and datetime.fromisoformat(when.replace("Z", "+00:00")) >= sent_at
    return done


CONFIRM_BY: dict[str, tuple[str, Callable[[dict, datetime], bool]]] = {
    "charging-start": ("battery-status", lambda s, t: s.get("chargingStatus") == 1.0),
    "hvac-start": ("hvac-status", lambda s, t: s.get("hvacStatus") == "on"),
    "refresh-battery-status": ("battery-status", _newer("timestamp")),
    "refresh-location": ("location", _newer("lastUpdateTime")),
    "refresh-hvac-status": ("hvac-status", _newer("lastUpdateTime")),
    "refresh-lock-status": ("lock-status", _newer("lastUpdateTime")),
}

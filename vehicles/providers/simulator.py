"""The simulated car maker (`manage.py oem_simulator`), reached over HTTP like any maker's cloud."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp

from vehicles.providers.base import (
    ActionResult, AccountContext, DiscoveredVehicle, LoginResult, Provider, ProviderError, Snapshot, Tokens,
    VehicleRef,
)

# Where `manage.py oem_simulator` listens by default (the Procfile's port: EVHUB_SIMULATOR_PORT).
DEFAULT_URL = f"http://127.0.0.1:{os.environ.get('EVHUB_SIMULATOR_PORT') or 8765}"


def _setting(name: str, default):
    from django.conf import settings

    return getattr(settings, name, None) or os.environ.get(f"EVHUB_{name}") or default


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


class SimulatorProvider(Provider):
    name = "simulator"
    queue = "vehicles.simulator"
    concurrency = 200
    # Below the simulator's own defaults (30, 0.5 per account; 2000, 500 per maker): ours never starts
    # fuller than the cloud's.
    account_quota = (24.0, 0.4)
    maker_quota = (1600.0, 400.0)
    poll_charging_seconds = 60
    poll_idle_seconds = 300

    def __init__(self, base_url: str | None = None, timeout: float | None = None):
        self.base_url = base_url
        self.timeout = float(timeout or _setting("VEHICLES_HTTP_TIMEOUT", 10.0))
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "SimulatorProvider":
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        return self

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def _url(self, ctx: AccountContext | None, path: str) -> str:
        base = (ctx.options.get("base_url") if ctx else None) or self.base_url or _setting(
            "VEHICLES_SIMULATOR_URL", DEFAULT_URL)
        return base.rstrip("/") + path

    async def _call(self, ctx: AccountContext, method: str, path: str, *, body: dict | None = None,
                    auth: bool = True, what: str = "") -> Any:
        await ctx.spend()
        if self.session is None:
            raise RuntimeError("use the provider as `async with`")
        headers = {"Authorization": f"Bearer {ctx.tokens.access_token}"} if auth else {}
        try:
            async with self.session.request(method, self._url(ctx, path), json=body, headers=headers) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = None
                if resp.status < 400:
                    return data
                raise _error(resp.status, data, resp.headers.get("Retry-After"), what=what, auth=auth)
        except asyncio.TimeoutError:
            raise ProviderError(f"the simulator did not answer within {self.timeout:g} s", permanent=False,
                                kind="timeout") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"the simulator could not be reached: {exc}", permanent=False, kind="server") from None

    # --- the interface --------------------------------------------------------------------------------
    async def login(self, ctx: AccountContext, credentials: dict[str, Any]) -> LoginResult:
        data = await self._call(ctx, "POST", "/auth/login", auth=False, what="login",
                                body={"username": credentials.get("username", ""),
                                      "password": credentials.get("password", "")})
        return LoginResult(tokens=_tokens(data), external_id=data["account_id"],
                           label=credentials.get("username", ""), options=dict(ctx.options))

    async def refresh(self, ctx: AccountContext) -> Tokens:
        data = await self._call(ctx, "POST", "/auth/refresh", auth=False, what="refresh",
                                body={"refresh_token": ctx.tokens.refresh_token})
        return _tokens(data)

    async def discover(self, ctx: AccountContext) -> list[DiscoveredVehicle]:
        data = await self._call(ctx, "GET", f"/v1/accounts/{ctx.external_id}/vehicles")
        return [DiscoveredVehicle(vin=v["vin"], maker_id=v["id"], brand=v.get("brand", ""), model=v.get("model", ""),
                                  year=v.get("year"), battery_capacity_kwh=v.get("battery_capacity_kwh"),
                                  capabilities=list(v.get("capabilities", [])), hvac_min_soc=v.get("hvac_min_soc"))
                for v in data.get("vehicles", [])]

    async def snapshot(self, ctx: AccountContext, vehicle: VehicleRef) -> Snapshot:
        # The simulator answers the whole state in one call: one token per poll.
        s = await self._call(ctx, "GET", f"/v1/accounts/{ctx.external_id}/vehicles/{vehicle.vin}/state",
                             what="battery-status")
        charging = "CHARGING" if s.get("charging") else ("COMPLETE" if s.get("complete") else "NOT_CHARGING")
        return Snapshot(maker_timestamp=_parse_ts(s["timestamp"]), soc=s.get("batteryLevel"),
                        range_km=s.get("batteryAutonomy"), charging_state=charging, plugged=bool(s.get("plugStatus")),
                        charging_power_kw=s.get("chargingInstantaneousPower"), latitude=s.get("gpsLatitude"),
                        longitude=s.get("gpsLongitude"), odometer_km=s.get("totalMileage"))

    async def read(self, ctx: AccountContext, vehicle: VehicleRef, reading: str) -> dict:
        data = await self._call(ctx, "GET", f"/v1/accounts/{ctx.external_id}/vehicles/{vehicle.vin}/{reading}",
                                what=reading)
        return data["data"]["attributes"]

    async def act(self, ctx: AccountContext, vehicle: VehicleRef, action: str, params: dict) -> ActionResult:
        data = await self._call(ctx, "POST", f"/v1/accounts/{ctx.external_id}/vehicles/{vehicle.vin}/actions/{action}",
                                body=params or {}, what=action)
        return ActionResult(status=data.get("status", "PENDING"), external_id=data.get("job_id", ""))

    async def action_status(self, ctx: AccountContext, vehicle: VehicleRef, action: str,
                            external_id: str) -> ActionResult:
        data = await self._call(ctx, "GET", f"/v1/accounts/{ctx.external_id}/jobs/{external_id}", what=action)
        return ActionResult(status=data["status"], external_id=external_id, error=data.get("error", ""))


def _tokens(data: dict) -> Tokens:
    now = datetime.now(timezone.utc)
    return Tokens(access_token=data["access_token"], refresh_token=data.get("refresh_token", ""),
                  expires_at=now + timedelta(seconds=int(data.get("expires_in", 900))))


def _error(status: int, data, retry_after: str | None, *, what: str, auth: bool) -> ProviderError:
    errors = (data or {}).get("errors") if isinstance(data, dict) else None
    code = errors[0].get("errorCode", "") if errors else (data or {}).get("error", "") if isinstance(data, dict) else ""
    message = (errors[0].get("errorMessage") if errors else None) or f"HTTP {status}"
    try:
        wait = float(retry_after) if retry_after is not None else None
    except ValueError:
        wait = None
    if status == 429:
        return ProviderError(f"quota: {message}", permanent=False, retry_after=wait or 60.0, kind="quota")
    if status == 401 and code == "invalid_grant" or (status == 401 and what == "login"):
        return ProviderError(f"login needed: {message}", permanent=True, kind="auth")
    if status == 401:
        return ProviderError(f"access token rejected: {message}", permanent=False, kind="auth")
    if status == 400 and code.endswith("notSupported"):
        return ProviderError(message, permanent=True, kind="unsupported", capability=what)
    if status in (403, 404):
        return ProviderError(message, permanent=True, kind="gone")
    if status == 409:
        return ProviderError(message, permanent=False, retry_after=wait or 30.0, kind="asleep")
    if status == 504:
        return ProviderError(message, permanent=False, retry_after=wait, kind="timeout")
    return ProviderError(f"HTTP {status}: {message}", permanent=False, retry_after=wait, kind="server")

"""BMW and MINI cars through BMW CarData: read-only, within about 50 REST calls per account a day.

BMW closed its app API to third parties in 2025; CarData is the supported path. The driver creates a
client_id in the MyBMW portal and approves our device code there (OAuth device flow with PKCE). CarData
answers the telematic keys of a "container" we create once per account; the same keys also arrive over
MQTT (`vehicles/management/commands/bmw_stream.py`), which costs no REST call at all.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from vehicles.providers.base import (AccountContext, ActionResult, DiscoveredVehicle, LoginResult, Provider,
                                     ProviderError, Snapshot, Tokens, VehicleRef)

AUTH_URL = "https://customer.bmwgroup.com"
API_URL = "https://api-cardata.bmwgroup.com"
STREAM_HOST, STREAM_PORT = "customer.streaming-cardata.bmwgroup.com", 9000
SCOPE = "authenticate_user openid cardata:api:read cardata:streaming:read"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# RFC 8628: each slow_down adds five seconds to the interval.
SLOW_DOWN_STEP = 5
REFRESH_LIFETIME = timedelta(days=14)
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)
RETRY = 120

SOC = "vehicle.drivetrain.batteryManagement.header"
SOC_DISPLAYED = "vehicle.powertrain.electric.battery.stateOfCharge.displayed"
RANGE = "vehicle.drivetrain.electricEngine.kombiRemainingElectricRange"
CHARGING_STATUS = "vehicle.drivetrain.electricEngine.charging.status"
TIME_TO_FULL = "vehicle.drivetrain.electricEngine.charging.timeToFullyCharged"
PLUG = "vehicle.body.chargingPort.status"
MILEAGE = "vehicle.vehicle.travelledDistance"
LATITUDE = "vehicle.cabin.infotainment.navigation.currentLocation.latitude"
LONGITUDE = "vehicle.cabin.infotainment.navigation.currentLocation.longitude"
# The keys our container holds; its name carries their digest, so a changed list makes a new container.
KEYS = (SOC, SOC_DISPLAYED, RANGE, CHARGING_STATUS, TIME_TO_FULL, PLUG, MILEAGE, LATITUDE, LONGITUDE)
CONTAINER_NAME = "evhub-" + hashlib.sha256("\n".join(KEYS).encode()).hexdigest()[:8]
CAPABILITIES = ["battery-status", "cockpit", "location"]
READ_ONLY = ("BMW CarData is read-only: BMW offers third parties no remote commands (charging, climate, "
             "locks, refreshes)")

# CarData's charging status in Kamereon's chargingStatus (the provider contract's names).
_CHARGING = {"CHARGINGACTIVE": 1.0, "INITIALIZATION": 0.3, "CHARGINGPAUSED": 0.0, "NOCHARGING": 0.0,
             "CHARGINGENDED": 0.2, "FINISHED_FULLY_CHARGED": 0.2, "FINISHED_NOT_FULL": 0.2,
             "CHARGINGERROR": -1.0}
_STATE = {1.0: "CHARGING", 0.3: "NOT_CHARGING", 0.0: "NOT_CHARGING", 0.2: "COMPLETE", -1.0: "ERROR"}


@dataclass
class DeviceCode:
    """The first half of a link: what the driver is shown, and what we keep (server-side) to finish it."""

    client_id: str
    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_at: datetime
    interval: int
    code_verifier: str

    def as_dict(self) -> dict[str, Any]:
        expires_in = max(0, int((self.expires_at - datetime.now(UTC)).total_seconds()))
        return {**self.__dict__, "expires_at": self.expires_at.isoformat(), "expires_in": expires_in}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceCode:
        expires = data["expires_at"]
        interval = data.get("interval")
        return cls(**{**data, "interval": 5 if interval is None else int(interval),
                      "expires_at": datetime.fromisoformat(expires) if isinstance(expires, str) else expires})


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


# --- telematic keys -> readings in the contract's (Kamereon's) names ---------------------------------------

def _value(entry: Any) -> Any:
    value = entry.get("value") if isinstance(entry, dict) else entry
    if value in (None, "", "INVALID", "-NA-"):
        return None
    return value


def _number(entry: Any) -> float | None:
    value = _value(entry)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _time(entry: Any) -> datetime | None:
    stamp = entry.get("timestamp") if isinstance(entry, dict) else None
    if not stamp:
        return None
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _newest(data: dict[str, Any], keys: tuple[str, ...]) -> datetime | None:
    times = [t for k in keys if k in data and (t := _time(data[k])) is not None]
    return max(times) if times else None


def _whole(value: float | None) -> float | int | None:
    return int(value) if value is not None and value == int(value) else value


def readings(data: dict[str, Any]) -> dict[str, dict]:
    """CarData's {key: {value, unit, timestamp}} as the readings it holds; a key it lacks is left out."""
    out: dict[str, dict] = {}
    soc = _number(data.get(SOC))
    soc_key = SOC
    if soc is None:  # older cars give only the displayed value
        soc, soc_key = _number(data.get(SOC_DISPLAYED)), SOC_DISPLAYED
    battery: dict[str, Any] = {}
    if soc is not None:
        battery["batteryLevel"] = _whole(soc)
    if (autonomy := _number(data.get(RANGE))) is not None:
        battery["batteryAutonomy"] = _whole(autonomy)
    if (plug := _value(data.get(PLUG))) in ("CONNECTED", "DISCONNECTED"):
        battery["plugStatus"] = 1 if plug == "CONNECTED" else 0
    status = _value(data.get(CHARGING_STATUS))
    if status in _CHARGING:
        battery["chargingStatus"] = _CHARGING[status]
        if status == "CHARGINGACTIVE" and (minutes := _number(data.get(TIME_TO_FULL))) is not None:
            battery["chargingRemainingTime"] = _whole(minutes)
    if battery:
        battery["timestamp"] = _iso(_newest(data, (soc_key, RANGE, PLUG, CHARGING_STATUS, TIME_TO_FULL)))
        out["battery-status"] = {k: v for k, v in battery.items() if v is not None}
    if (mileage := _number(data.get(MILEAGE))) is not None:
        out["cockpit"] = {"totalMileage": _whole(mileage)}
        if stamp := _iso(_time(data.get(MILEAGE))):
            out["cockpit"]["timestamp"] = stamp
    lat, lon = _number(data.get(LATITUDE)), _number(data.get(LONGITUDE))
    if lat is not None and lon is not None:
        out["location"] = {"gpsLatitude": lat, "gpsLongitude": lon,
                           "lastUpdateTime": _iso(_newest(data, (LATITUDE, LONGITUDE)))}
    return out


def snapshot(data: dict[str, Any], *, received_at: datetime | None = None) -> Snapshot | None:
    """A Snapshot of what CarData said, stamped with the newest of its keys' own times; None if it said
    nothing of the battery, mileage or position."""
    found = readings(data)
    if not found:
        return None
    stamp = _newest(data, KEYS) or received_at or datetime.now(UTC)
    battery = found.get("battery-status", {})
    location = found.get("location", {})
    plug = battery.get("plugStatus")
    return Snapshot(
        maker_timestamp=stamp, soc=battery.get("batteryLevel"), range_km=battery.get("batteryAutonomy"),
        charging_state=_STATE.get(battery.get("chargingStatus"), "UNKNOWN"),
        plugged=None if plug is None else plug == 1, latitude=location.get("gpsLatitude"),
        longitude=location.get("gpsLongitude"), odometer_km=found.get("cockpit", {}).get("totalMileage"),
        readings=found,
    )


# --- errors ---------------------------------------------------------------------------------------------------

def _retry_after(headers) -> float | None:
    value = (headers or {}).get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def api_error(status: int, body: str, headers, *, vehicle_call: bool) -> ProviderError:
    try:
        detail = json.loads(body) if body else {}
    except ValueError:
        detail = {}
    detail = detail if isinstance(detail, dict) else {}
    code, message = str(detail.get("exveErrorId") or ""), detail.get("exveErrorMsg") or body[:200]
    said = f"BMW CarData answered {status} {code} {message}".strip()
    if status == 429 or "429" in code or "quota" in str(message).lower() or "rate limit" in str(message).lower():
        # About 50 calls a day: without a Retry-After, the quota refills within the day.
        return ProviderError(said, permanent=False, retry_after=_retry_after(headers) or 3600, kind="quota")
    if status == 401:
        return ProviderError(said, permanent=False, kind="auth")
    if status == 403:
        if vehicle_call:  # the car is no longer mapped to this account, or its consent was withdrawn
            return ProviderError(said, permanent=True, kind="gone")
        return ProviderError(said, permanent=True, kind="auth")
    if status == 404:
        return ProviderError(said, permanent=True, kind="gone")
    return ProviderError(said, permanent=False, retry_after=_retry_after(headers) or RETRY, kind="server")


# --- the provider -------------------------------------------------------------------------------------------

class BmwProvider(Provider):
    name = "bmw"
    queue = "vehicles.bmw"
    concurrency = 20
    # CarData allows about 50 REST calls per account per 24 h; the bucket holds a little less. OAuth calls
    # (customer.bmwgroup.com) are not REST calls of CarData and draw nothing: an hourly token refresh
    # would otherwise spend half the day's quota.
    account_quota = (45.0, 45 / 86400)
    poll_charging_seconds = 1800
    poll_idle_seconds = 3 * 3600

    def __init__(self, *, auth_url: str | None = None, api_url: str | None = None,
                 timeout: aiohttp.ClientTimeout = REQUEST_TIMEOUT) -> None:
        from django.conf import settings

        # Settings may name other servers (a test's loopback server, a proxy): {"auth_url", "api_url"}.
        urls = getattr(settings, "VEHICLES_BMW_URLS", None) or {}
        self.auth_url = (auth_url or urls.get("auth_url") or AUTH_URL).rstrip("/")
        self.api_url = (api_url or urls.get("api_url") or API_URL).rstrip("/")
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> BmwProvider:
        self._http = aiohttp.ClientSession(timeout=self.timeout, cookie_jar=aiohttp.DummyCookieJar())
        return self

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- OAuth: device code with PKCE, and refresh ---

    async def _oauth(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        try:
            async with self._http.post(f"{self.auth_url}{path}", data=form,
                                       headers={"Accept": "application/json"}) as response:
                text = await response.text()
                try:
                    body = json.loads(text) if text else {}
                except ValueError:
                    body = {}
                if response.status >= 500:
                    raise ProviderError(f"BMW's login service answered {response.status}", permanent=False,
                                        retry_after=_retry_after(response.headers) or RETRY, kind="server")
                return response.status, body if isinstance(body, dict) else {}
        except (asyncio.TimeoutError, TimeoutError):
            raise ProviderError("BMW's login service did not answer in time", permanent=False, retry_after=RETRY,
                                kind="timeout") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"BMW's login service could not be reached: {exc}", permanent=False,
                                retry_after=RETRY, kind="server") from None

    async def device_code_start(self, ctx: AccountContext | None = None, *, client_id: str,
                                scope: str = SCOPE) -> dict[str, Any]:
        """The code the driver approves in the MyBMW portal. The answer (a DeviceCode's dict, with
        `expires_in`) is kept server-side until the link is finished: it holds the PKCE verifier."""
        return (await self._device_code(client_id, scope)).as_dict()

    async def _device_code(self, client_id: str, scope: str = SCOPE) -> DeviceCode:
        if not client_id:
            raise ProviderError("BMW CarData needs the client_id created in the MyBMW portal", permanent=True,
                                kind="auth")
        verifier, challenge = pkce_pair()
        status, body = await self._oauth("/gcdm/oauth/device/code", {
            "client_id": client_id, "response_type": "device_code", "scope": scope,
            "code_challenge": challenge, "code_challenge_method": "S256"})
        if status != 200 or "device_code" not in body:
            reason = body.get("error_description") or body.get("error") or status
            raise ProviderError(f"BMW refused to start the link: {reason}", permanent=True, kind="auth")
        return DeviceCode(client_id=client_id, device_code=body["device_code"], user_code=body.get("user_code", ""),
                          verification_uri=body.get("verification_uri", ""),
                          verification_uri_complete=body.get("verification_uri_complete", ""),
                          expires_at=datetime.now(UTC) + timedelta(seconds=int(body.get("expires_in") or 300)),
                          interval=int(body.get("interval") or 5), code_verifier=verifier)

    async def _poll_once(self, code: DeviceCode) -> Tokens | None:
        """One token request: the tokens once the driver approved, None while pending (and `code.interval`
        grown by 5 s after a slow_down); a denied or expired code is `auth`, permanent."""
        status, body = await self._oauth("/gcdm/oauth/token", {
            "client_id": code.client_id, "device_code": code.device_code, "grant_type": DEVICE_GRANT,
            "code_verifier": code.code_verifier})
        if status == 200 and body.get("access_token"):
            return _tokens(body)
        error = body.get("error") or f"HTTP {status}"
        if error == "authorization_pending":
            return None
        if error == "slow_down":
            code.interval += SLOW_DOWN_STEP
            return None
        reasons = {"expired_token": "the code expired before the driver approved it: start the link again",
                   "access_denied": "the driver refused the link in the MyBMW portal"}
        reason = reasons.get(error, body.get("error_description") or error)
        raise ProviderError(f"BMW did not link the account: {reason}", permanent=True, kind="auth")

    async def device_code_poll(self, ctx: AccountContext, *, client_id: str, device_code: str,
                               code_verifier: str, interval: int | None = None, **_: Any) -> LoginResult:
        """One poll of a started link: the account once the driver approved; until then ProviderError
        (kind auth, not permanent) whose retry_after is the interval to wait (5 s more after a slow_down)."""
        code = DeviceCode(client_id=client_id, device_code=device_code, user_code="", verification_uri="",
                          verification_uri_complete="", expires_at=datetime.now(UTC), code_verifier=code_verifier,
                          interval=5 if interval is None else int(interval))
        tokens = await self._poll_once(code)
        if tokens is None:
            raise ProviderError("the driver has not approved the code yet", permanent=False,
                                retry_after=code.interval, kind="auth")
        return await self._linked(ctx, code, tokens)

    async def _linked(self, ctx: AccountContext, code: DeviceCode, tokens: Tokens) -> LoginResult:
        ctx.tokens = tokens
        ctx.options = {**ctx.options, "client_id": code.client_id}
        gcid = tokens.extra.get("gcid", "")
        options = {"client_id": code.client_id, "container_id": await self._container(ctx)}
        return LoginResult(tokens=tokens, external_id=gcid, label=gcid, options=options)

    async def login(self, ctx: AccountContext, credentials: dict[str, Any]) -> LoginResult:
        """Finish a device-code link (`credentials`: the dict of device_code_start, and optionally `wait`,
        the seconds to keep polling). E-mail and password no longer log in at BMW."""
        if "device_code" not in credentials:
            raise ProviderError("BMW no longer accepts e-mail and password from third parties: link the car "
                                "with BMW CarData (create a client_id in the MyBMW portal, then approve the "
                                "code we show)", permanent=True, kind="auth")
        code = DeviceCode.from_dict({k: v for k, v in credentials.items() if k in DeviceCode.__dataclass_fields__})
        deadline = asyncio.get_running_loop().time() + float(credentials.get("wait") or 0)
        while True:
            tokens = await self._poll_once(code)
            if tokens is not None:
                return await self._linked(ctx, code, tokens)
            now = asyncio.get_running_loop().time()
            if now + code.interval > deadline or datetime.now(UTC) >= code.expires_at:
                raise ProviderError(f"Not approved yet: the driver enters {code.user_code} at "
                                    f"{code.verification_uri}", permanent=False, retry_after=code.interval,
                                    kind="auth")
            await asyncio.sleep(code.interval)

    async def refresh(self, ctx: AccountContext) -> Tokens:
        client_id = ctx.options.get("client_id", "")
        status, body = await self._oauth("/gcdm/oauth/token", {
            "grant_type": "refresh_token", "refresh_token": ctx.tokens.refresh_token, "client_id": client_id})
        if status == 200 and body.get("access_token"):
            return _tokens(body, previous=ctx.tokens)
        # invalid_grant: the refresh token expired (two weeks) or was revoked; only the driver can relink.
        raise ProviderError(f"BMW refused the refresh token: {body.get('error') or status}", permanent=True,
                            kind="auth")

    # --- CarData REST: every call draws one from the account's bucket ---

    async def _api(self, ctx: AccountContext, method: str, path: str, *, params: dict | None = None,
                   body: dict | None = None, vehicle_call: bool = False) -> Any:
        await ctx.spend(1)
        headers = {"Authorization": f"Bearer {ctx.tokens.access_token}", "x-version": "v1",
                   "Accept": "application/json"}
        try:
            async with self._http.request(method, f"{self.api_url}{path}", params=params, json=body,
                                          headers=headers) as response:
                text = await response.text()
                if response.status >= 400:
                    raise api_error(response.status, text, response.headers, vehicle_call=vehicle_call)
                return json.loads(text) if text else None
        except (asyncio.TimeoutError, TimeoutError):
            raise ProviderError("BMW CarData did not answer in time", permanent=False, retry_after=RETRY,
                                kind="timeout") from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"BMW CarData could not be reached: {exc}", permanent=False, retry_after=RETRY,
                                kind="server") from None
        except ValueError:
            raise ProviderError("BMW CarData answered something that is not JSON", permanent=False,
                                retry_after=RETRY, kind="server") from None

    async def _container(self, ctx: AccountContext) -> str:
        """Our container of telematic keys: found by name, or created (one or two calls, once per account)."""
        listed = await self._api(ctx, "GET", "/customers/containers") or {}
        for container in listed.get("containers") or []:
            if container.get("name") == CONTAINER_NAME and container.get("state", "ACTIVE") == "ACTIVE":
                return container["containerId"]
        created = await self._api(ctx, "POST", "/customers/containers", body={
            "name": CONTAINER_NAME, "purpose": "evhub: state of charge, range, charging, mileage, position",
            "technicalDescriptors": list(KEYS)})
        return created["containerId"]

    async def discover(self, ctx: AccountContext) -> list[DiscoveredVehicle]:
        mappings = await self._api(ctx, "GET", "/customers/vehicles/mappings")
        mappings = mappings if isinstance(mappings, list) else [mappings] if mappings else []
        found = []
        # Only the primary user's mapping opens the car's telematic data to the account.
        for mapping in mappings:
            if not mapping.get("vin") or mapping.get("mappingType", "PRIMARY") != "PRIMARY":
                continue
            vin = mapping["vin"]
            basic = await self._api(ctx, "GET", f"/customers/vehicles/{vin}/basicData", vehicle_call=True) or {}
            found.append(discovered(vin, basic))
        return found

    async def telematic_data(self, ctx: AccountContext, vin: str) -> dict[str, Any]:
        had = ctx.options.get("container_id")
        container = ctx.options["container_id"] = had or await self._container(ctx)
        path = f"/customers/vehicles/{vin}/telematicData"
        try:
            answer = await self._api(ctx, "GET", path, params={"containerId": container}, vehicle_call=True)
        except ProviderError as exc:
            if exc.kind != "gone" or not had:
                raise
            # The driver may have deleted our container in the portal: make it again, once.
            container = ctx.options["container_id"] = await self._container(ctx)
            answer = await self._api(ctx, "GET", path, params={"containerId": container}, vehicle_call=True)
        return (answer or {}).get("telematicData") or {}

    async def snapshot(self, ctx: AccountContext, vehicle: VehicleRef) -> Snapshot:
        """One REST call: every key of the container at once."""
        data = await self.telematic_data(ctx, vehicle.vin)
        found = snapshot(data, received_at=datetime.now(UTC))
        if found is None:
            raise ProviderError("BMW CarData has no state of charge, mileage or position for this car yet",
                                permanent=False, retry_after=3600, kind="asleep")
        return found

    async def read(self, ctx: AccountContext, vehicle: VehicleRef, reading: str) -> dict:
        if reading not in CAPABILITIES:
            raise ProviderError(f"BMW CarData offers no {reading}", permanent=True, kind="unsupported",
                                capability=reading)
        found = readings(await self.telematic_data(ctx, vehicle.vin))
        if reading not in found:
            raise ProviderError(f"BMW CarData has no {reading} for this car yet", permanent=False,
                                retry_after=3600, kind="asleep")
        return found[reading]

    async def act(self, ctx: AccountContext, vehicle: VehicleRef, action: str, params: dict) -> ActionResult:
        raise ProviderError(f"{action}: {READ_ONLY}", permanent=True, kind="unsupported", capability=action)


def discovered(vin: str, basic: dict[str, Any]) -> DiscoveredVehicle:
    construction = str(basic.get("constructionDate") or "")
    try:
        capacity = float(basic.get("hvsMaxEnergyAbsolute")) if basic.get("hvsMaxEnergyAbsolute") else None
    except (TypeError, ValueError):
        capacity = None
    return DiscoveredVehicle(vin=vin, maker_id=vin, brand=str(basic.get("brand") or "BMW"),
                             model=str(basic.get("modelName") or basic.get("series") or ""),
                             year=int(construction[:4]) if construction[:4].isdigit() else None,
                             battery_capacity_kwh=capacity, capabilities=list(CAPABILITIES))


def _tokens(body: dict[str, Any], previous: Tokens | None = None) -> Tokens:
    now = datetime.now(UTC)
    extra = dict(previous.extra) if previous else {}
    # id_token is the MQTT password, gcid its username.
    for key in ("id_token", "gcid", "scope"):
        if body.get(key):
            extra[key] = str(body[key])
    return Tokens(access_token=body["access_token"], refresh_token=body.get("refresh_token") or
                  (previous.refresh_token if previous else ""),
                  expires_at=now + timedelta(seconds=int(body.get("expires_in") or 3600)),
                  refresh_expires_at=now + REFRESH_LIFETIME, extra=extra)

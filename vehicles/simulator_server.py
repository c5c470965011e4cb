"""A car maker's cloud of our own: simulated cars behind an HTTP API, with the maker's manners.

Cars charge when plugged (state of charge rising with the charging power and time) and lose charge when
driven; each follows its own day (parked, driving, plugged in) from a seed of its VIN. The cloud reports a
car's state on a fixed beat (`report_every`), so asking twice in a beat gives the same maker timestamp.
What real clouds do to their clients is configurable: latency, a quota per account and per maker (429 with
Retry-After), 500s, answers that never come (timeouts), access tokens that expire, refresh tokens that are
revoked, cars asleep. `vehicles.providers.simulator` is its client; `manage.py oem_simulator` serves it.

Routes (JSON): POST /auth/login, POST /auth/refresh; under /v1/accounts/{account}/ (Bearer): GET vehicles,
GET vehicles/{vin}/state, GET vehicles/{vin}/{reading}, POST vehicles/{vin}/actions/{action}, GET jobs/{id}.
Control, for tests, benchmarks and the demo (loopback only): /_sim/accounts, /_sim/fleet, /_sim/faults,
/_sim/expire, /_sim/revoke, /_sim/cars/{vin}, /_sim/stats.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import random
import secrets
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone

from aiohttp import web

READINGS = ("cockpit", "battery-status", "location", "hvac-status", "lock-status", "charge-mode",
            "charge-history", "hvac-history", "notification-settings")
ACTIONS = ("refresh-battery-status", "refresh-hvac-status", "refresh-location", "refresh-lock-status",
           "charging-start", "hvac-start", "lock-unlock", "horn-lights", "charge-schedule", "hvac-schedule",
           "hvac-schedule-cancel")
DRIVE_KW = 7.65  # 45 km/h at 0.17 kWh/km
DRIVE_KMH = 45.0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Config:
    latency: float = 0.0  # seconds before every answer
    speed: float = 1.0  # simulated seconds per real second (physics only; timestamps stay real)
    report_every: float = 30.0  # the car reports to the cloud on this beat (seconds)
    account_quota: tuple[float, float] = (30.0, 0.5)  # (capacity, refill per second), per account
    maker_quota: tuple[float, float] = (2000.0, 500.0)
    access_ttl: float = 900.0
    action_delay: float = 2.0  # seconds until a car answers an action
    timeout_sleep: float = 60.0  # how long a "timeout" fault keeps the client waiting
    fault_rates: dict = field(default_factory=dict)  # {"500": p, "429": p, "timeout": p, "asleep": p}


class Bucket:
    def __init__(self, capacity: float, per_second: float):
        self.capacity, self.per_second = capacity, per_second
        self.level, self.stamp = capacity, time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is there."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.level >= 1:
            self.level -= 1
            return 0.0
        return (1 - self.level) / self.per_second


class SimCar:
    def __init__(self, vin: str, *, brand="Renault", model="ZOE", year=2022, capacity_kwh=52.0,
                 capabilities=None, hvac_min_soc=45.0, soc=None, speed=1.0):
        self.vin, self.brand, self.model, self.year = vin, brand, model, year
        self.maker_id = hashlib.sha1(vin.encode()).hexdigest()[:24]
        self.capacity = capacity_kwh
        self.capabilities = list(capabilities if capabilities is not None else (*READINGS, *ACTIONS))
        self.hvac_min_soc = hvac_min_soc
        self.rng = random.Random(vin)
        self.speed = speed
        self.soc = soc if soc is not None else self.rng.uniform(25, 90)
        self.odometer = self.rng.uniform(1000, 60000)
        self.lat, self.lng = 48.1 + self.rng.uniform(-0.5, 0.5), 11.5 + self.rng.uniform(-0.5, 0.5)
        self.phase, self.phase_left, self.power_kw, self.target = "parked", 0.0, 0.0, 100.0
        self.plugged = False
        self.t = time.time()
        self.hvac_until, self.locked, self.charge_mode = 0.0, True, "always"
        self.schedule, self.hvac_schedule, self.notification_settings = None, None, {}
        self.charges: list[dict] = []
        self.hvac_sessions: list[dict] = []
        self._charge_start = None
        self._next_phase()

    # --- physics ---------------------------------------------------------------------------------
    def set_phase(self, phase: str, *, seconds: float = 3600.0, power_kw: float = 11.0, target: float = 100.0):
        if self.phase == "charging" and phase != "charging":
            self._charge_end("ok")
        self.phase, self.phase_left = phase, seconds
        self.plugged = phase in ("charging", "plugged")
        self.power_kw = power_kw if phase == "charging" else 0.0
        self.target = target
        if phase == "charging":
            self._charge_start = (self.t, self.soc)

    def _next_phase(self):
        r = self.rng
        if self.phase == "parked" and self.soc < 40:
            self.set_phase("charging", seconds=8 * 3600, power_kw=r.choice((3.7, 7.4, 11.0, 22.0, 50.0)),
                           target=r.uniform(80, 100))
        elif self.phase in ("parked", "plugged"):
            self.set_phase("driving", seconds=r.uniform(15, 60) * 60)
        elif self.phase == "driving":
            self.set_phase("plugged" if r.random() < 0.3 else "parked", seconds=r.uniform(30, 180) * 60)
        else:
            self.set_phase("plugged", seconds=r.uniform(30, 120) * 60)

    def _charge_end(self, status: str):
        if self._charge_start is None:
            return
        started, start_soc = self._charge_start
        self.charges.insert(0, {
            "chargeStartDate": _iso(started), "chargeEndDate": _iso(self.t),
            "chargeDuration": round((self.t - started) / 60), "chargeStartBatteryLevel": round(start_soc),
            "chargeEndBatteryLevel": round(self.soc), "chargePower": "fast" if self.power_kw > 22 else "slow",
            "chargeEndStatus": status})
        del self.charges[50:]
        self._charge_start = None

    def advance(self, until: float) -> None:
        if until <= self.t:
            return
        sim = (until - self.t) * self.speed
        while sim > 1e-9:
            step = min(sim, self.phase_left)
            if self.phase == "charging":
                gain = self.power_kw * step / 3600 / self.capacity * 100
                if self.soc + gain >= self.target:
                    step = (self.target - self.soc) / 100 * self.capacity / self.power_kw * 3600 if gain else step
                    self.soc = self.target
                    self.phase_left = 0
                else:
                    self.soc += gain
            elif self.phase == "driving":
                self.soc -= DRIVE_KW * step / 3600 / self.capacity * 100
                km = DRIVE_KMH * step / 3600
                self.odometer += km
                self.lat += km / 111.0 * math.sin(self.odometer)
                self.lng += km / 74.0 * math.cos(self.odometer)
                if self.soc <= 12:
                    self.soc = max(self.soc, 0.0)
                    self.phase_left = 0
            step = max(step, 0.0)
            self.phase_left -= step
            sim -= step
            self.t += step / self.speed
            if self.phase_left <= 1e-9:
                if self.phase == "charging" and self.soc >= self.target:
                    self.set_phase("plugged", seconds=self.rng.uniform(30, 120) * 60)
                else:
                    self._next_phase()
        self.t = until

    # --- what the cloud tells ----------------------------------------------------------------------
    def charging_status(self) -> float:
        return 1.0 if self.phase == "charging" else 0.0

    def state(self, ts: float) -> dict:
        return {"vin": self.vin, "timestamp": _iso(ts), "batteryLevel": round(self.soc, 1),
                "batteryAutonomy": round(self.soc / 100 * self.capacity / 0.17, 1),
                "plugStatus": 1 if self.plugged else 0, "chargingStatus": self.charging_status(),
                "chargingInstantaneousPower": self.power_kw, "gpsLatitude": round(self.lat, 6),
                "gpsLongitude": round(self.lng, 6), "totalMileage": round(self.odometer, 1),
                "charging": self.phase == "charging", "complete": self.phase == "plugged" and self.soc >= 99.5}

    def reading(self, name: str, ts: float) -> dict:
        if name == "battery-status":
            out = {k: v for k, v in self.state(ts).items()
                   if k in ("timestamp", "batteryLevel", "batteryAutonomy", "plugStatus", "chargingStatus",
                            "chargingInstantaneousPower")}
            out["batteryCapacity"] = self.capacity
            if self.phase == "charging" and self.power_kw:
                out["chargingRemainingTime"] = round((self.target - self.soc) / 100 * self.capacity
                                                     / self.power_kw * 60 / self.speed)
            return out
        if name == "cockpit":
            return {"totalMileage": round(self.odometer, 1)}
        if name == "location":
            return {"gpsLatitude": round(self.lat, 6), "gpsLongitude": round(self.lng, 6), "lastUpdateTime": _iso(ts)}
        if name == "hvac-status":
            return {"hvacStatus": "on" if self.hvac_until > time.time() else "off", "externalTemperature": 9.0,
                    "socThreshold": self.hvac_min_soc}
        if name == "lock-status":
            return {"lockStatus": "locked" if self.locked else "unlocked", "lastUpdateTime": _iso(ts)}
        if name == "charge-mode":
            return {"chargeMode": self.charge_mode}
        if name == "charge-history":
            return {"charges": list(self.charges)}
        if name == "hvac-history":
            return {"hvacSessions": list(self.hvac_sessions)}
        return dict(self.notification_settings)

    def act(self, action: str, params: dict) -> tuple[str, str]:
        """(status when the car answers, error)."""
        if action == "charging-start":
            if not self.plugged:
                return "FAILED", "the car is not plugged in"
            if self.phase != "charging":
                self.set_phase("charging", seconds=8 * 3600, power_kw=params.get("power_kw", 11.0))
        elif action == "hvac-start":
            now = time.time()
            ok = self.soc >= (self.hvac_min_soc or 0)
            self.hvac_sessions.insert(0, {"hvacSessionRequestDate": _iso(now), "hvacSessionStartDate": _iso(now),
                                          "hvacSessionEndStatus": "ok" if ok else "error"})
            if not ok:
                return "FAILED", f"battery below {self.hvac_min_soc:g} %"
            self.hvac_until = now + 300
        elif action == "lock-unlock":
            self.locked = not self.locked
        elif action == "charge-schedule":
            self.schedule, self.charge_mode = params, ("schedule_mode" if params.get("enabled") else "always")
        elif action == "hvac-schedule":
            self.hvac_schedule = params
        elif action == "hvac-schedule-cancel":
            self.hvac_schedule = None
        return "COMPLETED", ""


@dataclass
class SimAccount:
    id: str
    username: str
    password: str
    cars: dict[str, SimCar] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    bucket: Bucket | None = None
    gone: bool = False
    generation: int = 0  # revoking bumps it: every refresh token of an earlier generation is refused
    access_not_before: float = 0.0  # expiring sets it: every access token issued before is expired


class Cloud:
    """The simulated cloud's state; every handler runs on one event loop, so no locks are needed.

    Accounts, VINs and tokens derive from usernames and a secret, not from memory: after a restart the
    same accounts hold the same cars, and the tokens stored by the hub are still good."""

    def __init__(self, config: Config, secret: str = "evhub-oem-simulator"):
        self.config = config
        self.secret = secret.encode()
        self.accounts: dict[str, SimAccount] = {}
        self.by_username: dict[str, SimAccount] = {}
        self.jobs: dict[str, dict] = {}
        self.maker_bucket = Bucket(*config.maker_quota)
        self.stats = {"requests": Counter(), "status": Counter(), "quota_rejections": Counter(),
                      "injected": Counter(), "by_path": Counter()}
        self.rng = random.Random(7)
        # Every state answered, by VIN (its report times): what the hub must have stored, once each.
        self.served: dict[str, set[float]] = defaultdict(set)

    def account_add(self, username: str, password: str, cars: list[dict] | int = 1,
                    account_id: str | None = None) -> SimAccount:
        if username in self.by_username:
            return self.by_username[username]
        account_id = account_id or "acc-" + hashlib.sha1(username.encode()).hexdigest()[:12]
        account = SimAccount(id=account_id, username=username, password=password,
                             bucket=Bucket(*self.config.account_quota))
        specs = [{} for _ in range(cars)] if isinstance(cars, int) else cars
        for i, spec in enumerate(specs):
            spec = dict(spec)
            vin = spec.pop("vin", None) or ("SIM" + hashlib.sha1(f"{account.id}/{i}".encode()).hexdigest()[:14]).upper()
            phase = spec.pop("phase", None)
            car = SimCar(vin, speed=self.config.speed, **spec)
            if phase:
                car.set_phase(phase, seconds=24 * 3600)
            account.cars[vin] = car
        self.accounts[account.id] = account
        self.by_username[username] = account
        return account

    # --- tokens: signed, so that they survive a restart ------------------------------------------------
    def _sign(self, kind: str, claims: dict) -> str:
        body = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).decode().rstrip("=")
        sig = hmac.new(self.secret, f"{kind}.{body}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{kind}.{body}.{sig}"

    def _claims(self, kind: str, token: str) -> dict | None:
        try:
            k, body, sig = token.split(".")
            expected = hmac.new(self.secret, f"{k}.{body}".encode(), hashlib.sha256).hexdigest()[:32]
            if k != kind or not hmac.compare_digest(sig, expected):
                return None
            return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, TypeError):
            return None

    def tokens_issue(self, account: SimAccount, refresh: str | None = None) -> dict:
        now = time.time()
        access = self._sign("a", {"a": account.id, "g": account.generation, "i": now,
                                  "e": now + self.config.access_ttl, "n": secrets.token_hex(4)})
        if refresh is None:
            refresh = self._sign("r", {"a": account.id, "g": account.generation, "n": secrets.token_hex(8)})
        return {"account_id": account.id, "access_token": access, "refresh_token": refresh,
                "expires_in": int(self.config.access_ttl), "token_type": "Bearer"}

    def access_check(self, token: str) -> tuple[str | None, str]:
        """(account id, "") or (None | id, why not)."""
        claims = self._claims("a", token)
        account = self.accounts.get(claims["a"]) if claims else None
        if account is None or claims["g"] != account.generation:
            return None, "invalid access token"
        if claims["e"] <= time.time() or claims["i"] < account.access_not_before:
            return account.id, "access token expired"
        return account.id, ""

    def refresh_account(self, token: str) -> SimAccount | None:
        claims = self._claims("r", token)
        account = self.accounts.get(claims["a"]) if claims else None
        return account if account is not None and claims["g"] == account.generation else None

    def expire(self, account: SimAccount) -> None:
        account.access_not_before = time.time() + 0.001

    def revoke(self, account: SimAccount) -> None:
        account.generation += 1

    def report_ts(self) -> float:
        every = self.config.report_every
        return math.floor(time.time() / every) * every if every > 0 else time.time()


CLOUD = web.AppKey("cloud", Cloud)


def _json(status: int, body, **headers) -> web.Response:
    return web.json_response(body, status=status, headers=headers or None)


def _error(status: int, code: str, message: str, **headers) -> web.Response:
    return _json(status, {"errors": [{"errorCode": code, "errorMessage": message}]}, **headers)


@web.middleware
async def manners(request: web.Request, handler):
    """Latency, quotas and faults, before any route answers (the control routes are spared)."""
    cloud: Cloud = request.app[CLOUD]
    if request.path.startswith("/_sim/"):
        if request.remote not in ("127.0.0.1", "::1"):
            return _error(403, "forbidden", "control routes answer on loopback only")
        return await handler(request)
    if cloud.config.latency:
        await asyncio.sleep(cloud.config.latency)
    account = None
    aid = request.match_info.get("account")
    if aid:
        account = cloud.accounts.get(aid)
    elif request.path.startswith("/auth/") and request.can_read_body:
        body = await _body(request)
        account = cloud.by_username.get(body.get("username", "")) or cloud.refresh_account(
            body.get("refresh_token", ""))
    key = account.id if account else "-"
    cloud.stats["requests"][key] += 1
    cloud.stats["by_path"][request.path.rsplit("/", 1)[-1] if aid else request.path] += 1
    response = await _faulted(cloud, account)
    if response is None:
        wait = cloud.maker_bucket.take()
        if not wait and account and account.bucket:
            wait = account.bucket.take()
        if wait:
            cloud.stats["quota_rejections"][key] += 1
            response = _error(429, "err.func.wired.overloaded", "quota exceeded",
                              **{"Retry-After": str(max(1, math.ceil(wait)))})
    if response is None:
        response = await handler(request)
    cloud.stats["status"][response.status] += 1
    return response


async def _faulted(cloud: Cloud, account: SimAccount | None) -> web.Response | None:
    fault = account.faults.pop(0) if account and account.faults else None
    if fault is None:
        for name, p in cloud.config.fault_rates.items():
            if cloud.rng.random() < p:
                fault = name
                break
    if fault is None:
        return None
    cloud.stats["injected"][fault.split(":")[0]] += 1
    name, _, arg = fault.partition(":")
    if name == "429":
        return _error(429, "err.func.wired.overloaded", "quota exceeded", **{"Retry-After": arg or "2"})
    if name == "500":
        return _error(500, "err.tech.500", "internal server error")
    if name == "503":
        return _error(503, "err.tech.503", "service unavailable")
    if name == "timeout":
        await asyncio.sleep(float(arg or cloud.config.timeout_sleep))
        return _error(504, "err.tech.504", "upstream timeout")
    if name == "asleep":
        return _error(409, "err.func.vehicle.asleep", "the vehicle did not wake up",
                      **({"Retry-After": arg} if arg else {}))
    if name == "expire" and account:
        cloud.expire(account)
    if name == "revoke" and account:
        cloud.revoke(account)
    return None


def _authorised(request: web.Request) -> SimAccount | web.Response:
    cloud: Cloud = request.app[CLOUD]
    account = cloud.accounts.get(request.match_info["account"])
    if account is None or account.gone:
        return _error(404, "err.func.account.notfound", "no such account")
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    owner, why = cloud.access_check(token)
    if owner is None:
        return _error(401, "err.func.token.invalid", why)
    if why:
        return _error(401, "err.func.token.expired", why)
    if owner != account.id:
        return _error(403, "err.func.forbidden", "not this account's token")
    return account


def _car(request: web.Request, account: SimAccount) -> SimCar | web.Response:
    car = account.cars.get(request.match_info["vin"])
    if car is None:
        return _error(404, "err.func.vehicle.notfound", "no such vehicle in this account")
    return car


async def _body(request: web.Request) -> dict:
    # aiohttp keeps the body once read: the middleware and the handler both read it.
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


routes = web.RouteTableDef()


@routes.post("/auth/login")
async def login(request):
    cloud: Cloud = request.app[CLOUD]
    body = await _body(request)
    account = cloud.by_username.get(body.get("username", ""))
    if account is None or not secrets.compare_digest(str(body.get("password", "")), account.password):
        return _error(401, "err.func.credentials", "invalid credentials")
    return _json(200, cloud.tokens_issue(account))


@routes.post("/auth/refresh")
async def refresh(request):
    cloud: Cloud = request.app[CLOUD]
    token = (await _body(request)).get("refresh_token", "")
    account = cloud.refresh_account(token)
    if account is None:
        return _json(401, {"error": "invalid_grant", "error_description": "refresh token revoked or unknown"})
    return _json(200, cloud.tokens_issue(account, refresh=token))


@routes.get("/v1/accounts/{account}/vehicles")
async def vehicles(request):
    account = _authorised(request)
    if isinstance(account, web.Response):
        return account
    return _json(200, {"vehicles": [
        {"vin": c.vin, "id": c.maker_id, "brand": c.brand, "model": c.model, "year": c.year,
         "battery_capacity_kwh": c.capacity, "capabilities": c.capabilities, "hvac_min_soc": c.hvac_min_soc}
        for c in account.cars.values()]})


@routes.get("/v1/accounts/{account}/vehicles/{vin}/state")
async def state(request):
    account = _authorised(request)
    if isinstance(account, web.Response):
        return account
    car = _car(request, account)
    if isinstance(car, web.Response):
        return car
    cloud = request.app[CLOUD]
    ts = cloud.report_ts()
    car.advance(ts)
    cloud.served[car.vin].add(ts)
    return _json(200, car.state(ts))


@routes.get("/v1/accounts/{account}/vehicles/{vin}/{reading}")
async def reading(request):
    account = _authorised(request)
    if isinstance(account, web.Response):
        return account
    car = _car(request, account)
    if isinstance(car, web.Response):
        return car
    name = request.match_info["reading"]
    if name not in READINGS or name not in car.capabilities:
        return _error(400, "err.func.wired.notSupported", f"{name} is not supported by this vehicle")
    ts = request.app[CLOUD].report_ts()
    car.advance(ts)
    return _json(200, {"data": {"type": "Car", "id": car.vin, "attributes": car.reading(name, ts)}})


@routes.post("/v1/accounts/{account}/vehicles/{vin}/actions/{action}")
async def action(request):
    cloud: Cloud = request.app[CLOUD]
    account = _authorised(request)
    if isinstance(account, web.Response):
        return account
    car = _car(request, account)
    if isinstance(car, web.Response):
        return car
    name = request.match_info["action"]
    if name not in ACTIONS or name not in car.capabilities:
        return _error(400, "err.func.wired.notSupported", f"{name} is not supported by this vehicle")
    params = await request.json() if request.can_read_body else {}
    job = {"id": secrets.token_hex(8), "account": account.id, "status": "PENDING", "error": "",
           "due": time.time() + cloud.config.action_delay, "car": car, "action": name, "params": params or {}}
    cloud.jobs[job["id"]] = job
    return _json(202, {"job_id": job["id"], "status": "PENDING"})


@routes.get("/v1/accounts/{account}/jobs/{job}")
async def job_status(request):
    cloud: Cloud = request.app[CLOUD]
    account = _authorised(request)
    if isinstance(account, web.Response):
        return account
    job = cloud.jobs.get(request.match_info["job"])
    if job is None or job["account"] != account.id:
        return _error(404, "err.func.job.notfound", "no such job")
    if job["status"] == "PENDING" and time.time() >= job["due"]:
        job["car"].advance(time.time())
        job["status"], job["error"] = job["car"].act(job["action"], job["params"])
    return _json(200, {"job_id": job["id"], "status": job["status"], "error": job["error"]})


# --- control -----------------------------------------------------------------------------------------


@routes.post("/_sim/accounts")
async def sim_accounts(request):
    cloud: Cloud = request.app[CLOUD]
    body = await request.json()
    account = cloud.account_add(body["username"], body["password"], body.get("cars", 1), body.get("account_id"))
    return _json(201, {"account_id": account.id, "vins": list(account.cars)})


@routes.post("/_sim/fleet")
async def sim_fleet(request):
    """Many accounts at once, logged in: what a benchmark links without paying for logins."""
    cloud: Cloud = request.app[CLOUD]
    body = await request.json()
    out = []
    for i in range(int(body["accounts"])):
        account = cloud.account_add(f"{body.get('prefix', 'fleet')}-{i:06d}", secrets.token_urlsafe(8),
                                    int(body.get("cars_per_account", 1)),
                                    account_id=f"{body.get('prefix', 'fleet')}-{i:06d}")
        out.append({**cloud.tokens_issue(account), "vins": list(account.cars),
                    "cars": [{"vin": c.vin, "id": c.maker_id, "capacity": c.capacity} for c in account.cars.values()]})
    return _json(201, {"accounts": out})


def _account_of(request, body) -> SimAccount | None:
    cloud: Cloud = request.app[CLOUD]
    return cloud.accounts.get(body.get("account_id", "")) or cloud.by_username.get(body.get("username", ""))


@routes.post("/_sim/faults")
async def sim_faults(request):
    """{"account_id"|"username", "queue": ["429:3", "500", "timeout:5", "asleep", "expire", "revoke"]}
    (consumed one per request of that account) and/or {"rates": {"500": 0.05, ...}} for every request."""
    cloud: Cloud = request.app[CLOUD]
    body = await request.json()
    account = _account_of(request, body)
    if account is not None:
        account.faults.extend(body.get("queue", []))
    if "rates" in body:
        cloud.config.fault_rates = dict(body["rates"])
    return _json(200, {"ok": True})


@routes.post("/_sim/expire")
async def sim_expire(request):
    body = await request.json()
    account = _account_of(request, body)
    if account is None:
        return _error(404, "not_found", "no such account")
    request.app[CLOUD].expire(account)
    return _json(200, {"ok": True})


@routes.post("/_sim/revoke")
async def sim_revoke(request):
    body = await request.json()
    account = _account_of(request, body)
    if account is None:
        return _error(404, "not_found", "no such account")
    request.app[CLOUD].revoke(account)
    return _json(200, {"ok": True})


@routes.post("/_sim/cars/{vin}")
async def sim_car(request):
    """Put a car in a phase: {"phase": "charging"|"plugged"|"driving"|"parked", "power_kw", "soc"}."""
    cloud: Cloud = request.app[CLOUD]
    body = await request.json()
    for account in cloud.accounts.values():
        car = account.cars.get(request.match_info["vin"])
        if car is not None:
            car.advance(time.time())
            if "soc" in body:
                car.soc = float(body["soc"])
            if "phase" in body:
                car.set_phase(body["phase"], seconds=float(body.get("seconds", 24 * 3600)),
                              power_kw=float(body.get("power_kw", 11.0)))
            return _json(200, car.state(time.time()))
    return _error(404, "not_found", "no such vehicle")


@routes.get("/_sim/stats")
async def sim_stats(request):
    cloud: Cloud = request.app[CLOUD]
    return _json(200, {name: dict(counter) for name, counter in cloud.stats.items()})


def app_make(config: Config | None = None) -> web.Application:
    app = web.Application(middlewares=[manners])
    app[CLOUD] = Cloud(config or Config())
    app.add_routes(routes)
    return app


class ServerThread:
    """The simulator on a thread of its own (tests, benchmarks): `start()` answers its base URL."""

    def __init__(self, config: Config | None = None, host: str = "127.0.0.1", port: int = 0):
        self.app = app_make(config)
        self.cloud: Cloud = self.app[CLOUD]
        self.host, self.port = host, port
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="oem-simulator")
        self.url = ""

    def _run(self):
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(self.app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        self._runner = runner
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return self.url

    def call(self, fn, *args, **kwargs):
        """Run `fn(cloud, ...)` on the simulator's loop (its state is the loop's alone)."""
        async def _do():
            return fn(self.cloud, *args, **kwargs)
        return asyncio.run_coroutine_threadsafe(_do(), self.loop).result(10)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def account_offline(username: str, password: str, cars: int = 1) -> dict:
    """What a simulator started with `--account USERNAME:PASSWORD:CARS` holds for that account, computed
    here without it running (ids, cars and tokens all derive from the username and the secret): the demo
    data links the account before `make run` starts the simulator."""
    cloud = Cloud(Config())
    account = cloud.account_add(username, password, cars)
    return {**cloud.tokens_issue(account), "cars": [
        {"vin": c.vin, "id": c.maker_id, "brand": c.brand, "model": c.model, "year": c.year,
         "battery_capacity_kwh": c.capacity, "capabilities": list(c.capabilities), "hvac_min_soc": c.hvac_min_soc}
        for c in account.cars.values()]}

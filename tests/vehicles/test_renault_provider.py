"""The Renault provider against recorded Gigya and Kamereon responses, served from a loopback HTTP server.

renault-api is pointed at the server through its locale details (Gigya's and Kamereon's root URLs), so the
whole client runs: its HTTP calls, its parsing and its errors. Every recorded response of
../shared/data/oem/renault-kamereon is served by `test_recorded_response` (skipped where that folder is
absent), and the copies in fixtures/renault by `test_copied_response`, which need nothing beside the project.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from renault_api.kamereon.models import get_model_endpoint

from vehicles.providers import renault_parse as parse
from vehicles.providers.base import AccountContext, ProviderError, Tokens, VehicleRef, provider_get
from vehicles.providers.renault import ACTION_ENDPOINTS, READING_ENDPOINTS, RenaultProvider

COPIES = Path(__file__).parent / "fixtures" / "renault"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "oem" / "renault-kamereon"

VIN = "VF1AAAAA555777999"
ACCOUNT = "account-id-1"
PERSON = "person-id-1"
LOGIN_TOKEN = "sample-cookie-value"  # the cookieValue of gigya/login.json
ROOT = f"/commerce/v1/accounts/{ACCOUNT}"
KCA = f"{ROOT}/kamereon/kca/car-adapter"
KCM = f"{ROOT}/kamereon/kcm/v1/vehicles"


def kca(version: int, endpoint: str, vin: str = VIN) -> str:
    return f"{KCA}/v{version}/cars/{vin}/{endpoint}"


def a_jwt(seconds: int = 900) -> str:
    return jwt.encode({"exp": datetime.now(UTC) + timedelta(seconds=seconds)}, "k" * 32, algorithm="HS256")


# --- the outside world: Gigya and Kamereon on loopback -----------------------------------------------------

class OemServer:
    """Answers (method, path) from a table; each request is recorded, with its query and headers."""

    def __init__(self):
        self.routes: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                server.requests.append({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                                        "headers": dict(self.headers), "body": body})
                answers = server.routes.get((self.command, url.path))
                status, text = (answers.pop(0) if len(answers) > 1 else answers[0]) if answers else (
                    404, '{"errors": [{"errorCode": "err.func.wired.notFound", "errorMessage": "no route"}]}')
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # A short poll: shutting down waits for it, once per test.
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def serve(self, method: str, path: str, body: str, status: int = 200) -> None:
        self.routes.setdefault((method, path), []).append((status, body))

    def paths(self, method: str | None = None) -> list[str]:
        return [r["path"] for r in self.requests if method in (None, r["method"])]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def oem():
    server = OemServer()
    yield server
    server.close()


class Spend:
    """The account's quota as the provider sees it: counts draws, and refuses once `left` is spent."""

    def __init__(self, left: int = 1000):
        self.left, self.count = left, 0

    async def __call__(self, n: int = 1) -> None:
        if self.left < n:
            raise ProviderError("no token left in the account's bucket", permanent=False, retry_after=60,
                                kind="quota")
        self.left -= n
        self.count += n


def context(*, access_token: str | None = None, spend: Spend | None = None, **extra) -> AccountContext:
    tokens = Tokens(access_token=a_jwt() if access_token is None else access_token,
                    extra={"gigya_login_token": LOGIN_TOKEN, "gigya_person_id": PERSON, **extra})
    return AccountContext(account_id=1, external_id=ACCOUNT, tokens=tokens, spend=spend or Spend())


def car(model_code: str | None = "XCB1VE", vin: str = VIN, capabilities: list[str] | None = None) -> VehicleRef:
    return VehicleRef(vin=vin, maker_id=f"{ACCOUNT}:{vin}:{model_code or ''}", capabilities=capabilities or [])


def run(oem: OemServer, method: str, *args):
    async def go():
        details = {"gigya-root-url": oem.url, "gigya-api-key": "gigya-key", "kamereon-root-url": oem.url,
                   "kamereon-api-key": "kamereon-key"}
        async with provider_get("renault", locale_details=details) as provider:
            return await getattr(provider, method)(*args)
    return asyncio.run(go())


def text(root: Path, rel: str) -> str:
    return (root / rel).read_text(encoding="utf-8")


def attributes(root: Path, rel: str) -> dict:
    return json.loads(text(root, rel))["data"].get("attributes") or {}


def serve_gigya(oem: OemServer, root: Path) -> str:
    """Gigya's login, account and JWT answers; the recorded JWT is a placeholder, replaced by a real one."""
    token = a_jwt()
    oem.serve("POST", "/accounts.login", text(root, "gigya/login.json"))
    oem.serve("POST", "/accounts.getAccountInfo", text(root, "gigya/get_account_info.json"))
    oem.serve("POST", "/accounts.getJWT", text(root, "gigya/get_jwt.json").replace("sample-jwt-token", token))
    return token


def iso(value: str | None) -> str | None:
    return parse.iso(value)


# --- one scenario per recorded response --------------------------------------------------------------------

def check_login(oem, root, rel):
    token = serve_gigya(oem, root)
    oem.serve("GET", f"/commerce/v1/persons/{PERSON}", text(root, "kamereon/person.json"))
    ctx = AccountContext(account_id=None, external_id="", tokens=Tokens())
    result = run(oem, "login", ctx, {"username": "driver@example.com", "password": "s3cret"})
    assert result.external_id == ACCOUNT  # the MYRENAULT account, not the SFDC one beside it
    assert result.tokens.extra["gigya_login_token"] == LOGIN_TOKEN
    assert result.tokens.extra["gigya_person_id"] == PERSON
    assert result.tokens.access_token == token and result.tokens.expires_at > datetime.now(UTC)
    stored = json.dumps({"tokens": result.tokens.__dict__, "options": result.options}, default=str)
    assert "s3cret" not in stored  # the password is kept nowhere
    login = next(r for r in oem.requests if r["path"] == "/accounts.login")
    assert "s3cret" in login["body"]  # ...and was sent to Gigya alone
    assert oem.paths() == ["/accounts.login", "/accounts.getJWT", "/accounts.getAccountInfo",
                           f"/commerce/v1/persons/{PERSON}"]


def check_refresh(oem, root, rel):
    token = serve_gigya(oem, root)
    tokens = run(oem, "refresh", context(access_token=""))
    assert tokens.access_token == token and tokens.extra["gigya_login_token"] == LOGIN_TOKEN
    form = parse_qs(oem.requests[0]["body"])
    assert oem.paths() == ["/accounts.getJWT"] and form["login_token"] == [LOGIN_TOKEN]


def check_gigya_error(oem, root, rel):
    oem.serve("POST", "/accounts.login", text(root, rel), status=403)
    oem.serve("POST", "/accounts.getJWT", text(root, rel), status=403)
    if "login" in rel:
        ctx = AccountContext(account_id=None, external_id="", tokens=Tokens())
        call = ("login", ctx, {"username": "driver@example.com", "password": "wrong"})
    else:
        call = ("refresh", context(access_token=""))
    with pytest.raises(ProviderError) as caught:
        run(oem, *call)
    if rel.endswith("login_invalid.txt"):  # an empty body: Gigya failed, nothing said of the login
        assert (caught.value.kind, caught.value.permanent) == ("server", False)
    else:  # the login token (or the password) is refused for good: the driver must link again
        assert (caught.value.kind, caught.value.permanent) == ("auth", True)


def check_discovery(oem, root, rel):
    oem.serve("GET", f"/commerce/v1/persons/{PERSON}", text(root, "kamereon/person.json"))
    oem.serve("GET", f"{ROOT}/vehicles", text(root, rel))
    found = run(oem, "discover", context())
    links = [link for link in json.loads(text(root, rel))["vehicleLinks"] if link.get("vehicleDetails")]
    assert [v.vin for v in found] == [link["vin"] for link in links]
    specs_file = root / "kamereon" / "expected_specs.json"
    specs = json.loads(specs_file.read_text()).get(Path(rel).name, {}) if specs_file.exists() else {}
    for vehicle, link in zip(found, links):
        details = link["vehicleDetails"]
        code = details.get("model", {}).get("code")
        assert vehicle.maker_id == f"{ACCOUNT}:{vehicle.vin}:{code or ''}"
        assert vehicle.model == ((details.get("model") or {}).get("label") or "")
        if specs:
            assert vehicle.model == specs["get_model_label"]
            assert vehicle.brand.upper() == specs["get_brand_label"].upper()
        for name in ("battery-status", "location", "cockpit"):
            assert (name in vehicle.capabilities) == (get_model_endpoint(code, name) is not None), name
        assert "lock-unlock" not in vehicle.capabilities
        year = (details.get("firstRegistrationDate") or details.get("registrationDate") or "")[:4]
        assert vehicle.year == (int(year) if year.isdigit() else None)
    assert all(r["query"]["country"] == ["FR"] for r in oem.requests)


def check_details(oem, root, rel):
    """A car whose model we do not know yet: renault-api asks for its details once, then picks endpoints."""
    details = json.loads(text(root, rel))
    vin = details["vin"]
    oem.serve("GET", f"{ROOT}/vehicles/{vin}/details", text(root, rel))
    oem.serve("GET", kca(2, "battery-status", vin), text(root, "kamereon/vehicle_data/battery-status.1.json"))
    oem.serve("GET", kca(1, "cockpit", vin), text(root, "kamereon/vehicle_data/cockpit.zoe.json"))
    oem.serve("GET", kca(1, "location", vin), text(root, "kamereon/vehicle_data/location.1.json"))
    snap = run(oem, "snapshot", context(), car(None, vin=vin))
    assert oem.paths()[0] == f"{ROOT}/vehicles/{vin}/details" and oem.paths().count(oem.paths()[0]) == 1
    assert snap.soc == 50 and snap.range_km == 128
    code = details["model"]["code"]
    assert ("location" in snap.readings) == (get_model_endpoint(code, "location") is not None)


def given(raw: dict, *times: str) -> dict:
    """What a reading must be: Kamereon's attributes as recorded, none invented, times as UTC '...Z'."""
    return {k: (iso(v) if k in times else v) for k, v in raw.items() if v is not None}


def check_battery(oem, root, rel):
    oem.serve("GET", kca(2, "battery-status"), text(root, rel))
    raw = attributes(root, rel)
    reading = run(oem, "read", context(), car("XCB1VE"), "battery-status")
    assert reading == given(raw, "timestamp", "chargingRemainingTimeLastUpdateDateTime")
    snap = run(oem, "snapshot", context(), car("XCB1VE", capabilities=["battery-status"]))
    assert snap.maker_timestamp == parse.when(raw["timestamp"])
    assert (snap.soc, snap.range_km, snap.plugged) == (raw["batteryLevel"], raw.get("batteryAutonomy"),
                                                       raw["plugStatus"] == 1)
    assert snap.charging_state == ("CHARGING" if raw["chargingStatus"] == 1.0 else "NOT_CHARGING")
    assert snap.charging_power_kw == raw.get("chargingInstantaneousPower")
    assert snap.readings["battery-status"] == reading
    json.dumps(snap.readings)  # stored as JSON


def check_cockpit(oem, root, rel):
    oem.serve("GET", kca(1, "cockpit"), text(root, rel))
    reading = run(oem, "read", context(), car(), "cockpit")
    assert reading == given(attributes(root, rel), "timestamp") and "totalMileage" in reading


def check_location(oem, root, rel):
    oem.serve("GET", kca(1, "location"), text(root, rel))
    reading = run(oem, "read", context(), car(), "location")
    assert reading == given(attributes(root, rel), "lastUpdateTime") and "gpsLatitude" in reading


def check_hvac_status(oem, root, rel):
    oem.serve("GET", kca(1, "hvac-status"), text(root, rel))
    reading = run(oem, "read", context(), car(), "hvac-status")
    assert reading == given(attributes(root, rel), "lastUpdateTime", "nextHvacStartDate")
    assert reading["hvacStatus"] in ("on", "off")


def check_lock_status(oem, root, rel):
    oem.serve("GET", kca(1, "lock-status"), text(root, rel))
    reading = run(oem, "read", context(), car("XHN1SU"), "lock-status")  # AUSTRAL: lock status confirmed
    assert reading == given(attributes(root, rel), "lastUpdateTime")
    assert reading["lockStatus"] in ("locked", "unlocked")


def check_charge_mode_zoe(oem, root, rel):
    """ZOE phase 1: the charge mode and a `calendar` schedule, on two endpoints."""
    oem.serve("GET", kca(1, "charge-mode"), text(root, "kamereon/vehicle_data/charge-mode.json"))
    oem.serve("GET", kca(1, "charge-schedule"), text(root, "kamereon/vehicle_data/charge-schedule.single.json"))
    reading = run(oem, "read", context(), car("X101VE"), "charge-mode")
    calendar = attributes(root, "kamereon/vehicle_data/charge-schedule.single.json")["calendar"]
    assert reading == {"chargeMode": "always", "calendar": calendar}


def check_charging_settings(oem, root, rel):
    """MEGANE E-TECH: mode and weekly schedules on charging-settings (no charge-mode endpoint)."""
    oem.serve("GET", kca(1, "charging-settings"), text(root, rel))
    soc_file = root / "kamereon/vehicle_kcm_data/ev-soc-levels.json"
    oem.serve("GET", f"{KCM}/{VIN}/ev/soc-levels", soc_file.read_text() if soc_file.exists() else "{}")
    raw = attributes(root, rel)
    reading = run(oem, "read", context(), car("XCB1VE"), "charge-mode")
    assert reading["chargeMode"] == ("always" if raw["mode"] == "always" else "schedule_mode")
    assert reading["mode"] == raw["mode"] and reading["schedules"] == raw["schedules"]
    assert reading.get("delay") == raw.get("delay")
    if soc_file.exists():
        soc = json.loads(soc_file.read_text())
        assert (reading["socMin"], reading["socTarget"]) == (soc["socMin"], soc["socTarget"])
    assert kca(1, "charge-mode") not in oem.paths()  # the model has none: no call spent on it


def check_ev_settings(oem, root, rel):
    """Renault 5: schedules are KCM `programs` on ev/settings, and the target state of charge beside them."""
    oem.serve("GET", f"{KCM}/{VIN}/ev/settings", text(root, rel))
    oem.serve("GET", f"{KCM}/{VIN}/ev/soc-levels", text(root, "kamereon/vehicle_kcm_data/ev-soc-levels.json"))
    raw = json.loads(text(root, rel))
    soc = json.loads(text(root, "kamereon/vehicle_kcm_data/ev-soc-levels.json"))
    reading = run(oem, "read", context(), car("R5E1VE"), "charge-mode")
    assert reading == {"chargeMode": "always" if raw["chargeModeRq"] == "ALWAYS" else "schedule_mode",
                       "chargeModeRq": raw["chargeModeRq"], "programs": raw["programs"],
                       "socMin": soc["socMin"], "socTarget": soc["socTarget"]}


def check_no_data(oem, root, rel):
    """An answer with no attributes at all is a reading without them, not a failure."""
    oem.serve("GET", kca(1, "charge-mode"), text(root, rel))
    oem.serve("GET", kca(1, "charge-schedule"), text(root, "kamereon/vehicle_data/charge-schedule.single.json"))
    reading = run(oem, "read", context(), car("X101VE"), "charge-mode")
    assert "chargeMode" not in reading and "calendar" in reading


def check_charges(oem, root, rel):
    oem.serve("GET", kca(1, "charges"), text(root, rel))
    oem.serve("GET", kca(1, "charge-history"), text(root, "kamereon/vehicle_data/charge-history.month.json"))
    raw = attributes(root, rel)["charges"]
    reading = run(oem, "read", context(), car("X102VE"), "charge-history")
    assert len(reading["charges"]) == len(raw)
    starts = [c["chargeStartDate"] for c in reading["charges"]]
    assert starts == sorted(starts, reverse=True)  # newest first
    first = max(raw, key=lambda c: c["chargeStartDate"])
    assert reading["charges"][0]["chargeEndBatteryLevel"] == first.get("chargeEndBatteryLevel")
    took = parse.when(first["chargeEndDate"]) - parse.when(first["chargeStartDate"])
    assert reading["charges"][0]["chargeDuration"] == round(took.total_seconds() / 60)  # minutes, whatever the model
    query = next(r["query"] for r in oem.requests if r["path"] == kca(1, "charges"))
    assert set(query) == {"start", "end", "country"} and len(query["start"][0]) == 8


def check_charge_history(oem, root, rel):
    oem.serve("GET", kca(1, "charges"), text(root, "kamereon/vehicle_data/charges.json"))
    oem.serve("GET", kca(1, "charge-history"), text(root, rel))
    reading = run(oem, "read", context(), car("X101VE"), "charge-history")
    assert reading["chargeSummaries"] == attributes(root, rel)["chargeSummaries"]
    query = next(r["query"] for r in oem.requests if r["path"] == kca(1, "charge-history"))
    assert query["type"] == ["month"]


def check_hvac_history(oem, root, rel):
    oem.serve("GET", kca(1, "hvac-history"), text(root, "kamereon/vehicle_data/hvac-history.json"))
    oem.serve("GET", kca(1, "hvac-sessions"), text(root, "kamereon/vehicle_data/hvac-sessions.json"))
    reading = run(oem, "read", context(), car("X101VE"), "hvac-history")
    assert reading == {"hvacSessions": []}  # both recorded answers are empty
    assert {kca(1, "hvac-history"), kca(1, "hvac-sessions")} <= set(oem.paths())


def check_notification_settings(oem, root, rel):
    oem.serve("GET", kca(1, "notification-settings"), text(root, rel))
    assert run(oem, "read", context(), car("X101VE"), "notification-settings") == attributes(root, rel)


def _action(oem, root, rel, path, model, action, params, body_check):
    oem.serve("POST", path, text(root, rel))
    result = run(oem, "act", context(), car(model), action, params)
    sent = json.loads(next(r["body"] for r in oem.requests if (r["method"], r["path"]) == ("POST", path)))
    body_check(sent)
    return result


ACTION_FILES = {
    # file: (path, model, action, params, what the body must say, status)
    "charging-start.start.json": (kca(1, "actions/charging-start"), "X101VE", "charging-start", {},
                                  lambda b: b["data"]["attributes"]["action"] == "start", "PENDING"),
    "hvac-start.start.json": (kca(1, "actions/hvac-start"), "X101VE", "hvac-start",
                              {"action": "start", "targetTemperature": 21},
                              lambda b: b["data"]["attributes"] == {"action": "start", "targetTemperature": 21.0},
                              "PENDING"),
    "horn-lights.lights.json": (kca(1, "actions/horn-lights"), "XCB1VE", "horn-lights", {},
                                lambda b: b["data"]["attributes"]["target"] == "lights", "COMPLETED"),
    "hornlights-lights.json": (kca(1, "actions/horn-lights"), "XCB1VE", "horn-lights", {},
                               lambda b: b["data"]["attributes"]["target"] == "lights", "COMPLETED"),
    "horn-lights.horn.json": (kca(1, "actions/horn-lights"), "XCB1VE", "horn-lights", {"target": "horn"},
                              lambda b: b["data"]["attributes"]["target"] == "horn", "COMPLETED"),
    "hornlights-horn.json": (kca(1, "actions/horn-lights"), "XCB1VE", "horn-lights", {"target": "horn"},
                             lambda b: b["data"]["attributes"]["target"] == "horn", "COMPLETED"),
    "refresh-location.json": (kca(1, "actions/refresh-location"), "XBG1VE", "refresh-location", {},
                              lambda b: b["data"]["type"] == "RefreshLocation", "PENDING"),
    "charge-schedule.schedules.json": (
        kca(2, "actions/charge-schedule"), "X101VE", "charge-schedule",
        {"enabled": True, "windows": [{"weekday": 0, "start": "0100", "duration_minutes": 75},
                                      {"weekday": 0, "start": "1800", "duration_minutes": 120}]},
        lambda b: [s["monday"] for s in b["data"]["attributes"]["schedules"]]
        == [{"startTime": "T01:00Z", "duration": 75}, {"startTime": "T18:00Z", "duration": 120}], "COMPLETED"),
    # Kamereon's stops go through the start actions, as the contract's clients send them.
    "charging-start.stop.json": (kca(1, "actions/charging-start"), "X101VE", "charging-start", {"action": "stop"},
                                 lambda b: b["data"]["attributes"] == {"action": "stop"}, "COMPLETED"),
    "hvac-start.cancel.json": (kca(1, "actions/hvac-start"), "X101VE", "hvac-start", {"action": "cancel"},
                               lambda b: b["data"]["attributes"] == {"action": "cancel"}, "COMPLETED"),
    "hvac-start.stop.json": (kca(1, "actions/hvac-start"), "XBG1VE", "hvac-start", {"action": "cancel"},
                             lambda b: b["data"]["attributes"] == {"action": "stop"}, "COMPLETED"),
    "charge-schedule.scheduled.json": (
        kca(2, "actions/charge-schedule"), "X101VE", "charge-schedule",
        {"enabled": True, "windows": [{"weekday": 6, "start": "0200", "duration_minutes": 200}]},
        lambda b: b["data"]["attributes"]["schedules"][0]["sunday"] == {"startTime": "T02:00Z", "duration": 200},
        "COMPLETED"),
    "charge-schedule.empty.json": (
        kca(2, "actions/charge-schedule"), "X101VE", "charge-schedule", {"enabled": False, "windows": []},
        lambda b: b["data"]["attributes"]["schedules"][0]["activated"] is False, "COMPLETED"),
    "hvac-schedule.schedules.json": (
        kca(2, "actions/hvac-schedule"), "XCB1VE", "hvac-schedule", {"start": "2040", "weekdays": [0, 6]},
        lambda b: {d: s for d, s in b["data"]["attributes"]["schedules"][0].items() if s and d in parse.DAYS}
        == {"monday": {"readyAtTime": "T20:45Z"}, "sunday": {"readyAtTime": "T20:45Z"}}, "COMPLETED"),
}
KCM_ACTION_FILES = {
    "charging-start.now.json": (f"{KCM}/{VIN}/charge/start", "XCB1VE", {},
                                lambda b: b["data"]["attributes"] == {"action": "start"}),
    "charging-start.delayed.json": (f"{KCM}/{VIN}/charge/start", "XCB1VE",
                                    {"action": "start", "startDateTime": "2026-03-06T23:45:00Z"},
                                    lambda b: b["data"]["attributes"]["startDateTime"] == "2026-03-06T23:45:00Z"),
    "charge-pause-resume.resume.json": (f"{KCM}/{VIN}/charge/pause-resume", "XBG1VE", {},
                                        lambda b: b["data"]["attributes"] == {"action": "resume"}),
    "charge-pause-resume.pause.json": (f"{KCM}/{VIN}/charge/pause-resume", "XBG1VE", {"action": "stop"},
                                       lambda b: b["data"]["attributes"] == {"action": "pause"}),
}


def check_action(oem, root, rel):
    path, model, action, params, body_check, status = ACTION_FILES[Path(rel).name]
    result = _action(oem, root, rel, path, model, action, params, body_check)
    sent_at = datetime.strptime(result.external_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert result.status == status and abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)


def check_kcm_action(oem, root, rel):
    path, model, params, body_check = KCM_ACTION_FILES[Path(rel).name]
    result = _action(oem, root, rel, path, model, "charging-start", params, body_check)
    assert result.status == ("COMPLETED" if params.get("action") == "stop" else "PENDING")


def check_ev_settings_charge_start(oem, root, rel):
    """Renault 5: charging now is the car's ev/settings posted back with every program switched off."""
    path = f"{KCM}/{VIN}/ev/settings"
    oem.serve("GET", path, text(root, "kamereon/vehicle_kcm_data/ev-settings.single.json"))
    result = _action(oem, root, rel, path, "R5E1VE", "charging-start", {},
                     lambda b: b["programs"] and not any(p["programActivationStatus"] for p in b["programs"]))
    assert result.status == "PENDING"


# The error files: which call meets them, with which HTTP status, and what the engine must make of them.
ERROR_FILES = {
    "quota_limit.json": (429, "battery-status", ("quota", False, 900)),
    "forbidden.json": (403, "battery-status", ("unsupported", True, None)),
    "not_supported.json": (501, "battery-status", ("unsupported", True, None)),
    "resource_not_found.json": (404, "battery-status", ("unsupported", True, None)),
    "hvac-status.403.403011.json": (403, "hvac-status", ("unsupported", True, None)),
    "access_denied.json": (403, "battery-status", ("gone", True, None)),
    "privacy_on.json": (403, "battery-status", ("asleep", False, 3600)),
    "failed_forward.json": (502, "battery-status", ("asleep", False, 120)),
    "invalid_upstream.json": (500, "battery-status", ("server", False, 120)),
    "bad_gateway.html": (502, "battery-status", ("server", False, 120)),
    "charge_mode_inprogress.json": (409, "battery-status", ("server", False, 120)),
}


def check_error(oem, root, rel):
    name = Path(rel).name
    if name == "invalid_date.json":  # a start in the past: refused for good, not retried
        oem.serve("POST", kca(1, "actions/hvac-start"), text(root, rel), status=400)
        with pytest.raises(ProviderError) as caught:
            run(oem, "act", context(), car("X101VE"), "hvac-start", {"when": "2020-01-01T08:00:00Z"})
        assert (caught.value.kind, caught.value.permanent) == ("server", True)
        return
    status, reading, (kind, permanent, retry_after) = ERROR_FILES[name]
    path = kca(2, reading) if reading == "battery-status" else kca(1, reading)
    oem.serve("GET", path, text(root, rel), status=status)
    with pytest.raises(ProviderError) as caught:
        run(oem, "read", context(), car("XCB1VE"), reading)
    error = caught.value
    assert (error.kind, error.permanent, error.retry_after) == (kind, permanent, retry_after), error
    if kind == "unsupported":
        assert error.capability == reading


# Recorded answers the hub has no use for, each with the reason; any other file must have a scenario.
NOT_SERVED = {
    "config_sample.txt": "the MyRenault app's remote configuration, not an API answer",
    "Contributions.rst": "notes on the recorded cars",
    "LICENSE.rst": "the licence",
    "vehicle_contract/": "warranty and connected-services contracts: nothing the contract reads",
    "vehicle_gateway/": "the car adapter's description (gateway, CAN generation): renault-api's model tables "
                        "already say which endpoints a car has",
    "vehicle_info/alerts.json": "maintenance alerts: not a contract reading",
    "person/notifications.1.json": "the SRP exchange of the app's lock commands, which Renault keeps to itself",
    "vehicle_data/pressure.json": "tyre pressures: not a contract reading",
    "vehicle_data/res-state.": "remote engine start of fuel cars: not a contract reading",
    "vehicle_data/charge-history.day.json": "daily summaries: the hub asks for months",
    "vehicle_action/charge-mode.": "setting the charge mode: no contract action",
    "vehicle_kcm_action/ev-soc-levels.json": "setting the state-of-charge levels: no contract action",
    "vehicle_data/hvac-settings.json": "the car's own preconditioning schedules: the hub keeps its own",
}


def scenario(rel: str):
    name, folder = Path(rel).name, str(Path(rel).parent)
    if rel in ("gigya/login.json", "gigya/get_account_info.json", "kamereon/person.json"):
        return check_login
    if rel == "gigya/get_jwt.json":
        return check_refresh
    if folder == "gigya/error" or rel == "gigya/login_invalid.txt":
        return check_gigya_error
    if folder == "kamereon/vehicles" or rel == "kamereon/expected_specs.json":
        return check_discovery if folder == "kamereon/vehicles" else check_discovery_oracle
    if folder == "kamereon/vehicle_details":
        return check_details
    if folder == "kamereon/error":
        return check_error
    if folder == "kamereon/vehicle_action" and name in ACTION_FILES:
        return check_action
    if folder == "kamereon/vehicle_kcm_action" and name in KCM_ACTION_FILES:
        return check_kcm_action
    if rel == "kamereon/vehicle_kcm_action/ev-settings.charge-start.json":
        return check_ev_settings_charge_start
    if folder == "kamereon/vehicle_kcm_data" and name.startswith("ev-settings"):
        return check_ev_settings
    if rel == "kamereon/vehicle_kcm_data/ev-soc-levels.json":
        return check_ev_settings_soc
    data = {"battery-status": check_battery, "cockpit": check_cockpit, "location": check_location,
            "hvac-status": check_hvac_status, "lock-status": check_lock_status, "charging-settings": check_charging_settings,
            "charges": check_charges, "charge-history": check_charge_history, "hvac-history": check_hvac_history,
            "hvac-sessions": check_hvac_history, "notification-settings": check_notification_settings,
            "charge-mode": check_charge_mode_zoe, "charge-schedule": check_charge_mode_zoe, "no_data": check_no_data}
    if folder == "kamereon/vehicle_data":
        for prefix, check in data.items():
            if name == f"{prefix}.json" or name.startswith((f"{prefix}.", f"{prefix}-")):
                if not any(rel.removeprefix("kamereon/").startswith(k) for k in NOT_SERVED if NOT_SERVED[k]):
                    return check
    return None


def check_discovery_oracle(oem, root, rel):
    """renault-api's own expectations per recorded car, checked through our discovery."""
    specs = json.loads(text(root, rel))
    checked = 0
    for vehicles_file in sorted((root / "kamereon" / "vehicles").glob("*.json")):
        if vehicles_file.name in specs:
            check_discovery(oem, root, f"kamereon/vehicles/{vehicles_file.name}")
            oem.routes.clear()
            oem.requests.clear()
            checked += 1
    assert checked


def check_ev_settings_soc(oem, root, rel):
    check_ev_settings(oem, root, "kamereon/vehicle_kcm_data/ev-settings.single.json")


def not_served(rel: str) -> str | None:
    short = rel.removeprefix("kamereon/")
    return next((why for key, why in NOT_SERVED.items() if why and (short.startswith(key) or rel == key)), None)


def recorded(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "README.md")


@pytest.mark.field
@pytest.mark.parametrize("rel", recorded(SHARED) or ["(../shared/data absent)"])
def test_recorded_response(rel, oem):
    """Every recorded response in ../shared/data parses into our state, or is named as of no use and why."""
    if not SHARED.is_dir():
        pytest.skip("../shared/data is absent (a user's clone has none)")
    check = scenario(rel)
    if check is None:
        assert not_served(rel), f"{rel}: neither served by a scenario nor named in NOT_SERVED"
        return
    check(oem, SHARED, rel)


@pytest.mark.parametrize("rel", [r for r in recorded(COPIES) if scenario(r)])
def test_copied_response(rel, oem):
    """The copies in fixtures/renault, the same way, without ../shared."""
    scenario(rel)(oem, COPIES, rel)


def test_copies_are_the_recorded_ones():
    if not SHARED.is_dir():
        pytest.skip("../shared/data is absent")
    copies = recorded(COPIES)
    assert len(copies) > 40 and "LICENSE.rst" in copies
    for rel in copies:
        assert (COPIES / rel).read_bytes() == (SHARED / rel).read_bytes(), rel


# --- quota, tokens and capabilities -------------------------------------------------------------------------

def test_every_request_draws_from_the_account_bucket(oem):
    """Gigya's JWT call included: the stored JWT has expired, so the snapshot mints one on the way."""
    serve_gigya(oem, COPIES)
    oem.serve("GET", kca(2, "battery-status"), text(COPIES, "kamereon/vehicle_data/battery-status.2.json"))
    oem.serve("GET", kca(1, "cockpit"), text(COPIES, "kamereon/vehicle_data/cockpit.zoe.json"))
    spend = Spend()
    ctx = context(access_token=a_jwt(seconds=-60), spend=spend)
    snap = run(oem, "snapshot", ctx, car("X101VE"))  # ZOE phase 1: no location endpoint
    assert oem.paths() == ["/accounts.getJWT", kca(2, "battery-status"), kca(1, "cockpit")]
    assert spend.count == len(oem.requests) == 3
    assert ctx.tokens.expires_at > datetime.now(UTC)  # the new JWT is handed back to be stored
    # ZOE phase 1 reports its charging power in watts.
    assert snap.charging_power_kw == pytest.approx(0.027) and snap.odometer_km == 49114.27
    assert snap.readings["battery-status"]["chargingInstantaneousPower"] == pytest.approx(0.027)
    headers = oem.requests[1]["headers"]
    assert headers["x-gigya-id_token"] == ctx.tokens.access_token and headers["apikey"] == "kamereon-key"


def test_an_empty_bucket_stops_the_call_before_it_leaves(oem):
    oem.serve("GET", kca(2, "battery-status"), text(COPIES, "kamereon/vehicle_data/battery-status.2.json"))
    spend = Spend(left=0)
    with pytest.raises(ProviderError) as caught:
        run(oem, "snapshot", context(spend=spend), car("X101VE"))
    assert caught.value.kind == "quota" and oem.requests == []


def test_the_quota_error_cools_the_whole_account_down_once(oem):
    """err.func.wired.overloaded: one error and no retries of our own (the engine cools the account down)."""
    oem.serve("GET", kca(2, "battery-status"), text(COPIES, "kamereon/error/quota_limit.json"), status=429)
    spend = Spend()
    with pytest.raises(ProviderError) as caught:
        run(oem, "snapshot", context(spend=spend), car("XCB1VE"))
    assert (caught.value.kind, caught.value.permanent, caught.value.retry_after) == ("quota", False, 900)
    assert len(oem.requests) == spend.count == 1


def test_a_reading_the_car_lacks_costs_no_call(oem):
    for ref, reading in ((car("X101VE"), "location"), (car("XCB1VE", capabilities=["battery-status"]), "cockpit")):
        with pytest.raises(ProviderError) as caught:
            run(oem, "read", context(), ref, reading)
        assert (caught.value.kind, caught.value.permanent, caught.value.capability) == ("unsupported", True, reading)
    assert oem.requests == []


def test_a_stop_the_model_lacks_keeps_the_start(oem):
    """MEGANE E-TECH starts charging remotely but cannot stop it: refused for good, as no capability."""
    with pytest.raises(ProviderError) as caught:
        run(oem, "act", context(), car("XCB1VE"), "charging-start", {"action": "stop"})
    assert (caught.value.kind, caught.value.permanent, caught.value.capability) == ("server", True, "")
    assert oem.requests == []


def test_a_fuel_car_gives_its_mileage_and_position(oem):
    """A CLIO V (petrol) in the same account has no battery: its snapshot is the cockpit and location."""
    oem.serve("GET", kca(1, "cockpit"), text(COPIES, "kamereon/vehicle_data/cockpit.captur_ii.json"))
    oem.serve("GET", kca(1, "location"), text(COPIES, "kamereon/vehicle_data/location.1.json"))
    snap = run(oem, "snapshot", context(), car("XJA1VP"))
    assert (snap.soc, snap.odometer_km, snap.latitude) == (None, 5566.78, 48.1234567)
    assert snap.maker_timestamp == datetime(2020, 2, 18, 16, 58, 38, tzinfo=UTC)
    assert kca(2, "battery-status") not in oem.paths()


def test_lock_unlock_is_refused_naming_the_reason(oem):
    with pytest.raises(ProviderError) as caught:
        run(oem, "act", context(), car("XCB1VE"), "lock-unlock", {})
    assert caught.value.kind == "unsupported" and caught.value.permanent and "SRP" in caught.value.message
    assert oem.requests == []


def test_a_revoked_jwt_asks_the_engine_to_refresh(oem):
    body = json.dumps({"errors": [{"errorCode": "err.func.wired.unauthorized", "errorMessage": "JWT revoked"}]})
    oem.serve("GET", kca(2, "battery-status"), body, status=401)
    with pytest.raises(ProviderError) as caught:
        run(oem, "snapshot", context(), car("XCB1VE"))
    assert (caught.value.kind, caught.value.permanent) == ("auth", False)


def test_refreshes_are_confirmed_by_reading_again(oem):
    """No job id from Kamereon: an action is PENDING until a reading shows it done."""
    oem.serve("POST", kca(1, "actions/refresh-battery-status"), '{"data": {"type": "RefreshBatteryStatus", "id": "x"}}')
    result = run(oem, "act", context(), car("XCB1VE"), "refresh-battery-status", {})
    assert result.status == "PENDING"
    assert json.loads(oem.requests[0]["body"]) == {"data": {"type": "RefreshBatteryStatus"}}
    stale = json.loads(text(COPIES, "kamereon/vehicle_data/battery-status.2.json"))  # from 2020: older
    fresh = json.loads(json.dumps(stale))
    fresh["data"]["attributes"]["timestamp"] = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    oem.serve("GET", kca(2, "battery-status"), json.dumps(stale))
    oem.serve("GET", kca(2, "battery-status"), json.dumps(fresh))
    first = run(oem, "action_status", context(), car("XCB1VE"), "refresh-battery-status", result.external_id)
    second = run(oem, "action_status", context(), car("XCB1VE"), "refresh-battery-status", result.external_id)
    assert (first.status, second.status) == ("PENDING", "COMPLETED")


def test_capability_names_are_the_contracts():
    from vehicles.providers.base import ACTIONS, READINGS

    assert set(READING_ENDPOINTS) == set(READINGS)
    assert set(ACTION_ENDPOINTS) | {"lock-unlock"} == set(ACTIONS)
    assert isinstance(provider_get("renault"), RenaultProvider)


def test_several_windows_a_day_take_several_kamereon_schedules():
    windows = [{"weekday": d, "start": s, "duration_minutes": 30} for d in (0, 2) for s in ("0100", "1200", "2200")]
    schedules = parse.charge_schedule_models(windows, enabled=True)
    assert [s.monday.startTime for s in schedules] == ["T01:00Z", "T12:00Z", "T22:00Z"]
    assert all(s.tuesday is None for s in schedules)
    too_many = [{"weekday": 1, "start": f"{h:02d}00", "duration_minutes": 15} for h in range(6)]
    with pytest.raises(ProviderError):
        parse.charge_schedule_models(too_many, enabled=True)


def test_the_account_locale_picks_renaults_servers():
    """A Mexican account talks to Kamereon's American servers, with its own country on every call."""
    async def go():
        async with RenaultProvider() as provider:
            session = provider._session(AccountContext(account_id=1, external_id=ACCOUNT, tokens=Tokens(),
                                                       options={"locale": "es_MX"}))
            return await session._get_kamereon_root_url(), await session._get_country()
    assert asyncio.run(go()) == ("https://api-wired-prod-1-usw2.wrd-aws.com", "MX")


def test_the_sync_engine_links_and_polls_a_renault_account(transactional_db, oem, settings):
    """The whole path on the recorded answers: login and discovery through the engine, then a claimed poll
    that stores one sample on Renault's own timestamp, and no password anywhere."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from vehicles import models as m
    from vehicles import services, sync

    settings.VEHICLES_RENAULT_LOCALE_DETAILS = {"gigya-root-url": oem.url, "gigya-api-key": "gigya-key",
                                                "kamereon-root-url": oem.url, "kamereon-api-key": "kamereon-key"}
    serve_gigya(oem, COPIES)
    oem.serve("GET", f"/commerce/v1/persons/{PERSON}", text(COPIES, "kamereon/person.json"))
    oem.serve("GET", f"{ROOT}/vehicles", text(COPIES, "kamereon/vehicles/zoe_50.1.json"))  # a ZOE phase 2
    oem.serve("GET", kca(2, "battery-status"), text(COPIES, "kamereon/vehicle_data/battery-status.2.json"))
    oem.serve("GET", kca(1, "cockpit"), text(COPIES, "kamereon/vehicle_data/cockpit.zoe.json"))
    oem.serve("GET", kca(1, "location"), text(COPIES, "kamereon/vehicle_data/location.1.json"))
    driver = get_user_model().objects.create_user(username="rene", password="x-rene")

    account = sync.account_connect(driver=driver, provider="renault",
                                   credentials={"username": "rene@example.com", "password": "s3cret"})
    car = m.Vehicle.objects.get(account=account)
    assert (car.vin, car.model, account.external_id) == (VIN, "ZOE", ACCOUNT)
    assert {"battery-status", "location", "charging-start"} <= set(car.capabilities)
    tokens = services.maker_account_tokens(account=account)
    assert tokens.extra["gigya_login_token"] == LOGIN_TOKEN
    stored = json.dumps(list(m.MakerAccount.objects.filter(pk=account.pk).values()), default=str)
    assert "s3cret" not in stored and LOGIN_TOKEN not in stored  # no password, and the login token encrypted

    with transaction.atomic():
        ids, claim = sync.vehicles_claim(provider="renault")
    report = sync.vehicles_sync(vehicle_ids=ids, claim=claim)
    assert (report.polled, report.samples, report.errors) == (1, 1, {})
    state = m.VehicleState.objects.get(vehicle=car)
    assert (state.soc, state.range_km, state.charging_state, state.plugged) == (60, 141, "CHARGING", True)
    assert (state.latitude, state.odometer_km) == (48.1234567, 49114.27)
    assert state.maker_timestamp == datetime(2020, 1, 12, 21, 40, 16, tzinfo=UTC)
    assert state.readings["battery-status"]["data"]["batteryLevel"] == 60


def _every_renault_error():
    import inspect

    from renault_api import exceptions
    from renault_api.gigya import exceptions as gigya_exceptions
    from renault_api.kamereon import exceptions as kamereon_exceptions

    for module in (exceptions, gigya_exceptions, kamereon_exceptions):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, exceptions.RenaultException) and cls.__module__ == module.__name__:
                yield cls


def _instance(cls):
    from renault_api.exceptions import EndpointNotAvailableError
    from renault_api.gigya.exceptions import GigyaResponseException, PendingTwoFactorAuthenticationException
    from renault_api.kamereon.exceptions import KamereonResponseException

    if issubclass(cls, PendingTwoFactorAuthenticationException):
        return cls(403101, "pending", "reg-token")
    if issubclass(cls, GigyaResponseException):
        return cls(403000, "refused")
    if issubclass(cls, KamereonResponseException):
        return cls("err.some.code", "detail")
    if issubclass(cls, EndpointNotAvailableError):
        return cls("cockpit", "X101VE")
    return cls("something")


@pytest.mark.parametrize("cls", list(_every_renault_error()), ids=lambda c: c.__name__)
def test_every_renault_api_error_is_a_provider_error(cls):
    from vehicles.providers.base import KINDS
    from vehicles.providers.renault import provider_error

    error = provider_error(_instance(cls), "cockpit")
    assert isinstance(error, ProviderError) and error.kind in KINDS
    assert error.permanent or error.retry_after or error.kind == "auth"  # retried: after a wait or a refresh

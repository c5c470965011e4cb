"""The BMW CarData provider against a loopback server speaking CarData's OAuth and REST, and its MQTT stream
consumer fed messages. Payloads are built from CarData's published facts (DESIGN.md, "Car makers"; the
device-code flow's RFC 8628 errors; the telematic keys), as no recorded CarData answers exist here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from vehicles import models as m
from vehicles import services
from vehicles.management.commands.bmw_stream import AccountStream, account_streams
from vehicles.providers import bmw
from vehicles.providers.base import AccountContext, ProviderError, Tokens, VehicleRef, provider_get

VIN = "WBY7Z21000CS00001"
GCID = "aa111192-d570-4d3d-8835-656ee00edcd7"
CLIENT_ID = "5f0c8b2e-0000-4000-8000-000000000001"
CONTAINER = "container-evhub-1"


class CarData:
    """customer.bmwgroup.com and api-cardata.bmwgroup.com on loopback, with PKCE checked as BMW does."""

    def __init__(self):
        self.routes: dict[tuple[str, str], list] = {}
        self.requests: list[dict] = []
        self.challenge = ""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                form = {k: v[0] for k, v in parse_qs(raw).items()} if "form" in (self.headers.get("Content-Type") or "") else {}
                request = {"method": self.command, "path": url.path, "query": parse_qs(url.query),
                           "headers": dict(self.headers), "form": form, "json": json.loads(raw) if raw and not form else None}
                server.requests.append(request)
                status, body, headers = server.answer(request)
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()

    def serve(self, method: str, path: str, status: int, body, headers: dict | None = None) -> None:
        self.routes.setdefault((method, path), []).append((status, body, headers or {}))

    def answer(self, request):
        if request["path"] == "/gcdm/oauth/device/code":
            self.challenge = request["form"].get("code_challenge", "")
        if request["path"] == "/gcdm/oauth/token" and request["form"].get("grant_type") == bmw.DEVICE_GRANT:
            verifier = request["form"].get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if digest != self.challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}, {}
        answers = self.routes.get((request["method"], request["path"]))
        if not answers:
            return 404, {"exveErrorId": "CU-404", "exveErrorMsg": "no route"}, {}
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def rest(self) -> list[dict]:
        return [r for r in self.requests if r["path"].startswith("/customers/")]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def cardata():
    server = CarData()
    yield server
    server.close()


class Spend:
    def __init__(self, left: int = 50):
        self.left, self.count = left, 0

    async def __call__(self, n: int = 1):
        if self.left < n:
            raise ProviderError("the account's 50 calls a day are spent", permanent=False, retry_after=600,
                                kind="quota")
        self.left -= n
        self.count += n


def context(spend: Spend | None = None, **options) -> AccountContext:
    tokens = Tokens(access_token="access-1", refresh_token="refresh-1",
                    expires_at=datetime.now(UTC) + timedelta(hours=1), extra={"gcid": GCID, "id_token": "id-1"})
    return AccountContext(account_id=1, external_id=GCID, tokens=tokens, spend=spend or Spend(),
                          options={"client_id": CLIENT_ID, "container_id": CONTAINER, **options})


def run(cardata: CarData, method: str, *args):
    async def go():
        async with provider_get("bmw", auth_url=cardata.url, api_url=cardata.url) as provider:
            return await getattr(provider, method)(*args)
    return asyncio.run(go())


def entry(value, unit=None, at="2026-05-01T10:00:00Z"):
    return {"value": value, "unit": unit, "timestamp": at}


TOKEN_ANSWER = {"access_token": "access-2", "token_type": "Bearer", "expires_in": 3599, "refresh_token": "refresh-2",
                "scope": bmw.SCOPE, "id_token": "id-2", "gcid": GCID}
DEVICE_ANSWER = {"user_code": "sDzZXXmD", "device_code": "device-1", "interval": 5, "expires_in": 300,
                 "verification_uri": "https://customer.bmwgroup.com/oneid/link",
                 "verification_uri_complete": "https://customer.bmwgroup.com/oneid/link?user_code=sDzZXXmD"}


# --- the device-code flow ---------------------------------------------------------------------------------

def test_device_code_with_pkce_pending_slow_down_then_tokens(cardata):
    cardata.serve("POST", "/gcdm/oauth/device/code", 200, DEVICE_ANSWER)
    cardata.serve("POST", "/gcdm/oauth/token", 403, {"error": "authorization_pending"})
    cardata.serve("POST", "/gcdm/oauth/token", 400, {"error": "slow_down"})
    cardata.serve("POST", "/gcdm/oauth/token", 200, TOKEN_ANSWER)
    cardata.serve("GET", "/customers/containers", 200, {"containers": []})
    cardata.serve("POST", "/customers/containers", 201, {"containerId": CONTAINER, "name": bmw.CONTAINER_NAME})

    async def flow():
        async with provider_get("bmw", auth_url=cardata.url, api_url=cardata.url) as provider:
            ctx = AccountContext(account_id=None, external_id="", tokens=Tokens(), spend=Spend(),
                                 options={"client_id": CLIENT_ID})
            code = await provider.device_code_start(ctx, client_id=CLIENT_ID)
            json.dumps(code)  # kept in the cache between the driver's two calls
            waits = []
            for _ in range(2):
                try:
                    await provider.device_code_poll(ctx, client_id=CLIENT_ID, device_code=code["device_code"],
                                                    code_verifier=code["code_verifier"], interval=code["interval"])
                except ProviderError as pending:
                    assert (pending.kind, pending.permanent) == ("auth", False)
                    waits.append(pending.retry_after)
            result = await provider.login(ctx, code)
            return code, waits, result

    code, waits, result = asyncio.run(flow())
    start = cardata.requests[0]["form"]
    assert start["client_id"] == CLIENT_ID and start["response_type"] == "device_code"
    assert start["code_challenge_method"] == "S256" and "cardata:streaming:read" in start["scope"]
    assert code["user_code"] == "sDzZXXmD" and code["verification_uri"].endswith("/oneid/link")
    assert 290 <= code["expires_in"] <= 300
    assert waits == [5, 10]  # authorization_pending: the interval; slow_down adds 5 s
    polls = [r["form"] for r in cardata.requests if r["path"] == "/gcdm/oauth/token"]
    assert len(polls) == 3 and all(p["grant_type"] == bmw.DEVICE_GRANT and p["device_code"] == "device-1" for p in polls)
    assert result.external_id == GCID and result.tokens.access_token == "access-2"
    assert result.tokens.extra["id_token"] == "id-2" and result.tokens.extra["gcid"] == GCID
    assert result.tokens.refresh_expires_at - datetime.now(UTC) > timedelta(days=13)
    assert result.options == {"client_id": CLIENT_ID, "container_id": CONTAINER}
    created = cardata.requests[-1]
    assert created["json"]["name"] == bmw.CONTAINER_NAME and set(created["json"]["technicalDescriptors"]) >= {
        bmw.SOC, bmw.SOC_DISPLAYED, bmw.RANGE, bmw.CHARGING_STATUS}


def test_a_wrong_verifier_is_refused_by_the_server(cardata):
    """The PKCE check of the loopback server is real: a code finished with another verifier fails."""
    cardata.serve("POST", "/gcdm/oauth/device/code", 200, DEVICE_ANSWER)
    cardata.serve("POST", "/gcdm/oauth/token", 200, TOKEN_ANSWER)

    async def flow():
        async with provider_get("bmw", auth_url=cardata.url, api_url=cardata.url) as provider:
            ctx = AccountContext(account_id=None, external_id="", tokens=Tokens())
            code = await provider.device_code_start(ctx, client_id=CLIENT_ID)
            return await provider.device_code_poll(ctx, client_id=CLIENT_ID, device_code=code["device_code"],
                                                   code_verifier="another-verifier")

    with pytest.raises(ProviderError) as caught:
        asyncio.run(flow())
    assert (caught.value.kind, caught.value.permanent) == ("auth", True)


@pytest.mark.parametrize("status,error,words", [(401, "expired_token", "expired"), (403, "access_denied", "refused")])
def test_expired_or_denied_codes_end_the_link(cardata, status, error, words):
    cardata.serve("POST", "/gcdm/oauth/token", status, {"error": error})
    code = bmw.DeviceCode(client_id=CLIENT_ID, device_code="device-1", user_code="X", verification_uri="",
                          verification_uri_complete="", expires_at=datetime.now(UTC) + timedelta(minutes=5),
                          interval=5, code_verifier="v")
    cardata.challenge = base64.urlsafe_b64encode(hashlib.sha256(b"v").digest()).rstrip(b"=").decode()
    with pytest.raises(ProviderError) as caught:
        run(cardata, "login", AccountContext(account_id=None, external_id="", tokens=Tokens()), code.as_dict())
    assert (caught.value.kind, caught.value.permanent) == ("auth", True) and words in caught.value.message


def test_login_waits_through_pending_within_its_time(cardata):
    cardata.serve("POST", "/gcdm/oauth/token", 403, {"error": "authorization_pending"})
    cardata.serve("POST", "/gcdm/oauth/token", 200, TOKEN_ANSWER)
    cardata.serve("GET", "/customers/containers", 200, {"containers": [
        {"containerId": "old", "name": "someone-else", "state": "ACTIVE"},
        {"containerId": CONTAINER, "name": bmw.CONTAINER_NAME, "state": "ACTIVE"}]})
    code = bmw.DeviceCode(client_id=CLIENT_ID, device_code="device-1", user_code="X", verification_uri="",
                          verification_uri_complete="", expires_at=datetime.now(UTC) + timedelta(minutes=5),
                          interval=0, code_verifier="v")
    cardata.challenge = base64.urlsafe_b64encode(hashlib.sha256(b"v").digest()).rstrip(b"=").decode()
    result = run(cardata, "login", AccountContext(account_id=None, external_id="", tokens=Tokens(), spend=Spend()),
                 {**code.as_dict(), "wait": 5})
    assert result.options["container_id"] == CONTAINER  # found by name: none created
    assert [r["method"] for r in cardata.rest()] == ["GET"]


def test_pending_past_its_time_says_where_to_approve(cardata):
    cardata.serve("POST", "/gcdm/oauth/token", 403, {"error": "authorization_pending"})
    code = bmw.DeviceCode(client_id=CLIENT_ID, device_code="device-1", user_code="sDzZXXmD",
                          verification_uri="https://customer.bmwgroup.com/oneid/link", verification_uri_complete="",
                          expires_at=datetime.now(UTC) + timedelta(minutes=5), interval=5, code_verifier="v")
    cardata.challenge = base64.urlsafe_b64encode(hashlib.sha256(b"v").digest()).rstrip(b"=").decode()
    with pytest.raises(ProviderError) as caught:
        run(cardata, "login", AccountContext(account_id=None, external_id="", tokens=Tokens()), code.as_dict())
    assert (caught.value.kind, caught.value.permanent, caught.value.retry_after) == ("auth", False, 5)
    assert "sDzZXXmD" in caught.value.message and "oneid/link" in caught.value.message


def test_email_and_password_say_how_to_link_now(cardata):
    with pytest.raises(ProviderError) as caught:
        run(cardata, "login", AccountContext(account_id=None, external_id="", tokens=Tokens()),
            {"email": "driver@example.com", "password": "x"})
    assert caught.value.permanent and "CarData" in caught.value.message and "client_id" in caught.value.message
    assert cardata.requests == []


def test_refresh_keeps_the_stream_credentials_fresh(cardata):
    cardata.serve("POST", "/gcdm/oauth/token", 200, {**TOKEN_ANSWER, "refresh_token": "refresh-3", "id_token": "id-3"})
    spend = Spend()
    tokens = run(cardata, "refresh", context(spend))
    form = cardata.requests[0]["form"]
    assert form == {"grant_type": "refresh_token", "refresh_token": "refresh-1", "client_id": CLIENT_ID}
    assert (tokens.access_token, tokens.refresh_token, tokens.extra["id_token"]) == ("access-2", "refresh-3", "id-3")
    assert spend.count == 0  # OAuth is not one of CarData's 50 REST calls


def test_a_rejected_refresh_token_needs_a_new_link(cardata):
    cardata.serve("POST", "/gcdm/oauth/token", 400, {"error": "invalid_grant"})
    with pytest.raises(ProviderError) as caught:
        run(cardata, "refresh", context())
    assert (caught.value.kind, caught.value.permanent) == ("auth", True)


# --- discovery, telematics and the quota ---------------------------------------------------------------------

def test_discovery_reads_the_primary_mappings(cardata):
    cardata.serve("GET", "/customers/vehicles/mappings", 200, [
        {"vin": VIN, "mappedSince": "2025-10-01T10:00:00Z", "mappingType": "PRIMARY"},
        {"vin": "WBA00000000000002", "mappedSince": "2025-10-01T10:00:00Z", "mappingType": "SECONDARY"}])
    cardata.serve("GET", f"/customers/vehicles/{VIN}/basicData", 200, {
        "vin": VIN, "brand": "BMW", "modelName": "i3s 94 REX", "constructionDate": "2018-03-01",
        "hvsMaxEnergyAbsolute": "33.2", "isTelematicsCapable": True})
    spend = Spend()
    found = run(cardata, "discover", context(spend))
    assert [(v.vin, v.brand, v.model, v.year, v.battery_capacity_kwh) for v in found] == [
        (VIN, "BMW", "i3s 94 REX", 2018, 33.2)]
    assert found[0].capabilities == ["battery-status", "cockpit", "location"]
    assert spend.count == len(cardata.rest()) == 2
    assert all(r["headers"]["x-version"] == "v1" and r["headers"]["Authorization"] == "Bearer access-1"
               for r in cardata.rest())


TELEMATICS = {
    bmw.SOC: entry("82", "percent", "2026-05-01T10:00:00Z"),
    bmw.RANGE: entry("121", "km", "2026-05-01T10:01:00Z"),
    bmw.CHARGING_STATUS: entry("CHARGINGACTIVE", None, "2026-05-01T10:02:00Z"),
    bmw.TIME_TO_FULL: entry("95", "min", "2026-05-01T10:02:00Z"),
    bmw.PLUG: entry("CONNECTED", None, "2026-05-01T09:58:00Z"),
    bmw.MILEAGE: entry("48211", "km", "2026-05-01T09:00:00Z"),
    bmw.LATITUDE: entry("48.1774", "degrees", "2026-05-01T09:00:00Z"),
    bmw.LONGITUDE: entry("11.5560", "degrees", "2026-05-01T09:00:00Z"),
}


def test_telematic_data_is_one_call_and_a_whole_snapshot(cardata):
    cardata.serve("GET", f"/customers/vehicles/{VIN}/telematicData", 200, {"telematicData": TELEMATICS})
    spend = Spend()
    snap = run(cardata, "snapshot", context(spend), VehicleRef(vin=VIN, maker_id=VIN))
    assert cardata.rest()[0]["query"] == {"containerId": [CONTAINER]} and spend.count == 1
    assert snap.maker_timestamp == datetime(2026, 5, 1, 10, 2, tzinfo=UTC)  # the newest key's own time
    assert (snap.soc, snap.range_km, snap.charging_state, snap.plugged) == (82, 121, "CHARGING", True)
    assert (snap.odometer_km, snap.latitude, snap.longitude) == (48211, 48.1774, 11.556)
    assert snap.readings["battery-status"] == {
        "batteryLevel": 82, "batteryAutonomy": 121, "plugStatus": 1, "chargingStatus": 1.0,
        "chargingRemainingTime": 95, "timestamp": "2026-05-01T10:02:00Z"}
    json.dumps(snap.readings)


def test_the_displayed_soc_stands_in_when_the_header_is_missing():
    data = {bmw.SOC_DISPLAYED: entry("64", "percent"), bmw.CHARGING_STATUS: entry("NOCHARGING")}
    found = bmw.readings(data)["battery-status"]
    assert found["batteryLevel"] == 64 and found["chargingStatus"] == 0.0
    header_wins = bmw.readings({**data, bmw.SOC: entry("65.5", "percent")})["battery-status"]
    assert header_wins["batteryLevel"] == 65.5
    invalid = bmw.readings({bmw.SOC: entry("INVALID"), bmw.RANGE: entry("INVALID")})
    assert invalid == {}  # never an invented value
    assert bmw.snapshot({bmw.CHARGING_STATUS: entry("CHARGINGENDED")}).charging_state == "COMPLETE"
    assert bmw.snapshot({bmw.CHARGING_STATUS: entry("CHARGINGERROR")}).charging_state == "ERROR"


def test_a_read_of_one_reading_is_still_one_call(cardata):
    cardata.serve("GET", f"/customers/vehicles/{VIN}/telematicData", 200, {"telematicData": TELEMATICS})
    reading = run(cardata, "read", context(), VehicleRef(vin=VIN, maker_id=VIN), "location")
    assert reading == {"gpsLatitude": 48.1774, "gpsLongitude": 11.556, "lastUpdateTime": "2026-05-01T09:00:00Z"}
    with pytest.raises(ProviderError) as caught:
        run(cardata, "read", context(), VehicleRef(vin=VIN, maker_id=VIN), "hvac-status")
    assert (caught.value.kind, caught.value.capability) == ("unsupported", "hvac-status")
    assert len(cardata.rest()) == 1


def test_fifty_calls_a_day_are_counted_and_never_exceeded(cardata):
    cardata.serve("GET", f"/customers/vehicles/{VIN}/telematicData", 200, {"telematicData": TELEMATICS})
    spend = Spend(left=3)

    async def polls():
        async with provider_get("bmw", auth_url=cardata.url, api_url=cardata.url) as provider:
            done, refused = 0, None
            for _ in range(5):
                try:
                    await provider.snapshot(context(spend), VehicleRef(vin=VIN, maker_id=VIN))
                    done += 1
                except ProviderError as exc:
                    refused = exc
            return done, refused

    done, refused = asyncio.run(polls())
    assert done == 3 and refused.kind == "quota" and len(cardata.rest()) == 3 == spend.count
    assert bmw.BmwProvider.account_quota[0] <= 50 and bmw.BmwProvider.account_quota[1] * 86400 <= 50


@pytest.mark.parametrize("status,body,headers,kind,permanent,retry_after", [
    (429, {"exveErrorId": "CU-429", "exveErrorMsg": "API rate limit reached"}, {"Retry-After": "7200"}, "quota", False, 7200),
    (403, {"exveErrorId": "CU-429", "exveErrorMsg": "Rate limit reached"}, {}, "quota", False, 3600),
    (401, {"exveErrorId": "CU-401", "exveErrorMsg": "token expired"}, {}, "auth", False, None),
    (403, {"exveErrorId": "CU-403", "exveErrorMsg": "no consent"}, {}, "gone", True, None),
    (503, {"exveErrorId": "CU-503", "exveErrorMsg": "try later"}, {}, "server", False, 120),
])
def test_cardata_errors(cardata, status, body, headers, kind, permanent, retry_after):
    cardata.serve("GET", f"/customers/vehicles/{VIN}/telematicData", status, body, headers)
    with pytest.raises(ProviderError) as caught:
        run(cardata, "snapshot", context(), VehicleRef(vin=VIN, maker_id=VIN))
    assert (caught.value.kind, caught.value.permanent, caught.value.retry_after) == (kind, permanent, retry_after)


def test_a_deleted_container_is_made_again_once(cardata):
    cardata.serve("GET", f"/customers/vehicles/{VIN}/telematicData", 404, {"exveErrorId": "CU-404"})
    cardata.serve("GET", f"/customers/vehicles/{VIN}/telematicData", 200, {"telematicData": TELEMATICS})
    cardata.serve("GET", "/customers/containers", 200, {"containers": []})
    cardata.serve("POST", "/customers/containers", 201, {"containerId": "container-2"})
    ctx = context()
    snap = run(cardata, "snapshot", ctx, VehicleRef(vin=VIN, maker_id=VIN))
    assert snap.soc == 82 and ctx.options["container_id"] == "container-2"
    assert cardata.rest()[-1]["query"] == {"containerId": ["container-2"]}


def test_actions_are_refused_naming_why(cardata):
    for action in ("charging-start", "hvac-start", "lock-unlock", "refresh-battery-status"):
        with pytest.raises(ProviderError) as caught:
            run(cardata, "act", context(), VehicleRef(vin=VIN, maker_id=VIN), action, {})
        assert (caught.value.kind, caught.value.permanent, caught.value.capability) == ("unsupported", True, action)
        assert "read-only" in caught.value.message
    assert cardata.requests == []


# --- the MQTT stream ------------------------------------------------------------------------------------------

@pytest.fixture
def bmw_car(db):
    from django.contrib.auth import get_user_model

    driver = get_user_model().objects.create_user(username="bea", password="x-bea")
    account = services.maker_account_link(
        driver=driver, provider="bmw", external_id=GCID, label=GCID,
        tokens=Tokens(access_token="access-1", refresh_token="refresh-1", extra={"gcid": GCID, "id_token": "id-1"}),
        options={"client_id": CLIENT_ID, "container_id": CONTAINER})
    return services.vehicle_upsert(account=account, discovered=bmw.discovered(VIN, {"brand": "BMW", "modelName": "i4"}))


def message(data: dict, vin: str = VIN) -> bytes:
    return json.dumps({"vin": vin, "entityId": "e-1", "topic": f"{GCID}/{vin}", "timestamp": "2026-05-01T10:05:00Z",
                       "data": data}).encode()


def test_stream_messages_become_whole_samples_once(bmw_car):
    [(stream, password)] = account_streams()
    assert (stream.topics, password, stream.gcid) == ([f"{GCID}/{VIN}"], "id-1", GCID)
    topic = f"{GCID}/{VIN}"
    first = stream.handle(topic, message({bmw.SOC: entry(55, "percent", "2026-05-01T10:00:00Z"),
                                          bmw.CHARGING_STATUS: entry("CHARGINGACTIVE", None, "2026-05-01T10:00:00Z")}))
    # Only the range changed: the sample keeps the state of charge the stream said before.
    second = stream.handle(topic, message({bmw.RANGE: entry(180, "km", "2026-05-01T10:04:00Z")}))
    again = stream.handle(topic, message({bmw.RANGE: entry(180, "km", "2026-05-01T10:04:00Z")}))
    # A late message for an older time undoes nothing.
    late = stream.handle(topic, message({bmw.SOC: entry(40, "percent", "2026-05-01T09:00:00Z")}))
    assert (first.created, second.created, again.created) == (True, True, False)
    assert late.created is False
    samples = list(m.VehicleSample.objects.filter(vehicle=bmw_car).order_by("maker_timestamp"))
    assert [(s.soc, s.range_km, s.charging_state, s.source) for s in samples] == [
        (55, None, "CHARGING", "STREAM"), (55, 180, "CHARGING", "STREAM")]
    state = m.VehicleState.objects.get(vehicle=bmw_car)
    assert (state.soc, state.range_km, state.maker_timestamp) == (55, 180, datetime(2026, 5, 1, 10, 4, tzinfo=UTC))


def test_a_restarted_stream_starts_from_the_stored_state(bmw_car):
    topic = f"{GCID}/{VIN}"
    AccountStream(bmw_car.account_id, GCID, {VIN: bmw_car.pk}).handle(
        topic, message({bmw.SOC: entry(70, "percent", "2026-05-01T10:00:00Z")}))
    restarted = AccountStream(bmw_car.account_id, GCID, {VIN: bmw_car.pk})
    restarted.handle(topic, message({bmw.RANGE: entry(250, "km", "2026-05-01T11:00:00Z")}))
    state = m.VehicleState.objects.get(vehicle=bmw_car)
    assert (state.soc, state.range_km) == (70, 250)


def test_messages_the_stream_cannot_use_are_ignored(bmw_car):
    stream = AccountStream(bmw_car.account_id, GCID, {VIN: bmw_car.pk})
    assert stream.handle(f"{GCID}/{VIN}", b"not json") is None
    assert stream.handle(f"{GCID}/OTHERVIN", message({bmw.SOC: entry(50)}, vin="OTHERVIN")) is None
    assert stream.handle(f"{GCID}/{VIN}", message({"vehicle.cabin.door.status": entry("CLOSED")})) is None
    assert not m.VehicleSample.objects.filter(vehicle=bmw_car).exists()


def test_the_stream_is_configured_as_cardata_allows():
    from vehicles.management.commands import bmw_stream

    assert bmw_stream.KEEPALIVE <= 30
    assert (bmw.STREAM_HOST, bmw.STREAM_PORT) == ("customer.streaming-cardata.bmwgroup.com", 9000)


@pytest.fixture
def broker(tmp_path):
    """A local MQTT broker (mosquitto from apt) on a free loopback port; the test skips where there is none."""
    import shutil
    import socket
    import subprocess
    import time

    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        pytest.skip("no mosquitto here (apt-get install mosquitto)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_the_stream_command_over_a_real_broker(transactional_db, broker):
    """bmw_stream connects as the account (gcid / id_token), subscribes {gcid}/{vin}, and a published
    message becomes a sample."""
    import time

    import paho.mqtt.client as mqtt
    from django.contrib.auth import get_user_model

    from vehicles.management.commands.bmw_stream import Command

    driver = get_user_model().objects.create_user(username="bea", password="x-bea")
    account = services.maker_account_link(
        driver=driver, provider="bmw", external_id=GCID, label=GCID,
        tokens=Tokens(access_token="access-1", refresh_token="refresh-1", extra={"gcid": GCID, "id_token": "id-1"}),
        options={"client_id": CLIENT_ID, "container_id": CONTAINER})
    car = services.vehicle_upsert(account=account, discovered=bmw.discovered(VIN, {"brand": "BMW", "modelName": "i4"}))
    stop = threading.Event()
    serving = threading.Thread(target=Command().serve, args=(stop, {"host": "127.0.0.1", "port": broker,
                                                                     "no_tls": True, "reload": 0.2}))
    serving.start()
    publisher = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    publisher.connect("127.0.0.1", broker)
    publisher.loop_start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not m.VehicleSample.objects.filter(vehicle=car).exists():
            publisher.publish(f"{GCID}/{VIN}", message({bmw.SOC: entry(66, "percent", "2026-05-01T10:00:00Z")}),
                              qos=1).wait_for_publish(2)
            time.sleep(0.2)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        stop.set()
        serving.join(timeout=10)
    sample = m.VehicleSample.objects.get(vehicle=car)
    assert (sample.soc, sample.source) == (66, "STREAM")
    assert not serving.is_alive()


def test_the_sync_engine_links_and_polls_a_bmw_account(transactional_db, cardata, settings):
    """An approved device code through the engine's connect: tokens, container, the primary car; then a
    claimed poll, one REST call, one sample."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from vehicles import sync

    settings.VEHICLES_BMW_URLS = {"auth_url": cardata.url, "api_url": cardata.url}
    cardata.serve("POST", "/gcdm/oauth/token", 200, TOKEN_ANSWER)
    cardata.serve("GET", "/customers/containers", 200, {"containers": []})
    cardata.serve("POST", "/customers/containers", 201, {"containerId": CONTAINER})
    cardata.serve("GET", "/customers/vehicles/mappings", 200, [{"vin": VIN, "mappingType": "PRIMARY"}])
    cardata.serve("GET", f"/customers/vehicles/{VIN}/basicData", 200, {"brand": "BMW", "modelName": "i4 eDrive40",
                                                                       "constructionDate": "2023-02-01"})
    cardata.serve("GET", f"/customers/vehicles/{VIN}/telematicData", 200, {"telematicData": TELEMATICS})
    cardata.challenge = base64.urlsafe_b64encode(hashlib.sha256(b"v").digest()).rstrip(b"=").decode()
    code = bmw.DeviceCode(client_id=CLIENT_ID, device_code="device-1", user_code="X", verification_uri="",
                          verification_uri_complete="", expires_at=datetime.now(UTC) + timedelta(minutes=5),
                          interval=5, code_verifier="v")
    driver = get_user_model().objects.create_user(username="bert", password="x-bert")

    account = sync.account_connect(driver=driver, provider="bmw", credentials=code.as_dict())
    assert (account.external_id, account.options["container_id"], account.options["client_id"]) == (
        GCID, CONTAINER, CLIENT_ID)
    car = m.Vehicle.objects.get(account=account)
    assert (car.vin, car.model, car.year) == (VIN, "i4 eDrive40", 2023)

    with transaction.atomic():
        ids, claim = sync.vehicles_claim(provider="bmw")
    report = sync.vehicles_sync(vehicle_ids=ids, claim=claim)
    assert (report.polled, report.samples) == (1, 1)
    state = m.VehicleState.objects.get(vehicle=car)
    assert (state.soc, state.range_km, state.charging_state) == (82, 121, "CHARGING")
    telematics = [r for r in cardata.requests if r["path"].endswith("/telematicData")]
    assert len(telematics) == 1 and telematics[0]["query"] == {"containerId": [CONTAINER]}

"""The Kamereon model (seed 001): readings by name, actions that answer at once with a notificationId, and
the notifications that tell how each action went; beside them the driver's accounts and cars with how
fresh their data is and what quota is left (what drivers of other tools missed most)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from emsp.drivers import shapes
from emsp.drivers.plumbing import CarApiError, CarView, errors
from vehicles import selectors, services, sync
from vehicles.models import Provider
from vehicles.providers.base import ACTIONS, READINGS

TAG = "drivers: cars (Kamereon)"
# Readings the hub keeps as columns of the car's state; the others as the maker's latest answer.
FROM_STATE = {"battery-status": shapes.battery_status, "cockpit": shapes.cockpit, "location": shapes.location}
# The action that makes the car send a reading again, named in the answer when none was read yet.
REFRESHED_BY = {"battery-status": "refresh-battery-status", "hvac-status": "refresh-hvac-status",
                "location": "refresh-location", "lock-status": "refresh-lock-status"}

READING_EXAMPLE = {"data": {"type": "Car", "id": "VF1AG000000000001", "attributes": {
    "timestamp": "2026-12-07T05:00:00Z", "batteryLevel": 62, "batteryAutonomy": 201, "plugStatus": 1,
    "chargingStatus": 1.0, "chargingInstantaneousPower": 7.4, "estimated": False}},
    "meta": {"maker_timestamp": "2026-12-07T05:00:00Z", "fetched_at": "2026-12-07T05:00:03Z", "age_seconds": 42,
             "estimated": False, "poll_status": "OK",
             "account": {"status": "ACTIVE", "needs_relogin": False,
                         "quota": {"tokens_left": 41.0, "refills_at": "2026-12-08T00:00:00Z",
                                   "cooling_down": False, "cooldown_until": None}}}}
NOTIFICATIONS_EXAMPLE = [
    {"notificationId": "d47296c9-6ab6-4192-9db1-4712010538fb", "notifDate": "2022-04-28T14:36:17",
     "vin": "VF1AG000000000001", "personId": "7", "kmrUserId": "7", "actionType": "COMMAND_RESPONSE",
     "commandResponse": {"status": "PENDING"}, "commandType": "HVAC_START"},
    {"notificationId": "d47296c9-6ab6-4192-9db1-4712010538fb", "notifDate": "2022-04-28T14:36:24",
     "vin": "VF1AG000000000001", "personId": "7", "kmrUserId": "7", "actionType": "COMMAND_RESPONSE",
     "commandResponse": {"status": "COMPLETED"}, "commandType": "HVAC_START"},
]
VIN = OpenApiParameter("vin", str, OpenApiParameter.PATH, description="the car's VIN (one of the caller's cars)")


class ReadingView(CarView):
    @extend_schema(
        summary="Read a car", tags=[TAG], operation_id="api_vehicles_reading",
        parameters=[VIN, OpenApiParameter("reading", str, OpenApiParameter.PATH, enum=list(READINGS))],
        responses={200: inline_serializer("KamereonReading", {"data": serializers.JSONField(),
                                                              "meta": serializers.JSONField()}),
                   **errors(400, 401, 404, 503)},
        examples=[OpenApiExample("battery-status", value=READING_EXAMPLE, response_only=True)],
        description="The latest the hub knows of the reading, in Kamereon's `{\"data\": {\"type\", \"id\", "
                    "\"attributes\"}}`; `meta` says how old it is (`maker_timestamp`, `fetched_at`, `age_seconds`, "
                    "`estimated` when the SoC is computed from the charging power since the last reading) and the "
                    "maker account's state (`needs_relogin`, quota left, cool-down). A reading the car lacks is "
                    "400 naming the capability. A reading the sync has not stored yet is asked of the maker now, "
                    "within the account's quota (503 with Retry-After when none is left or the maker fails); "
                    "before the car's first sync it is 404 naming the action that asks for it.")
    def get(self, request, vin: str, reading: str):
        vehicle = self.vehicle(vin)
        if reading not in READINGS:
            raise CarApiError(404, f"no reading {reading!r}; readings: {', '.join(READINGS)}")
        if not vehicle.supports(reading):
            reason = (vehicle.unsupported or {}).get(reading)
            raise CarApiError(400, f"this car does not support the reading {reading}" + (f": {reason}" if reason else ""),
                              error="unsupported", capability=reading)
        view = selectors.vehicle_state_latest(vehicle=vehicle)
        if reading == "notification-settings":
            row = selectors.notification_settings_get(vehicle=vehicle)
            return Response(shapes.kamereon(vehicle, view, shapes.notification_settings(row),
                                            shapes.iso(getattr(row, "updated_at", None))))
        if reading in FROM_STATE:
            if view is None:
                raise self._not_read_yet(reading)
            return Response(shapes.kamereon(vehicle, view, FROM_STATE[reading](view), shapes.iso(view.fetched_at)))
        cached = selectors.vehicle_reading_cached(vehicle=vehicle, reading=reading)
        if cached:
            return Response(shapes.kamereon(vehicle, view, cached.get("data") or {}, cached.get("fetched_at")))
        if view is None:
            raise self._not_read_yet(reading)
        # Never read yet: asked of the maker now, within the account's quota (503 with Retry-After if none
        # is left), and kept as the car's latest of its kind.
        data = sync.reading_fetch(vehicle=vehicle, reading=reading)
        return Response(shapes.kamereon(vehicle, view, data, shapes.iso(timezone.now())))

    @staticmethod
    def _not_read_yet(reading: str) -> CarApiError:
        action = REFRESHED_BY.get(reading)
        hint = f"POST actions/{action} to ask the car" if action else "it is read at the car's next sync"
        return CarApiError(404, f"{reading} has not been read from this car yet: {hint}", error="not_read_yet",
                           capability=reading)


class ActionView(CarView):
    class ActionInputSerializer(serializers.Serializer):
        data = serializers.JSONField(required=False, help_text=(
            "Kamereon's `{\"type\": \"HvacStart\", \"attributes\": {...}}`; the attributes are the action's "
            "parameters (optional)."))

    @extend_schema(
        summary="Act on a car", tags=[TAG], request=ActionInputSerializer,
        parameters=[VIN, OpenApiParameter("action", str, OpenApiParameter.PATH, enum=list(ACTIONS))],
        responses={200: inline_serializer("ActionAccepted", {
            "notificationId": serializers.UUIDField(), "status": serializers.CharField(),
            "data": serializers.JSONField()}), **errors(400, 401, 404, 409, 415)},
        examples=[OpenApiExample("accepted", response_only=True, value={
            "notificationId": "d47296c9-6ab6-4192-9db1-4712010538fb", "status": "PENDING",
            "data": {"type": "HvacStart", "id": "d47296c9-6ab6-4192-9db1-4712010538fb", "attributes": {}}})],
        description="Answers at once with the `notificationId`; the action is sent to the maker after the "
                    "answer, and `GET .../notifications?notificationId=` tells how it went (PENDING, then "
                    "COMPLETED, FAILED or TIMEOUT). An action the car lacks, or preconditioning below the car's "
                    "battery floor, is 400 naming the capability; an account that needs a new login is 409.")
    def post(self, request, vin: str, action: str):
        vehicle = self.vehicle(vin)
        if action not in ACTIONS:
            raise CarApiError(404, f"no action {action!r}; actions: {', '.join(ACTIONS)}")
        body = self.body() if request.data else {}
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        params = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
        row = action_create(vehicle=vehicle, action=action, params=params)
        kind = data.get("type") if isinstance(data.get("type"), str) else action.title().replace("-", "")
        return Response({"notificationId": str(row.pk), "status": row.status,
                         "data": {"type": kind[:64], "id": str(row.pk), "attributes": params}})


def action_create(*, vehicle, action: str, params: dict | None = None):
    try:
        return services.vehicle_action_create(vehicle=vehicle, action=action, params=params)
    except services.VehicleError as exc:
        raise _with_makers_reason(exc, vehicle) from None


def _with_makers_reason(exc: services.VehicleError, vehicle) -> services.VehicleError:
    """BMW gives third parties no commands at all: an action refused on a BMW says so, not only that the car
    lacks it."""
    if exc.code == "unsupported" and vehicle.account.provider == Provider.BMW and not vehicle.supports(exc.capability):
        from vehicles.providers.bmw import READ_ONLY

        return services.VehicleError(f"{exc.message}: {READ_ONLY}", code=exc.code, capability=exc.capability)
    return exc


class NotificationsView(CarView):
    @extend_schema(
        summary="How a car's actions went", tags=[TAG],
        parameters=[VIN, OpenApiParameter("notificationId", str, description="one action's id")],
        responses={200: inline_serializer("Notification", {
            "notificationId": serializers.CharField(), "notifDate": serializers.CharField(),
            "vin": serializers.CharField(), "personId": serializers.CharField(), "kmrUserId": serializers.CharField(),
            "actionType": serializers.CharField(), "commandResponse": serializers.JSONField(),
            "commandType": serializers.CharField()}, many=True), **errors(401, 404)},
        examples=[OpenApiExample("an action that completed", value=NOTIFICATIONS_EXAMPLE, response_only=True)],
        description="Each action as a PENDING notification when asked, then one with how it ended "
                    "(COMPLETED, FAILED, TIMEOUT when the car never answered), oldest first. Also as POST, "
                    "as Kamereon's notification URL was called.")
    def get(self, request, vin: str):
        vehicle = self.vehicle(vin)
        action_id = request.query_params.get("notificationId")
        actions = selectors.vehicle_actions(vehicle=vehicle, action_id=action_id).select_related("vehicle")
        return Response(shapes.notifications(actions, str(self.driver.pk)))

    @extend_schema(exclude=True)
    def post(self, request, vin: str):
        return self.get(request, vin)


class CarsView(CarView):
    @extend_schema(
        summary="The driver's cars, with how fresh their data is", tags=["drivers: accounts"],
        operation_id="api_vehicles_list",
        responses={200: inline_serializer("CarsFreshness", {"accounts": serializers.JSONField(),
                                                            "vehicles": serializers.JSONField()}),
                   **errors(401)},
        description="Every maker account of the caller (status, `needs_relogin` with what to do, quota left "
                    "and when it refills, cool-down after a maker's quota error, token expiry) and every car in "
                    "the device shape of `POST /api/get-user-devices`, whose `sync` says how old its data is.")
    def get(self, request):
        accounts = [shapes.account_status(a) for a in selectors.maker_accounts_of_driver(driver=self.driver)]
        vehicles = [shapes.device(v, selectors.vehicle_state_latest(vehicle=v))
                    for v in selectors.vehicles_of_driver(driver=self.driver)]
        return Response({"accounts": accounts, "vehicles": vehicles})


class UserDevicesView(CarView):
    class UserDevicesInputSerializer(serializers.Serializer):
        email = serializers.CharField(required=False, help_text="sent by older clients; ignored")
        password = serializers.CharField(required=False, help_text="sent by older clients; ignored")

    @extend_schema(
        summary="The driver's cars, every maker", tags=["drivers: devices"], request=UserDevicesInputSerializer,
        responses={200: inline_serializer("Device", {
            "_id": serializers.CharField(), "electric_range": serializers.JSONField(),
            "device_type": serializers.CharField(), "user_id": serializers.CharField(),
            "device_id": serializers.CharField(), "id": serializers.CharField(), "model": serializers.CharField(),
            "year": serializers.IntegerField(allow_null=True), "brand": serializers.CharField(),
            "charging_state": serializers.JSONField(), "__v": serializers.IntegerField(),
            "capabilities": serializers.ListField(child=serializers.CharField()),
            "sync": serializers.JSONField()}, many=True), **errors(401)},
        examples=[OpenApiExample("a BMW", response_only=True, value=[{
            "_id": "12", "electric_range": {"distance": {"value": 121, "units": "KILOMETERS"}}, "device_type": "bmw",
            "user_id": "7", "device_id": "WBY7Z0000000000001", "id": "916ba1b2eeba4b4881ce9d829852d70e",
            "model": "i3s 94 REX", "year": 2018, "brand": "BMW",
            "charging_state": {"charge_percentage": "82", "state": "NOT_CHARGING", "type": "CONDUCTIVE",
                               "is_charger_connected": False}, "__v": 0, "capabilities": ["battery-status"],
            "sync": {"fetched_at": "2026-12-07T05:00:03Z", "age_seconds": 42, "estimated": False}}])],
        description="The seed's device record for each of the caller's cars (BMW, Renault, simulated...), with "
                    "`sync`: how old the data is and the account's quota and re-login state. An email and "
                    "password in the body (older clients) are ignored.")
    def post(self, request):
        vehicles = selectors.vehicles_of_driver(driver=self.driver)
        return Response([shapes.device(v, selectors.vehicle_state_latest(vehicle=v)) for v in vehicles])


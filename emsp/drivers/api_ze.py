"""The Renault ZE Services calls (seed 002) on their own paths and shapes, so that a client written for
that service works against the hub, for every car that supports each call; plus what it lacked: several
charging windows a day, and cancelling a scheduled preconditioning."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from emsp import throttle
from emsp.accounts import AccountError
from emsp.drivers import accounts, ze
from emsp.drivers.api_cars import action_create
from emsp.drivers.plumbing import CarApiError, CarView, CurlFormJsonParser, car_exception_handler, errors
from emsp.drivers.shapes import notification_settings
from emsp.parsers import StrictJSONParser
from vehicles import selectors, services

TAG = "drivers: ZE Services"
VIN = OpenApiParameter("VIN", str, OpenApiParameter.PATH, description="the car's VIN (one of the caller's cars)")
MONTHS = [OpenApiParameter("begin", str, description="first month, MMYY (October 2016 is 1016); default this month"),
          OpenApiParameter("end", str, description="last month, MMYY; default `begin`")]
ACCEPTED = inline_serializer("ZeAccepted", {"notificationId": serializers.UUIDField()})
JSON = serializers.JSONField()
CHANNEL = "EMAIL, SMS or NONE"


def _account_error(exc: AccountError) -> CarApiError:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return CarApiError(exc.status_code, exc.message, headers=headers)


def _require(vehicle, *capabilities: str) -> None:
    """Any one of `capabilities` will do; else a 400 naming the first."""
    if not any(vehicle.supports(c) for c in capabilities):
        raise CarApiError(400, f"this car does not support {capabilities[0]}", error="unsupported",
                          capability=capabilities[0])


class ZeLoginView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    parser_classes = [StrictJSONParser, CurlFormJsonParser]

    class ZeLoginInputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    def get_exception_handler(self):
        return car_exception_handler

    @extend_schema(
        summary="Log in (ZE Services)", tags=[TAG], request=ZeLoginInputSerializer, auth=[],
        responses={200: inline_serializer("ZeLogin", {"token": serializers.CharField(),
                                                      "refresh_token": serializers.CharField(), "user": JSON}),
                   **errors(400, 401, 429, 415)},
        examples=[OpenApiExample("logged in", response_only=True, value={
            "token": "eyJhbGciOi...", "refresh_token": "eyJhbGciOi...",
            "user": {"id": "7", "locale": "en_GB", "country": "GB", "timezone": "Europe/London",
                     "email": "you@example.com", "first_name": "Terence", "last_name": "Eden",
                     "phone_number": "+447700900123",
                     "vehicle_details": {"timezone": "Europe/London", "VIN": "VF1AG000000000001",
                                         "activation_code": "", "phone_number": "+447700900123"},
                     "scopes": ["BATTERY_CHARGE_STATUS", "AC_REMOTE_CONTROL"], "active_account": "7",
                     "associated_vehicles": [{"VIN": "VF1AG000000000001", "activation_code": "", "user_id": "7"}],
                     "gdc_uid": "7"}})],
        description="A driver's login, answered as the ZE Services did: `token` is the access token (a JWT whose "
                    "`exp` says when it expires), `refresh_token` renews it at `/api/user/token/refresh` as often "
                    "as needed. Failed logins are throttled as the portal's are.")
    def post(self, request):
        serializer = self.ZeLoginInputSerializer(data=request.data if isinstance(request.data, dict) else {})
        serializer.is_valid(raise_exception=True)
        try:
            pair, session = accounts.driver_login(client_address=throttle.client_address(request),
                                                  **serializer.validated_data)
        except AccountError as exc:
            raise _account_error(exc) from None
        return Response({"token": pair.access_token, "refresh_token": pair.refresh_token,
                         "user": _user(session.user)})


def _user(user) -> dict:
    driver = user.driver
    vehicles = list(selectors.vehicles_of_driver(driver=user))
    first = vehicles[0] if vehicles else None
    uid = str(user.pk)
    return {
        "id": uid, "locale": driver.locale, "country": driver.country, "timezone": driver.timezone,
        "email": user.email, "first_name": user.first_name, "last_name": user.last_name,
        "phone_number": driver.phone_number,
        "vehicle_details": None if first is None else {"timezone": driver.timezone, "VIN": first.vin,
                                                       "activation_code": "", "phone_number": driver.phone_number},
        "scopes": ze.scopes(first), "active_account": uid,
        "associated_vehicles": [{"VIN": v.vin, "activation_code": "", "user_id": uid} for v in vehicles],
        "gdc_uid": uid,
    }


class ZeTokenRefreshView(APIView):
    # The old clients send their expired token as Bearer too: it must not stop the refresh.
    authentication_classes: list = []
    permission_classes: list = []
    parser_classes = [StrictJSONParser, CurlFormJsonParser]

    class ZeRefreshInputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=4096, required=False, help_text="the expired token (ignored)")
        refresh_token = serializers.CharField(max_length=4096)

    def get_exception_handler(self):
        return car_exception_handler

    @extend_schema(
        summary="A new token (ZE Services)", tags=[TAG], request=ZeRefreshInputSerializer, auth=[],
        responses={200: inline_serializer("ZeRefreshed", {"token": serializers.CharField()}), **errors(400, 401, 429, 415)},
        description="A new access token from the `refresh_token` of the login, without the password; the "
                    "refresh token stays valid (use it again next time) until logout or "
                    "`/api/auth/v1/refresh` rotates it.")
    def post(self, request):
        serializer = self.ZeRefreshInputSerializer(data=request.data if isinstance(request.data, dict) else {})
        serializer.is_valid(raise_exception=True)
        try:
            token = accounts.driver_access_renew(refresh_token=serializer.validated_data["refresh_token"],
                                                 client_address=throttle.client_address(request))
        except AccountError as exc:
            raise _account_error(exc) from None
        return Response({"token": token})


class BatteryView(CarView):
    @extend_schema(
        summary="Battery (ZE Services)", tags=[TAG], parameters=[VIN],
        responses={200: inline_serializer("ZeBattery", {
            "charging": serializers.BooleanField(), "plugged": serializers.BooleanField(),
            "charge_level": serializers.IntegerField(allow_null=True),
            "remaining_range": serializers.FloatField(allow_null=True), "last_update": serializers.IntegerField(),
            "charging_point": serializers.CharField(required=False),
            "remaining_time": serializers.IntegerField(required=False), "estimated": serializers.BooleanField()}),
            **errors(400, 401, 404)},
        examples=[OpenApiExample("plugged", response_only=True, value={
            "charging": False, "plugged": True, "charge_level": 100, "remaining_range": 124.0,
            "last_update": 1476472742000, "charging_point": "INVALID", "estimated": False})],
        description="`remaining_range` in km, `last_update` the car's own time in Unix milliseconds, "
                    "`charging_point` only when plugged, `remaining_time` (minutes) only when charging. "
                    "`estimated`: the charge level is the hub's estimate from the charging power since the "
                    "car's last reading.")
    def get(self, request, vin: str):
        vehicle = self.vehicle(vin)
        _require(vehicle, "battery-status")
        view = selectors.vehicle_state_latest(vehicle=vehicle)
        if view is None:
            raise CarApiError(404, "the battery has not been read from this car yet", error="not_read_yet",
                              capability="battery-status")
        return Response(ze.battery(vehicle, view))


class AirConditioningView(CarView):
    @extend_schema(
        summary="Precondition now (ZE Services)", tags=[TAG], parameters=[VIN], request=None,
        responses={200: ACCEPTED, **errors(400, 401, 404, 409)},
        description="Starts preconditioning; refused (400, naming `hvac-start`) below the car's battery floor "
                    "(45 % on a ZOE). Its outcome: `GET .../air-conditioning/last` or the Kamereon notifications.")
    def post(self, request, vin: str):
        action = action_create(vehicle=self.vehicle(vin), action="hvac-start")
        return Response({"notificationId": str(action.pk)})

    @extend_schema(
        summary="Preconditioning history (ZE Services)", tags=[TAG], parameters=[VIN, *MONTHS],
        responses={200: inline_serializer("ZePrecondition", {
            "date": serializers.IntegerField(), "type": serializers.CharField(), "result": serializers.CharField()},
            many=True), **errors(400, 401, 404)},
        description="Most recent first: `USER_REQUEST` (asked through the hub) and `CAR_NOTIFICATION` (the car's "
                    "own, where the maker tells them), each `SUCCESS` or `ERROR`.")
    def get(self, request, vin: str):
        vehicle = self.vehicle(vin)
        _require(vehicle, "hvac-start", "hvac-history")
        since, until = ze.month_range(request.query_params.get("begin"), request.query_params.get("end"))
        return Response(ze.precondition_history(vehicle, since, until))


class AirConditioningLastView(CarView):
    @extend_schema(
        summary="Last preconditioning (ZE Services)", tags=[TAG], parameters=[VIN],
        responses={200: inline_serializer("ZePreconditionLast", {
            "date": serializers.IntegerField(), "type": serializers.CharField(), "result": serializers.CharField()}),
            **errors(400, 401, 404)})
    def get(self, request, vin: str):
        vehicle = self.vehicle(vin)
        _require(vehicle, "hvac-start", "hvac-history")
        history = ze.precondition_history(vehicle)
        if not history:
            raise CarApiError(404, "this car has not been preconditioned yet")
        return Response(history[0])


class AirConditioningSchedulerView(CarView):
    class ZeSchedulerInputSerializer(serializers.Serializer):
        start = serializers.CharField(max_length=4, help_text="HHMM: when preconditioning starts")
        weekdays = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=6), required=False,
                                         help_text="0 (Monday) to 6; none: once, at the next `start`")

    SCHEDULE = inline_serializer("ZeScheduledPrecondition", {
        "start": serializers.CharField(allow_null=True), "weekdays": serializers.ListField(child=serializers.IntegerField()),
        "active": serializers.BooleanField()})

    @extend_schema(summary="Precondition later (ZE Services)", tags=[TAG], parameters=[VIN],
                   request=ZeSchedulerInputSerializer, responses={200: SCHEDULE, **errors(400, 401, 404, 409, 415)},
                   description="`{\"start\": \"1753\"}`: preconditioning starts at 17:53 (once, or on `weekdays`); "
                               "it replaces the car's previous one.")
    def post(self, request, vin: str):
        vehicle = self.vehicle(vin)
        serializer = self.ZeSchedulerInputSerializer(data=self.body())
        serializer.is_valid(raise_exception=True)
        row = services.precondition_schedule_set(vehicle=vehicle, start=serializer.validated_data["start"],
                                                 weekdays=serializer.validated_data.get("weekdays", []))
        return Response(_precondition(row))

    @extend_schema(summary="The scheduled preconditioning", tags=[TAG], parameters=[VIN],
                   responses={200: SCHEDULE, **errors(400, 401, 404)})
    def get(self, request, vin: str):
        vehicle = self.vehicle(vin)
        _require(vehicle, "hvac-schedule")
        return Response(_precondition(selectors.precondition_schedules(vehicle=vehicle, active_only=True).first()))

    @extend_schema(summary="Cancel the scheduled preconditioning (which the ZE Services could not)", tags=[TAG],
                   parameters=[VIN], responses={200: inline_serializer("ZePreconditionCancelled", {
                       "cancelled": serializers.IntegerField()}), **errors(400, 401, 404, 409)})
    def delete(self, request, vin: str):
        vehicle = self.vehicle(vin)
        _require(vehicle, "hvac-schedule")
        return Response({"cancelled": services.precondition_schedule_cancel(vehicle=vehicle)})


def _precondition(row) -> dict:
    if row is None:
        return {"start": None, "weekdays": [], "active": False}
    return {"start": row.start, "weekdays": [d for d in range(7) if row.weekdays & (1 << d)],
            "active": row.enabled and not row.cancelled}


class ChargeView(CarView):
    @extend_schema(summary="Start charging now (ZE Services)", tags=[TAG], parameters=[VIN], request=None,
                   responses={200: ACCEPTED, **errors(400, 401, 404, 409)},
                   description="Charges now, overriding the charging schedule.")
    def post(self, request, vin: str):
        action = action_create(vehicle=self.vehicle(vin), action="charging-start")
        return Response({"notificationId": str(action.pk)})


class ChargeHistoryView(CarView):
    @extend_schema(
        summary="Charging history (ZE Services)", tags=[TAG], parameters=[VIN, *MONTHS],
        responses={200: inline_serializer("ZeCharge", {
            "date": serializers.IntegerField(), "type": serializers.CharField(),
            "charging_point": serializers.CharField(), "charge_level": serializers.IntegerField(allow_null=True),
            "remaining_autonomy": serializers.IntegerField(allow_null=True),
            "remaining_time": serializers.IntegerField(required=False)}, many=True), **errors(400, 401, 404)},
        description="`START_NOTIFICATION` and `END_NOTIFICATION` entries, most recent first; "
                    "`remaining_autonomy` in km, `remaining_time` in milliseconds.")
    def get(self, request, vin: str):
        vehicle = self.vehicle(vin)
        _require(vehicle, "charge-history", "battery-status")
        since, until = ze.month_range(request.query_params.get("begin"), request.query_params.get("end"))
        return Response(ze.charge_history(vehicle, since, until))


class NotificationSettingsView(CarView):
    class ZeNotificationSettingsSerializer(serializers.Serializer):
        battery_status = serializers.CharField(required=False, help_text=CHANNEL)
        charge_start = serializers.CharField(required=False, help_text=CHANNEL)
        charge_end = serializers.CharField(required=False, help_text=CHANNEL)
        charge_problem = serializers.CharField(required=False, help_text=CHANNEL)
        low_battery = serializers.CharField(required=False, help_text=CHANNEL)
        low_battery_reminder = serializers.CharField(required=False, help_text=CHANNEL)
        do_not_disturb = serializers.JSONField(required=False, allow_null=True,
                                               help_text='null or {"start": "1710", "end": "1811"}')

    @extend_schema(summary="Notification settings (ZE Services)", tags=[TAG], parameters=[VIN],
                   responses={200: ZeNotificationSettingsSerializer, **errors(400, 401, 404)})
    def get(self, request, vin: str):
        vehicle = self.vehicle(vin)
        _require(vehicle, "notification-settings")
        return Response(notification_settings(selectors.notification_settings_get(vehicle=vehicle)))

    @extend_schema(summary="Set the notification settings (ZE Services)", tags=[TAG], parameters=[VIN],
                   request=ZeNotificationSettingsSerializer,
                   responses={200: ZeNotificationSettingsSerializer, **errors(400, 401, 404, 415)},
                   description="Keys not sent keep their value; `do_not_disturb` null ends the quiet time.")
    def put(self, request, vin: str):
        vehicle = self.vehicle(vin)
        _require(vehicle, "notification-settings")
        row = services.notification_settings_set(vehicle=vehicle, values=self.body())
        return Response(notification_settings(row))


SCHEDULE_ANSWER = inline_serializer("ZeChargeSchedule", {
    "enabled": serializers.BooleanField(), "optimized_charge": serializers.BooleanField(), "schedule": JSON,
    "deployed": serializers.BooleanField(), "deployed_at": serializers.CharField(allow_null=True)})
SCHEDULE_EXAMPLE = OpenApiExample("two windows on Monday", response_only=True, value={
    "enabled": False, "optimized_charge": False, "deployed": False, "deployed_at": None,
    "schedule": {"mon": [{"start": "0100", "duration": "0115"}, {"start": "1800", "duration": "0400"}],
                 "tue": {"start": "0200", "duration": "0015"}}})
SCHEDULE_BODY = inline_serializer("ZeChargeScheduleInput", {
    "optimized_charge": serializers.BooleanField(required=False), "enabled": serializers.BooleanField(required=False),
    **{day: serializers.JSONField(required=False, help_text='{"start": "HHMM", "duration": "HHMM"} or a list of them')
       for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}})


class ChargeSchedulerOffboardView(CarView):
    @extend_schema(summary="Create the charging schedule (ZE Services)", tags=[TAG], parameters=[VIN],
                   request=SCHEDULE_BODY, responses={200: SCHEDULE_ANSWER, **errors(400, 401, 404, 415)},
                   examples=[SCHEDULE_EXAMPLE],
                   description="Per weekday `{\"start\": \"0100\", \"duration\": \"0115\"}`, or a list of them: "
                               "several windows a day, never overlapping. Starts on :00/:15/:30/:45, durations "
                               "in 15-minute steps. Days not named have no window. Deploy it to send it to the car.")
    def put(self, request, vin: str):
        vehicle = self.vehicle(vin)
        body = self.body()
        windows = ze.windows_of(body)
        if windows is None:
            raise CarApiError(400, 'name at least one day: {"mon": {"start": "0100", "duration": "0115"}, ...}')
        row = services.charging_schedule_set(vehicle=vehicle, windows=windows,
                                             optimized_charge=_bool(body, "optimized_charge"),
                                             enabled=_bool(body, "enabled"))
        return Response(ze.schedule(selectors.charging_schedule_get(vehicle=row.vehicle)))


def _bool(body: dict, key: str) -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise CarApiError(400, f"{key} must be true or false")
    return value


class ChargeSchedulerOnboardView(CarView):
    @extend_schema(summary="The charging schedule (ZE Services)", tags=[TAG], parameters=[VIN],
                   responses={200: SCHEDULE_ANSWER, **errors(400, 401, 404)}, examples=[SCHEDULE_EXAMPLE],
                   description="A day with one window shows it as an object, as the old service did; a day "
                               "with several, as a list. `deployed`: the car has confirmed these windows.")
    def get(self, request, vin: str):
        vehicle = self.vehicle(vin)
        _require(vehicle, "charge-schedule")
        return Response(ze.schedule(selectors.charging_schedule_get(vehicle=vehicle)))

    @extend_schema(summary="Enable or disable the charging schedule (ZE Services)", tags=[TAG], parameters=[VIN],
                   request=SCHEDULE_BODY, responses={200: SCHEDULE_ANSWER, **errors(400, 401, 404, 415)},
                   description="`{\"enabled\": false}`: the car charges whenever plugged in. Days may be sent "
                               "too, as to offboard.")
    def put(self, request, vin: str):
        vehicle = self.vehicle(vin)
        _require(vehicle, "charge-schedule")
        body = self.body()
        windows = ze.windows_of(body)
        enabled = _bool(body, "enabled")
        if windows is not None:
            services.charging_schedule_set(vehicle=vehicle, windows=windows, enabled=enabled,
                                           optimized_charge=_bool(body, "optimized_charge"))
        elif enabled is not None:
            services.charging_schedule_enable(vehicle=vehicle, enabled=enabled)
        else:
            raise CarApiError(400, 'send {"enabled": true|false} (and days, if the windows change)')
        return Response(ze.schedule(selectors.charging_schedule_get(vehicle=vehicle)))


class ChargeSchedulerDeployView(CarView):
    @extend_schema(summary="Send the charging schedule to the car (ZE Services)", tags=[TAG], parameters=[VIN],
                   request=None, responses={200: ACCEPTED, **errors(400, 401, 404, 409)},
                   description="An action: `deployed` turns true when the car confirms.")
    def post(self, request, vin: str):
        vehicle = self.vehicle(vin)
        _require(vehicle, "charge-schedule")
        action = services.charging_schedule_deploy(vehicle=vehicle)
        return Response({"notificationId": str(action.pk)})

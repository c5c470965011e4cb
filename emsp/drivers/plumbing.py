"""The drivers' car endpoints' plumbing: who calls (a driver, by Bearer), how errors read (plain JSON,
`{"status", "error", "message"}` and the `capability` an unsupported call names), and the bodies the
older clients send (JSON:API, and JSON posted by curl without a Content-Type, which curl then calls a form).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from drf_spectacular.utils import inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from emsp.drivers.auth import DriverAuthentication, DriverCaller
from emsp.parsers import StrictJSONParser, bounded_body
from locations.json_input import JsonRejected, json_loads
from vehicles import selectors
from vehicles.models import Vehicle
from vehicles.services import VehicleError

logger = logging.getLogger(__name__)

# VehicleError.code -> HTTP status (vehicles.services documents the codes).
STATUS_OF = {"invalid": 400, "unsupported": 400, "forbidden": 403, "not_found": 404, "conflict": 409,
             "relogin": 409, "unavailable": 503}


class CarApiError(exceptions.APIException):
    def __init__(self, status_code: int, message: str, *, error: str = "", capability: str = "",
                 headers: dict | None = None):
        self.status_code = status_code
        self.message = message
        self.error = error or {400: "invalid", 401: "unauthorized", 404: "not_found", 409: "conflict",
                               410: "gone", 429: "too_many_requests", 503: "unavailable"}.get(status_code, "error")
        self.capability = capability
        self.headers = headers or {}
        super().__init__(message)


def from_vehicle_error(exc: VehicleError) -> CarApiError:
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(max(1, int(retry_after)))} if retry_after else None
    return CarApiError(STATUS_OF.get(exc.code, 400), exc.message, error=exc.code, capability=exc.capability,
                       headers=headers)


def error_body(status_code: int, error: str, message: str, capability: str = "") -> dict:
    body = {"status": status_code, "error": error, "message": message}
    if capability:
        body["capability"] = capability
    return body


def car_exception_handler(exc: Exception, context: dict) -> Response:
    if isinstance(exc, VehicleError):
        exc = from_vehicle_error(exc)
    if isinstance(exc, CarApiError):
        return Response(error_body(exc.status_code, exc.error, exc.message, exc.capability),
                        status=exc.status_code, headers=exc.headers)
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            message = "; ".join(f"{key}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
                                for key, value in detail.items())
        else:
            message = " ".join(map(str, detail)) if isinstance(detail, list) else str(detail)
        return Response(error_body(400, "invalid", message), status=400)
    if isinstance(exc, Http404):
        return Response(error_body(404, "not_found", "not found"), status=404)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body(413, "too_large", str(exc)), status=413)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return Response(error_body(401, "unauthorized", str(exc.detail)), status=401,
                        headers={"WWW-Authenticate": 'Bearer realm="evhub drivers"'})
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        return Response(error_body(429, "too_many_requests", f"try again in {wait} seconds"), status=429,
                        headers={"Retry-After": str(wait)})
    if isinstance(exc, exceptions.APIException):
        return Response(error_body(exc.status_code, exc.default_code, str(exc.detail)), status=exc.status_code)
    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
    return Response(error_body(500, "server_error", "Internal Server Error"), status=500)


class JsonApiParser(StrictJSONParser):
    """Kamereon's actions are posted as `application/vnd.api+json`."""

    media_type = "application/vnd.api+json"


class CurlFormJsonParser(BaseParser):
    """The ZE Services examples post JSON with `curl -d`/`--data-binary` and no Content-Type, which curl
    sends as a form: the body is JSON all the same."""

    media_type = "application/x-www-form-urlencoded"

    def parse(self, stream, media_type=None, parser_context=None):
        body = bounded_body(stream, "a body")
        if not body.strip():
            return {}
        try:
            return json_loads(body)
        except JsonRejected as exc:
            raise exceptions.ParseError(f"send the body as JSON: {exc}") from None


class CarView(APIView):
    """Base of the drivers' car endpoints: a driver's Bearer token, plain-JSON errors, JSON bodies."""

    authentication_classes = [DriverAuthentication]
    permission_classes: list = []
    parser_classes = [StrictJSONParser, JsonApiParser, CurlFormJsonParser]

    def get_exception_handler(self):
        return car_exception_handler

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not isinstance(request.auth, DriverCaller):
            raise exceptions.NotAuthenticated("send 'Authorization: Bearer <access token>' of a driver "
                                              "(POST /api/auth/v1/login or /api/user/login)")

    @property
    def driver(self):
        return self.request.user

    def vehicle(self, vin: str) -> Vehicle:
        """The caller's car; another driver's is a 404, as one that does not exist."""
        return selectors.vehicle_of_driver(driver=self.driver, vin=vin)

    def body(self) -> dict[str, Any]:
        data = self.request.data
        if not isinstance(data, dict):
            raise CarApiError(400, "the body must be a JSON object")
        return data


CAR_ERROR = inline_serializer("CarError", {
    "status": serializers.IntegerField(), "error": serializers.CharField(), "message": serializers.CharField(),
    "capability": serializers.CharField(required=False),
})


def errors(*codes: int) -> dict:
    """The error answers of an endpoint; 429 always, since every caller's credential is throttled."""
    return {code: CAR_ERROR for code in (*codes, 429)}

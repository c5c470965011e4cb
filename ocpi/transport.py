"""OCPI transport (transport_and_format.asciidoc): the envelope, the base view, headers, paging.

Every OCPI view derives from `OcpiView`, which authenticates the caller, turns every error (ours, a
malformed request, a bug) into the envelope with the right HTTP status, and adds the routing headers.
"""

import logging
import uuid
from datetime import datetime

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from locations.json_input import JsonRejected, json_loads
from ocpi.auth import Caller, caller_authenticate, header_token, token_candidates
from ocpi.routing import Route, route_caller, route_forward, route_headers, route_target
from ocpi.status import (
    CLIENT_API_ERROR, CLIENT_ERROR, HEADER_VALUE, INVALID_PARAMETERS, NO_MATCHING_ENDPOINTS, NOT_ENOUGH_INFORMATION, SERVER_ERROR,
    SUCCESS, UNKNOWN_LOCATION, UNKNOWN_TOKEN, UNSUPPORTED_VERSION, V211, V221, VERSIONS, OcpiError, ocpi_timestamp,
)
from ocpi.paging import Page, page_headers, page_keys, page_params, page_total

# Callers, status codes and paging live in ocpi.auth, ocpi.status and ocpi.paging; the OCPI modules import
# them from here.
__all__ = [
    "CLIENT_API_ERROR", "CLIENT_ERROR", "INVALID_PARAMETERS", "NO_MATCHING_ENDPOINTS", "NOT_ENOUGH_INFORMATION",
    "SERVER_ERROR", "SUCCESS", "UNKNOWN_LOCATION", "UNKNOWN_TOKEN", "UNSUPPORTED_VERSION", "V211", "V221", "VERSIONS",
    "Caller", "EncodedList", "OcpiError", "OcpiView", "Page", "caller_authenticate", "envelope", "header_token",
    "json_body", "json_text", "ocpi_headers_middleware", "ocpi_timestamp", "page_headers", "page_params",
    "page_keys", "page_total", "public_url", "token_candidates",
]

logger = logging.getLogger(__name__)


class _Encoder(DjangoJSONEncoder):
    def default(self, o):
        if isinstance(o, datetime):
            return ocpi_timestamp(o)
        return super().default(o)


# One encoder for every response (json.dumps with `cls` makes one per call), compact and ASCII. No cycle
# check: what is encoded comes from the database or a request, never a cycle (one would end as a 500 anyway).
_ENCODER = _Encoder(separators=(",", ":"), check_circular=False)


def json_text(value) -> str:
    """`value` as the envelope writes it."""
    return _ENCODER.encode(value)


class EncodedList(list):
    """The items of a list already as `json_text`, for `envelope` to join. A long list encoded item by
    item need not be all alive at once (a page of 1000 locations is over 10,000 dicts and lists), and
    encodes a fifth faster than in one piece."""


def envelope(data=None, *, status_code: int = SUCCESS, message: str = "Success", http_status: int = 200,
             headers: dict | None = None) -> HttpResponse:
    body = {"data": data, "status_code": status_code, "status_message": message, "timestamp": ocpi_timestamp()}
    if data is None:
        del body["data"]  # optional in the envelope; absent rather than null
    if isinstance(data, EncodedList):
        del body["data"]  # first in the object: `{"data":[...],` then the rest
        text = f'{{"data":[{",".join(data)}],{json_text(body)[1:]}'
    else:
        text = json_text(body)
    response = HttpResponse(text, status=http_status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# --- the base view ----------------------------------------------------------------------------------

class OcpiView(View):
    """Base of every OCPI endpoint. Subclasses set `module` and write get/put/patch/post/delete.

    `version` comes from the URL configuration (as_view(version=...)); `routed` views (functional
    modules) answer with the OCPI-from/to routing headers; `allow_token_a` only on credentials and
    versions.
    """

    version: str = V221
    module: str = ""
    interface: str = ""  # "SENDER" / "RECEIVER": where a request for a party behind another peer is forwarded
    routed: bool = True
    allow_token_a: bool = False
    route: Route | None = None  # ocpi.routing: the caller's party, and who answers (a tenant's `cpo`, or a peer)

    @classmethod
    def as_view(cls, **initkwargs):
        # Peers authenticate with a token in a header, never a cookie: CSRF does not apply (and would 403 them).
        return csrf_exempt(super().as_view(**initkwargs))

    def dispatch(self, request, *args, **kwargs):
        try:
            if request.method.lower() not in self.http_method_names or not hasattr(self, request.method.lower()):
                raise OcpiError(f"Method {request.method} is not allowed on this endpoint", http_status=405)
            self.caller = caller_authenticate(request, allow_token_a=self.allow_token_a)
            if self.routed:
                self.route = route_caller(request=request, caller=self.caller)
                route_target(request=request, route=self.route, caller=self.caller, version=self.version,
                             module=self.module, interface=self.interface)
            if self.route is not None and self.route.peer is not None:
                response = route_forward(request=request, route=self.route, module=self.module)
            else:
                response = super().dispatch(request, *args, **kwargs)
        except OcpiError as error:
            response = envelope(error.data, status_code=error.status_code, message=error.message,
                                http_status=error.http_status, headers=error.headers)
        except RequestDataTooBig:
            response = envelope(status_code=CLIENT_ERROR, message="Request body too large", http_status=413)
        except Exception:  # a bug: logged with its trace, answered without one
            logger.exception("OCPI %s %s failed", request.method, request.path)
            response = envelope(status_code=SERVER_ERROR, message="Internal server error", http_status=500)
        if self.routed:
            route_headers(response=response, route=self.route)
        return response

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise OcpiError(f"Method {request.method} is not allowed on this endpoint", http_status=405)


def json_body(request) -> dict:
    """The request's JSON object, or a 2001 error saying what is wrong with it."""
    try:
        data = json_loads(request.body or b"null")
    except JsonRejected as exc:  # not UTF-8, lone surrogates, NaN, too deep: never stored, never a 500
        raise OcpiError(f"Body is not valid JSON: {exc}", status_code=INVALID_PARAMETERS) from None
    if not isinstance(data, dict):
        raise OcpiError("Body must be a JSON object", status_code=INVALID_PARAMETERS)
    return data


def public_url(path: str) -> str:
    """An absolute URL of ours as peers must use it (EVHUB_BASE_URL), whatever host the request named."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


# --- request ids ----------------------------------------------------------------------------------------



def ocpi_headers_middleware(get_response):
    """Echo X-Request-ID and X-Correlation-ID on OCPI paths, as the peer sent them (or new ones)."""

    def middleware(request):
        response = get_response(request)
        if request.path.startswith("/ocpi/"):
            request_id = request.headers.get("X-Request-ID", "")
            if HEADER_VALUE.fullmatch(request_id):
                response["X-Request-ID"] = request_id
            elif not response.has_header("X-Request-ID"):
                response["X-Request-ID"] = str(uuid.uuid4())
            correlation_id = request.headers.get("X-Correlation-ID", "")
            response["X-Correlation-ID"] = (
                correlation_id if HEADER_VALUE.fullmatch(correlation_id) else response["X-Request-ID"]
            )
        return response

    return middleware

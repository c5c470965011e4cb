"""The portal contract's plumbing: its envelope, its errors, and its two kinds of caller.

Every response is `{"status": <http status>, "data": ..., "message": "..."}` with the same HTTP status;
errors use it too (never a stack trace). `Basic <client key>` identifies a trusted front end,
`Bearer <access token>` a CPO user, whose CPO scopes every read and write.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from emsp import throttle
from emsp.accounts import signed_by_us
from emsp.models import PortalClient, PortalSession
from emsp.services import portal_client_authenticate
from locations.models import Cpo

logger = logging.getLogger(__name__)

MESSAGES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def envelope(data: Any = None, *, message: str = "Success", status_code: int = 200, headers=None) -> Response:
    body = {"status": status_code, "data": [] if data is None else data, "message": message}
    return Response(body, status=status_code, headers=headers)


class PortalError(exceptions.APIException):
    """An error with the contract's envelope: `raise PortalError(404, "Location not found")`."""

    def __init__(self, status_code: int, message: str, data: Any = None, headers: dict | None = None):
        self.status_code = status_code
        self.message = message
        self.data = data
        self.headers = headers or {}
        super().__init__(message)


def _field_errors(detail: Any, prefix: str = "") -> list[dict]:
    """DRF's nested error detail as a flat list of {"field", "message"}."""
    if isinstance(detail, dict):
        return [e for key, value in detail.items()
                for e in _field_errors(value, f"{prefix}.{key}" if prefix else str(key))]
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [{"field": prefix or "non_field_errors", "message": str(item)} for item in detail]
        return [e for index, item in enumerate(detail) for e in _field_errors(item, f"{prefix}[{index}]")]
    return [{"field": prefix or "non_field_errors", "message": str(detail)}]


def portal_exception_handler(exc: Exception, context: dict) -> Response:
    if isinstance(exc, PortalError):
        return envelope(exc.data, message=exc.message, status_code=exc.status_code, headers=exc.headers)
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return envelope(errors, message=f"Bad Request: {summary}", status_code=400)
    if isinstance(exc, Http404):
        return envelope(message="Not Found", status_code=404)
    if isinstance(exc, RequestDataTooBig):
        return envelope(message=f"Payload Too Large: {exc}", status_code=413)
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        return envelope(message=f"Too many requests: try again in {wait} seconds", status_code=429,
                        headers={"Retry-After": str(wait)})
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return envelope(message=f"Unauthorized: {exc.detail}", status_code=401,
                        headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, exceptions.APIException):
        code = exc.status_code
        return envelope(message=f"{MESSAGES.get(code, 'Error')}: {exc.detail}", status_code=code)
    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
    return envelope(message="Internal Server Error", status_code=500)


# --- Callers -----------------------------------------------------------------------------------------

def _credentials(request, keyword: str) -> str | None:
    parts = get_authorization_header(request).split()
    if not parts or parts[0].lower() != keyword.lower().encode():
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed(f"the Authorization header must be '{keyword} <token>'")
    try:
        return parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed("the token must be ASCII") from None


def check_guessing(kind: str, request) -> str | None:
    """The client's address, unless it has sent too many wrong credentials of `kind` (then 429): checked
    before the credential, so that a right guess from a blocked address gets no further than a wrong one."""
    address = throttle.client_address(request)
    wait = throttle.guessing_blocked(kind, address)
    if wait:
        raise exceptions.Throttled(wait=wait, detail="too many wrong credentials from this address")
    return address


class ClientKeyAuthentication(BaseAuthentication):
    """`Authorization: Basic <client key>`: a front end issued a key by the hub's operators."""

    def authenticate(self, request):
        key = _credentials(request, "Basic")
        if key is None:
            return None
        address = check_guessing(throttle.CLIENT_KEY, request)
        client = portal_client_authenticate(key=key)
        if client is None:
            throttle.guess_failed(throttle.CLIENT_KEY, address)
            raise exceptions.AuthenticationFailed("unknown or revoked client key")
        return (None, client)

    def authenticate_header(self, request):
        return 'Basic realm="evhub"'


@dataclass(frozen=True)
class CpoCaller:
    session: PortalSession

    @property
    def cpo(self) -> Cpo:
        return self.session.cpo


def bearer_access_token(request, *, invalid: str) -> tuple[str, AccessToken] | None:
    """The `Bearer` access token a caller sent (portal or driver), checked and its address throttled like any
    guessed token; None when the request carries no Bearer credentials."""
    raw = _credentials(request, "Bearer")
    if raw is None:
        return None
    address = check_guessing(throttle.ACCESS_TOKEN, request)
    try:
        return raw, AccessToken(raw)
    except TokenError as exc:
        if not signed_by_us(raw, exc):
            throttle.guess_failed(throttle.ACCESS_TOKEN, address)
        raise exceptions.AuthenticationFailed(invalid) from None


class SessionAuthentication(BaseAuthentication):
    """`Authorization: Bearer <access token>` of a live portal session."""

    def authenticate(self, request):
        found = bearer_access_token(request, invalid="the access token is invalid or expired")
        if found is None:
            return None
        _raw, token = found
        session = (PortalSession.objects.select_related("user", "cpo")
                   .filter(sid=token.get("sid"), revoked_at__isnull=True).first())
        if session is None or not session.user.is_active:
            raise exceptions.AuthenticationFailed("the session has ended: log in again")
        return (session.user, CpoCaller(session))

    def authenticate_header(self, request):
        return 'Bearer realm="evhub"'


class PortalView(APIView):
    """Base of every portal endpoint: the envelope for errors, no content negotiation surprises."""

    authentication_classes: list = []
    permission_classes: list = []
    caller_kind: str | None = None  # "client" (Basic) or "cpo" (Bearer)

    def get_exception_handler(self):
        return portal_exception_handler

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.caller_kind == "client" and not isinstance(request.auth, PortalClient):
            raise exceptions.NotAuthenticated("send 'Authorization: Basic <client key>'")
        if self.caller_kind == "cpo" and not isinstance(request.auth, CpoCaller):
            raise exceptions.NotAuthenticated("send 'Authorization: Bearer <access token>'")

    @property
    def cpo(self) -> Cpo:
        return self.request.auth.cpo


class ClientView(PortalView):
    authentication_classes = [ClientKeyAuthentication]
    caller_kind = "client"


class CpoView(PortalView):
    authentication_classes = [SessionAuthentication]
    caller_kind = "cpo"


def json_error(request, status_code: int, message: str) -> JsonResponse:
    return JsonResponse({"status": status_code, "data": [], "message": message}, status=status_code)


def now_epoch() -> int:
    return int(timezone.now().timestamp())


__all__ = ["ClientView", "CpoView", "PortalError", "envelope", "status"]

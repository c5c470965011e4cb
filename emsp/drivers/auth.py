"""How a driver calls: `Authorization: Bearer <access token>` of a live driver session."""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from emsp.accounts import AccountError
from emsp.drivers import accounts
from emsp.drivers.models import DriverSession
from emsp.portal import bearer_access_token


@dataclass(frozen=True)
class DriverCaller:
    session: DriverSession


class DriverAuthentication(BaseAuthentication):
    def authenticate(self, request):
        found = bearer_access_token(request, invalid="the access token is invalid or expired: refresh it or log "
                                                     "in again at /api/auth/v1/login")
        if found is None:
            return None
        raw, _token = found
        try:
            session = accounts.driver_session_of(raw_access_token=raw)
        except AccountError as exc:
            raise exceptions.AuthenticationFailed(exc.message) from None
        return (session.user, DriverCaller(session))

    def authenticate_header(self, request):
        return 'Bearer realm="evhub drivers"'


class DriverTokenScheme(OpenApiAuthenticationExtension):
    target_class = "emsp.drivers.auth.DriverAuthentication"
    name = "driverAccessToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "`Authorization: Bearer <access token>` of a driver, from `POST /api/auth/v1/login` "
                               "(`access_token`) or `POST /api/user/login` (`token`)."}

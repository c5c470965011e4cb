"""Drivers' login, refresh and logout, answering as the portal's do (its envelope, `role: "DRIVER"`)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, serializers

from emsp import throttle
from emsp.api import LoginView, _account_call, _doc, _envelope_of, _valid
from emsp.drivers import accounts
from emsp.drivers.auth import DriverAuthentication, DriverCaller
from emsp.portal import PortalError, PortalView, envelope

TOKENS = {**LoginView.TOKENS, "role": accounts.ROLE}


class DriverLoginView(PortalView):
    class DriverLoginInputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    @_doc("Log in as a driver", _envelope_of("DriverTokens", serializers.JSONField(), TOKENS, "SUCCESS"),
          (400, 401, 429), "drivers", request=DriverLoginInputSerializer, auth=[],
          description="A driver's tokens for the car endpoints (`Authorization: Bearer <access_token>`). "
                      "`*_expires_in` are Unix epoch seconds of expiry. Failed logins are limited per username "
                      "and per client address as the portal's are; past the limit the answer is 429 with "
                      "Retry-After.")
    def post(self, request):
        data = _valid(self.DriverLoginInputSerializer, request.data)
        pair, _session = _account_call(accounts.driver_login, client_address=throttle.client_address(request),
                                       **data)
        return envelope(pair.as_dict(), message="SUCCESS")


class DriverRefreshView(PortalView):
    class DriverRefreshInputSerializer(serializers.Serializer):
        refresh_token = serializers.CharField(max_length=4096, required=False)

    @_doc("Refresh a driver's tokens",
          _envelope_of("DriverRefreshed", serializers.JSONField(), TOKENS, "SUCCESS"), (401, 429), "drivers",
          parameters=[OpenApiParameter("Authorization", str, OpenApiParameter.HEADER, required=True,
                                       description="`Bearer <refresh token>`")],
          auth=[], description="Rotates the refresh token: the one sent stops working, and sending it again "
                               "ends the session.")
    def get(self, request):
        return self._refresh(request, _bearer(request))

    @_doc("Refresh a driver's tokens (token in the body)",
          _envelope_of("DriverRefreshedByBody", serializers.JSONField(), TOKENS, "SUCCESS"), (400, 401, 429),
          "drivers", request=DriverRefreshInputSerializer, auth=[],
          description="As GET, with the refresh token as `refresh_token` in the body or as "
                      "`Authorization: Bearer <refresh token>`.")
    def post(self, request):
        data = _valid(self.DriverRefreshInputSerializer, request.data)
        return self._refresh(request, data.get("refresh_token") or _bearer(request))

    def _refresh(self, request, raw: str):
        pair = _account_call(accounts.driver_session_refresh, refresh_token=raw,
                             client_address=throttle.client_address(request))
        return envelope(pair.as_dict(), message="SUCCESS")


def _bearer(request) -> str:
    parts = request.META.get("HTTP_AUTHORIZATION", "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise PortalError(401, "Unauthorized: send 'Authorization: Bearer <refresh token>'")
    return parts[1]


class DriverLogoutView(PortalView):
    authentication_classes = [DriverAuthentication]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not isinstance(request.auth, DriverCaller):
            raise exceptions.NotAuthenticated("send 'Authorization: Bearer <access token>' of a driver")

    @_doc("Log a driver out", _envelope_of("DriverLoggedOut", serializers.ListField(child=serializers.JSONField()),
                                           [], "Logged out successfully"), (401,), "drivers", request=None,
          description="Ends this session: its access and refresh tokens stop working.")
    def post(self, request):
        accounts.driver_session_logout(session=request.auth.session)
        return envelope([], message="Logged out successfully")

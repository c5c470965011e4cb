"""Drivers' accounts and sessions: the same JWTs, rotation and login throttle as the portal's CPO users,
on sessions of their own (`DriverSession`) and tokens marked `kind: driver`.

The ZE Services refresh (`{"token", "refresh_token"}` -> `{"token"}`) gives a new access token and keeps
the refresh token: its clients keep using the one they got at login, as that service allowed. The
drivers' own refresh rotates it, as the portal's does.
"""

from __future__ import annotations

import uuid

from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from emsp.accounts import (AccountError, TokenPair, _login_blocked, _login_failed, _login_succeeded, refresh_token_read,
                           session_rotate)
from emsp.drivers.models import Driver, DriverSession

ROLE = "DRIVER"
KIND = "driver"


@transaction.atomic
def driver_create(*, username: str, password: str, email: str = "", first_name: str = "", last_name: str = "",
                  country: str = "GB", locale: str = "en_GB", timezone_name: str = "Europe/London",
                  phone_number: str = "") -> Driver:
    if User.objects.filter(username__iexact=username).exists():
        raise AccountError(400, f"the username {username!r} is already taken")
    user = User.objects.create_user(username=username, password=password, email=email,
                                    first_name=first_name, last_name=last_name)
    return Driver.objects.create(user=user, country=country, locale=locale, timezone=timezone_name,
                                 phone_number=phone_number)


def _issue(session: DriverSession) -> TokenPair:
    refresh = RefreshToken.for_user(session.user)
    refresh["sid"] = str(session.sid)
    refresh["kind"] = KIND
    access = refresh.access_token
    session.refresh_jti = refresh["jti"]
    return TokenPair(str(access), int(access["exp"]), str(refresh), int(refresh["exp"]), role=ROLE)


def driver_login(*, username: str, password: str, client_address: str | None) -> tuple[TokenPair, DriverSession]:
    retry_after = _login_blocked(username, client_address)
    if retry_after:
        raise AccountError(429, f"too many failed logins: try again in {retry_after} seconds", retry_after)
    user = authenticate(username=_username_of(username), password=password)
    if user is None or not Driver.objects.filter(user=user).exists():
        _login_failed(username, client_address)
        raise AccountError(401, "wrong username or password")
    _login_succeeded(username, client_address)
    session = DriverSession(sid=uuid.uuid4(), user=user, client_address=client_address)
    pair = _issue(session)
    session.save()
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    return pair, session


def _username_of(login: str) -> str:
    """The username a driver logs in with, or its e-mail (the ZE Services' clients send the e-mail), when
    exactly one driver has that address and no user that username."""
    if "@" not in login or User.objects.filter(username=login).exists():
        return login
    names = list(User.objects.filter(email__iexact=login, driver__isnull=False).values_list("username", flat=True)[:2])
    return names[0] if len(names) == 1 else login


def _refresh_token(raw: str, client_address: str | None) -> RefreshToken:
    refresh = refresh_token_read(raw, client_address)
    if refresh.get("kind") != KIND:
        raise AccountError(401, "not a driver's refresh token: log in at /api/auth/v1/login")
    return refresh


def driver_session_refresh(*, refresh_token: str, client_address: str | None = None) -> TokenPair:
    """New access and refresh tokens; the refresh token sent stops working, and sending it again (a
    replay: someone holds a copy) ends the session."""
    refresh = _refresh_token(refresh_token, client_address)
    return session_rotate(DriverSession.objects.select_related("user"), refresh, _issue)


def driver_access_renew(*, refresh_token: str, client_address: str | None = None) -> str:
    """A new access token from the session's current refresh token, which stays valid (the ZE refresh)."""
    refresh = _refresh_token(refresh_token, client_address)
    session = (DriverSession.objects.select_related("user")
               .filter(sid=refresh.get("sid"), revoked_at__isnull=True).first())
    if session is None or refresh["jti"] != session.refresh_jti:
        raise AccountError(401, "the session has ended: log in again")
    DriverSession.objects.filter(pk=session.pk).update(refreshed_at=timezone.now())
    return str(refresh.access_token)


def driver_session_of(*, raw_access_token: str) -> DriverSession:
    """The live session an access token belongs to; AccountError(401) otherwise."""
    try:
        token = AccessToken(raw_access_token)
    except TokenError as exc:
        raise AccountError(401, "the access token is invalid or expired") from exc
    if token.get("kind") != KIND:
        raise AccountError(401, "not a driver's access token: log in at /api/auth/v1/login")
    session = (DriverSession.objects.select_related("user", "user__driver")
               .filter(sid=token.get("sid"), revoked_at__isnull=True).first())
    if session is None or not session.user.is_active:
        raise AccountError(401, "the session has ended: log in again")
    return session


def driver_session_logout(*, session: DriverSession) -> None:
    DriverSession.objects.filter(pk=session.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())

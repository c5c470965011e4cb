"""CPO portal accounts: registration, sessions (JWT with rotating refresh tokens), passwords.

A session is a row: its access and refresh tokens carry its id (`sid`), so logging out or changing the
password ends tokens that are otherwise still valid, and a refresh token used twice ends its session
(the second use is a replay).
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken

from emsp import logos, throttle
from emsp.models import PortalClient, PortalSession
from locations import selectors
from locations import services as catalogue
from locations.models import Cpo

ROLE = "CPO_OWNER"


class AccountError(Exception):
    def __init__(self, status_code: int, message: str, retry_after: int | None = None):
        self.status_code, self.message, self.retry_after = status_code, message, retry_after
        super().__init__(message)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    access_expires_in: int
    refresh_token: str
    refresh_expires_in: int
    role: str = ROLE

    def as_dict(self) -> dict:
        return {"access_token": self.access_token, "access_expires_in": self.access_expires_in,
                "refresh_token": self.refresh_token, "refresh_expires_in": self.refresh_expires_in,
                "role": self.role}


# --- Registration ------------------------------------------------------------------------------------

def party_id_for(username: str, country_code: str) -> str:
    """Three upper-case letters or digits from the username, unique in the country."""
    letters = re.sub(r"[^A-Z0-9]", "", username.upper())
    base = (letters + "XXX")[:3]
    candidates = [base] + [f"{base[:2]}{digit}" for digit in "0123456789"]
    taken = set(Cpo.objects.filter(country_code=country_code, party_id__in=candidates)
                .values_list("party_id", flat=True))
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(3))
        if not Cpo.objects.filter(country_code=country_code, party_id=candidate).exists():
            return candidate


@transaction.atomic
def cpo_register(*, username: str, cpo_owner_name: str, contact_name: str, contact_number: str,
                 contact_email: str, ocpp_ready: bool, logo: str = "", country_code: str | None = None,
                 client: PortalClient | None = None) -> Cpo:
    """Create the CPO, its owner (who sets a password through an emailed link) and its token C; `logo` is a
    file name the registering `client` uploaded (or the storage name its upload returned)."""
    if User.objects.filter(username__iexact=username).exists():
        raise AccountError(400, f"the username {username!r} is already taken")
    country = (country_code or settings.EVHUB_COUNTRY_CODE).upper()
    user = User(username=username, email=contact_email, first_name=contact_name[:150])
    user.set_unusable_password()
    user.save()
    cpo, _token_c = catalogue.cpo_create(
        country_code=country, party_id=party_id_for(username, country), owner_name=cpo_owner_name,
        contact_name=contact_name, contact_number=contact_number, contact_email=contact_email,
        ocpp_ready=ocpp_ready, owner=user,
    )
    if logo:
        try:
            logos.cpo_logo_use(cpo=cpo, logo=logo, client=client)
        except ValueError as exc:
            raise AccountError(400, str(exc)) from None
    transaction.on_commit(lambda: _send_set_password_link(user, cpo))
    return cpo


def _send_set_password_link(user: User, cpo: Cpo) -> None:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = f"{settings.PUBLIC_BASE_URL}/portal/set-password/{uid}/{token}/"
    send_mail(
        subject="Your evhub CPO account",
        message=(
            f"Hello {user.first_name or user.username},\n\n"
            f"{cpo.owner_name} is registered on evhub as party {cpo.country_code}*{cpo.party_id}.\n"
            f"Choose your password here (the link works once and expires in "
            f"{settings.PASSWORD_RESET_TIMEOUT // 3600} hours):\n\n{link}\n\n"
            f"Then log in as {user.username}. Your OCPI token C is issued in the portal "
            f"(POST /ocpi/cpo/api/v1/credentials/token-c).\n"
        ),
        from_email=None,
        recipient_list=[user.email],
    )


def password_set(*, uid: str, token: str, new_password: str) -> User:
    """The registration link: set the first password (the token works once)."""
    try:
        pk = selectors.primary_key(force_str(urlsafe_base64_decode(uid)), maximum=2**31 - 1)  # auth's integer id
        user = None if pk is None else User.objects.get(pk=pk)
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        user = None
    if user is None or not default_token_generator.check_token(user, token):
        raise AccountError(400, "the link is invalid or has expired: ask the hub's operators for a new one")
    _validate_password(new_password, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    return user


# --- Sessions ----------------------------------------------------------------------------------------

def _expiry(token) -> int:
    return int(token["exp"])


def _issue(session: PortalSession) -> TokenPair:
    refresh = RefreshToken.for_user(session.user)
    refresh["sid"] = str(session.sid)
    access = refresh.access_token
    session.refresh_jti = refresh["jti"]
    return TokenPair(str(access), _expiry(access), str(refresh), _expiry(refresh))


def session_login(*, username: str, password: str, client_address: str | None,
                  client: PortalClient | None = None) -> TokenPair:
    retry_after = _login_blocked(username, client_address)
    if retry_after:
        raise AccountError(429, f"too many failed logins: try again in {retry_after} seconds", retry_after)
    user = authenticate(username=username, password=password)
    cpo = Cpo.objects.filter(owner=user).first() if user is not None else None
    if user is None or cpo is None:
        _login_failed(username, client_address)
        raise AccountError(401, "wrong username or password")
    _login_succeeded(username, client_address)
    session = PortalSession(sid=uuid.uuid4(), user=user, cpo=cpo, client_address=client_address, client=client)
    pair = _issue(session)
    session.save()
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    return pair


def refresh_token_read(raw: str, client_address: str | None) -> RefreshToken:
    """A refresh token a caller sent (portal or driver), its address throttled like any guessed token."""
    retry_after = throttle.guessing_blocked(throttle.ACCESS_TOKEN, client_address)
    if retry_after:
        raise AccountError(429, f"too many invalid tokens: try again in {retry_after} seconds", retry_after)
    try:
        return RefreshToken(raw)
    except TokenError as exc:
        if not signed_by_us(raw, exc):
            throttle.guess_failed(throttle.ACCESS_TOKEN, client_address)
        raise AccountError(401, "the refresh token is invalid or expired: log in again") from None


def session_refresh(*, refresh_token: str, client_address: str | None = None) -> TokenPair:
    refresh = refresh_token_read(refresh_token, client_address)
    return session_rotate(PortalSession.objects.select_related("user", "cpo"), refresh, _issue)


def session_rotate(sessions, refresh, issue) -> TokenPair:
    """New tokens for the live session (among `sessions`: portal or driver ones) that `refresh` names, made
    by `issue(session)`; the refresh token sent stops working."""
    with transaction.atomic():
        session = sessions.select_for_update().filter(sid=refresh.get("sid"), revoked_at__isnull=True).first()
        if session is None:
            raise AccountError(401, "the session has ended: log in again")
        replayed = refresh["jti"] != session.refresh_jti
        if replayed:
            # An old refresh token came back: someone holds a copy. End the session for everyone.
            session.revoked_at = timezone.now()
            session.save(update_fields=["revoked_at"])
        else:
            pair = issue(session)
            session.refreshed_at = timezone.now()
            session.save(update_fields=["refresh_jti", "refreshed_at"])
    if replayed:
        raise AccountError(401, "this refresh token was already used: the session has ended, log in again")
    return pair


def signed_by_us(raw: str, error: TokenError) -> bool:
    """Whether a JWT that `error` refused is still one we signed (expired, or of the other type): a caller
    of ours who must log in or refresh again, not a guess."""
    if isinstance(error, ExpiredTokenError):
        return True
    try:
        UntypedToken(raw)
    except TokenError:
        return False
    return True


def session_logout(*, session: PortalSession) -> None:
    PortalSession.objects.filter(pk=session.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


@transaction.atomic
def password_change(*, user: User, old_password: str, new_password: str,
                    client_address: str | None = None) -> None:
    # Counted per user as well as per address: whoever guesses holds the user's access token, and may
    # hold it from many addresses; the user's own session is what waits.
    user_scope = f"user:{user.pk}"
    retry_after = throttle.guessing_blocked(throttle.OLD_PASSWORD, client_address, user_scope)
    if retry_after:
        raise AccountError(429, f"too many wrong old passwords: try again in {retry_after} seconds", retry_after)
    if not user.check_password(old_password):
        throttle.guess_failed(throttle.OLD_PASSWORD, client_address, user_scope)
        raise AccountError(400, "the old password is wrong")
    _validate_password(new_password, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    PortalSession.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def _validate_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise AccountError(400, "the new password is too weak: " + " ".join(exc.messages)) from None


# --- Failed-login throttle (per client address, and per username from the addresses that failed) --------
#
# A username's failures must not lock its owner out: anyone with a front end's client key could otherwise
# shut any CPO out by failing five times. So past LOGIN_FAILURES_PER_USERNAME failures, a username is
# refused only to the addresses that have themselves failed for it in the window; an address that has not
# gets in with the right password (and a wrong one is its last try). Guessing one password from many
# addresses thus gets one try per address and window beyond the limit, and each address is held to
# LOGIN_FAILURES_PER_ADDRESS over all usernames. A success forgives its own address for that username only:
# forgiving the address outright would let a guesser reset its count by logging in to an account of its own.

def _login_scopes(username: str, address: str | None) -> tuple[str, str]:
    name = username.lower()
    return f"name:{name}", f"name:{name}@{throttle.address_scope(address)}"


def _login_blocked(username: str, address: str | None) -> int | None:
    seconds = settings.LOGIN_FAILURE_WINDOW_SECONDS
    name, name_at_address = _login_scopes(username, address)
    if (throttle.over_limit("login-address", (throttle.address_scope(address),),
                            settings.LOGIN_FAILURES_PER_ADDRESS, seconds)
            or (throttle.over_limit("login-name", (name,), settings.LOGIN_FAILURES_PER_USERNAME, seconds)
                and throttle.over_limit("login-name", (name_at_address,), 1, seconds))):
        return throttle.retry_after(seconds)
    return None


def _login_failed(username: str, address: str | None) -> None:
    seconds = settings.LOGIN_FAILURE_WINDOW_SECONDS
    throttle.failure_count("login-address", throttle.address_scope(address), seconds)
    for scope in _login_scopes(username, address):
        throttle.failure_count("login-name", scope, seconds)


def _login_succeeded(username: str, address: str | None) -> None:
    throttle.forget("login-name", _login_scopes(username, address)[1], settings.LOGIN_FAILURE_WINDOW_SECONDS)

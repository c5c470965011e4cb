"""`POST /api/bmw/oauth-token` (seed 000): the path and success shape of the old MyBMW login, linking
through BMW CarData's device-code flow instead, since BMW closed the e-mail/password login to third
parties in 2025.

The flow: the driver creates a CarData client in the MyBMW portal and sends its `client_id`; the first
call answers 202 with the code and the address where the driver approves it; calling again with the same
`client_id` once approved links the account and answers the seed's token shape. The device code and its
PKCE verifier wait in the cache (never the database) until the code expires.
"""

from __future__ import annotations

import asyncio
import logging
import re

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from emsp.drivers.auth import DriverCaller
from emsp.drivers.plumbing import CarApiError, CarView, errors
from vehicles import services
from vehicles.models import Provider
from vehicles.providers.base import AccountContext, ProviderError, Tokens, provider_get
from vehicles.quota import Buckets, quotas_for

logger = logging.getLogger(__name__)

HOW_TO_LINK = (
    "BMW closed the e-mail/password login of its app API to third parties in 2025: link the car through BMW "
    "CarData instead. 1) In the MyBMW portal (Vehicle > BMW CarData) create a client and copy its client_id. "
    "2) Log in to the hub (POST /api/auth/v1/login) and POST /api/bmw/oauth-token {\"client_id\": \"...\"} "
    "with 'Authorization: Bearer <access token>': the answer gives a code and the address where you approve it. "
    "3) Once approved, POST the same body again: the account is linked and its cars appear in "
    "/api/get-user-devices.")
CLIENT_ID = re.compile(r"^[A-Za-z0-9._~-]{8,128}$")


def _pending_key(user_id: int, client_id: str) -> str:
    return f"bmw-device-code:{user_id}:{client_id}"


class BmwOauthTokenView(CarView):
    class BmwOauthTokenInputSerializer(serializers.Serializer):
        client_id = serializers.CharField(max_length=128, required=False,
                                          help_text="the CarData client id created in the MyBMW portal")
        email = serializers.CharField(required=False, help_text="the closed login: refused, saying how to link now")
        password = serializers.CharField(required=False, help_text="the closed login: refused")
        payload = serializers.JSONField(required=False)

    def initial(self, request, *args, **kwargs):
        # Not CarView's: a body of the closed login is answered how to link now, whoever sends it.
        super(CarView, self).initial(request, *args, **kwargs)

    @extend_schema(
        summary="Link a BMW account (CarData device-code flow)", tags=["drivers: devices"],
        request=BmwOauthTokenInputSerializer,
        responses={200: inline_serializer("BmwToken", {
            "access_token": serializers.CharField(), "token_type": serializers.CharField(),
            "expires_in": serializers.IntegerField(), "refresh_token": serializers.CharField(),
            "scope": serializers.CharField()}),
            202: inline_serializer("BmwDeviceCode", {
                "status": serializers.CharField(), "user_code": serializers.CharField(),
                "verification_uri": serializers.CharField(), "verification_uri_complete": serializers.CharField(),
                "expires_in": serializers.IntegerField(), "interval": serializers.IntegerField(),
                "message": serializers.CharField()}),
            **errors(400, 401, 409, 410, 503, 415)},
        examples=[OpenApiExample("the closed login", request_only=True,
                                 value={"email": "demo@outlook.com", "password": "demopass",
                                        "payload": {"email": "test@test.com"}}),
                  OpenApiExample("linking", request_only=True, value={"client_id": "6f1c2b0e-cardata-client"})],
        description=HOW_TO_LINK + " A body with only an e-mail and password is answered 410 with these steps.")
    def post(self, request):
        body = self.body() if request.data else {}
        if not body.get("client_id"):
            if body.get("email") or body.get("password"):
                raise CarApiError(410, HOW_TO_LINK, error="bmw_password_login_closed")
            raise CarApiError(400, "send {\"client_id\": \"<your CarData client id>\"}. " + HOW_TO_LINK)
        if not isinstance(request.auth, DriverCaller):
            raise exceptions.NotAuthenticated("send 'Authorization: Bearer <access token>' of a driver "
                                              "(POST /api/auth/v1/login)")
        client_id = body["client_id"]
        if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
            raise CarApiError(400, "client_id: the CarData client id (8 to 128 letters, digits, '.', '_', '~', '-')")
        return self._device_flow(_bmw_provider(), client_id)

    def _device_flow(self, provider, client_id: str) -> Response:
        key = _pending_key(self.driver.pk, client_id)
        pending = cache.get(key)
        ctx = AccountContext(account_id=None, external_id="", tokens=Tokens(), options={"client_id": client_id})
        try:
            if pending is None:
                pending = asyncio.run(_call(provider, "device_code_start", ctx, client_id=client_id))
                cache.set(key, pending, timeout=int(pending.get("expires_in") or 900))
                return _waiting(pending, "approve the code at the address given, then POST this body again")
            result, cars = asyncio.run(_finish(provider, ctx, client_id=client_id, pending=pending))
        except ProviderError as exc:
            if exc.kind == "auth" and not exc.permanent:  # authorization_pending / slow_down
                if exc.retry_after:
                    pending = {**pending, "interval": int(exc.retry_after)}
                    cache.set(key, pending, timeout=int(pending.get("expires_in") or 900))
                return _waiting(pending, f"not approved yet: {exc.message}")
            cache.delete(key)
            status = 503 if not exc.permanent else 400
            raise CarApiError(status, f"BMW CarData: {exc.message}",
                              headers={"Retry-After": str(int(exc.retry_after))} if exc.retry_after else None) from None
        cache.delete(key)
        with transaction.atomic():
            account = services.maker_account_link(driver=self.driver, provider=Provider.BMW,
                                                  external_id=result.external_id, tokens=result.tokens,
                                                  label=result.label, options={**result.options, "client_id": client_id})
            for car in cars or []:
                services.vehicle_upsert(account=account, discovered=car)
        tokens = result.tokens
        expires_in = 0
        if tokens.expires_at:
            expires_in = max(0, int((tokens.expires_at - timezone.now()).total_seconds()))
        # The refresh token stays with the hub: BMW rotates it, and a copy used elsewhere would end the link.
        return Response({"access_token": tokens.access_token, "token_type": "Bearer", "expires_in": expires_in,
                         "refresh_token": "", "scope": getattr(provider, "scope", None) or _scope_of(provider)})


def _spend_from_the_makers_bucket(buckets, provider, ctx) -> None:
    # The link's REST calls (the telematics container, the cars) count against BMW's quota like any other:
    # drawn from the maker's bucket, as the sync engine's logins are (the account has no bucket of its own yet).
    _account_quota, maker_quota = quotas_for(type(provider))
    ctx.spend = lambda n=1: buckets.take(provider=Provider.BMW, account_id="login", account=None,
                                         maker=maker_quota, n=n, max_wait=0.0)


async def _call(provider, method: str, ctx, **kwargs):
    async with Buckets() as buckets, provider:
        _spend_from_the_makers_bucket(buckets, provider, ctx)
        return await getattr(provider, method)(ctx, **kwargs)


async def _finish(provider, ctx, *, client_id: str, pending: dict):
    """The approved link's tokens and account, and the account's cars (None when BMW could not list them
    now: the account is linked all the same)."""
    async with Buckets() as buckets, provider:
        _spend_from_the_makers_bucket(buckets, provider, ctx)
        result = await provider.device_code_poll(ctx, client_id=client_id, device_code=pending["device_code"],
                                                 code_verifier=pending["code_verifier"],
                                                 interval=pending.get("interval"))
        ctx.tokens, ctx.external_id = result.tokens, result.external_id
        ctx.options = {**ctx.options, **result.options}
        try:
            cars = await provider.discover(ctx)
        except ProviderError:
            logger.warning("BMW link: the cars of account %s could not be listed now", result.external_id,
                           exc_info=True)
            cars = None
        return result, cars


def _scope_of(provider) -> str:
    import sys

    return str(getattr(sys.modules.get(type(provider).__module__), "SCOPE", ""))


def _bmw_provider():
    """The CarData provider, at the addresses the sync engine uses too (settings.VEHICLES_BMW_URLS, where a
    test points it at a loopback CarData)."""
    return provider_get(Provider.BMW)


def _waiting(pending: dict, message: str) -> Response:
    return Response({"status": "authorization_pending", "user_code": pending.get("user_code"),
                     "verification_uri": pending.get("verification_uri"),
                     "verification_uri_complete": pending.get("verification_uri_complete"),
                     "expires_in": pending.get("expires_in"), "interval": pending.get("interval"),
                     "message": message}, status=202)

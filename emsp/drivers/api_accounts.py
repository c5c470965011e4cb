"""A driver's maker accounts: link one with the maker's login (Renault, the simulator; BMW has its own
flow), log in again when the maker refused the stored tokens, unlink. The password serves the one login
call and is kept nowhere; the maker's tokens are stored encrypted."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from emsp.drivers import shapes
from emsp.drivers.plumbing import CarApiError, CarView, errors
from vehicles import selectors, services, sync
from vehicles.models import MakerAccount, Provider

TAG = "drivers: accounts"
LOGIN_PROVIDERS = [Provider.RENAULT, Provider.SIMULATOR]
LINKED = inline_serializer("AccountLinked", {"account": serializers.JSONField(), "vehicles": serializers.JSONField()})


class AccountsView(CarView):
    class AccountLinkInputSerializer(serializers.Serializer):
        provider = serializers.ChoiceField([p.value for p in LOGIN_PROVIDERS])
        username = serializers.CharField(max_length=254, help_text="the login at the maker (MyRenault e-mail)")
        password = serializers.CharField(max_length=256, trim_whitespace=False,
                                         help_text="used for this one login, never stored")
        locale = serializers.CharField(max_length=16, required=False, help_text="Renault: e.g. fr_FR (country)")

    @extend_schema(
        summary="Link a maker account, or log in to it again", tags=[TAG], request=AccountLinkInputSerializer,
        responses={201: LINKED, **errors(400, 401, 403, 409, 503, 415)},
        examples=[OpenApiExample("Renault", request_only=True,
                                 value={"provider": "renault", "username": "you@example.com",
                                        "password": "P4ssw0rd", "locale": "fr_FR"})],
        description="Logs in at the maker (the password is used for this call only), links the account and "
                    "discovers its cars. The same call on an account marked `needs_relogin` logs in again and "
                    "its cars are synced again. BMW accounts are linked at `POST /api/bmw/oauth-token`. A wrong "
                    "login is 403; an account another driver linked, 409; the maker failing, 503.")
    def post(self, request):
        serializer = self.AccountLinkInputSerializer(data=self.body())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        options = {"locale": data["locale"]} if data.get("locale") else {}
        account = sync.account_connect(driver=self.driver, provider=data["provider"],
                                       credentials={"username": data["username"], "password": data["password"]},
                                       options=options)
        vehicles = [shapes.device(v, selectors.vehicle_state_latest(vehicle=v))
                    for v in selectors.vehicles_of_driver(driver=self.driver).filter(account=account)]
        return Response({"account": shapes.account_status(account), "vehicles": vehicles}, status=201)


class AccountView(CarView):
    @extend_schema(summary="Unlink a maker account", tags=[TAG],
                   parameters=[OpenApiParameter("account_id", int, OpenApiParameter.PATH)],
                   responses={204: None, **errors(401, 404)},
                   description="Forgets the account, its tokens and its cars with their history.")
    def delete(self, request, account_id: str):
        account = self._account(account_id)
        services.maker_account_unlink(account=account)
        return Response(status=204)

    def _account(self, account_id: str) -> MakerAccount:
        if not (account_id.isascii() and account_id.isdigit()) or len(account_id) > 18:
            raise CarApiError(404, "no such account")
        account = selectors.maker_accounts_of_driver(driver=self.driver).filter(pk=int(account_id)).first()
        if account is None:
            raise CarApiError(404, "no such account")
        return account

"""The CPO webhooks of the portal contract: a CPO back end pushes its locations and EVSEs.

    POST /ocpi/cpo/api/v1/webhook/locations/<country_code>/<party_id>  -> data [{"location_id": 754}, ...]
    POST /ocpi/cpo/api/v1/webhook/evse/<country_code>/<party_id>       -> data "SUCCESS"

Authenticated by the CPO's OCPI token C (`Bearer <token C>`, or OCPI's `Token <base64(token C)>`), which
must belong to the party in the path. The webhook shape is mapped onto an OCPI Location / EVSE and
written through `locations.services`, the one ingestion path, so the values are checked by OCPI's rules
and the same payload twice changes nothing the second time. A request is all or nothing.

The webhook's values are the portal's, not OCPI's (see `connector_ocpi_of_webhook`): `power_type` `AC`
(which OCPI splits by phases) and `max_electric_power` in kW are accepted and stored as OCPI values, so
that every reader (GraphQL, OCPI, the map) gets plausible ones.

The webhook sends no location id. The OCPI id is derived from the location's identity: `WH-` and the
first 24 hex digits of SHA-256 over the normalised name (case-folded, whitespace collapsed) and the
coordinates rounded to 6 decimals (about 11 cm). The same location sent again finds the same row; a
location renamed or moved is a new location (the webhook cannot tell it from one).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

import pycountry
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from emsp import throttle
from emsp.parsers import StrictJSONParser
from emsp.portal import PortalError, PortalView, check_guessing, envelope
from locations import selectors, services
from locations.timezones import country_time_zone, country_time_zones
from locations.formulas import neutralised
from locations.models import Cpo, Location
from locations.tokens import token_digest
from locations.validation import INT_MAX, InvalidPayload
from ocpi.transport import token_candidates

_SPACES = re.compile(r"\s+")
# Optional fields a webhook may carry beyond the contract's, passed through as OCPI's.
_LOCATION_EXTRAS = ("city", "postal_code", "province", "state", "region", "country", "time_zone",
                    "opening_times", "directions", "operator", "owner", "images")
_FREE_TEXT = ("name", "address", "city", "postal_code", "province", "state", "region")
_EVSE_EXTRAS = ("evse_id", "floor_level", "physical_reference", "parking_restrictions", "serial_number",
                "coordinates", "images")


# --- Authentication ------------------------------------------------------------------------------------

class TokenCAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token C>` or `Token <base64(token C)>` (plain accepted too): the CPO."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in (b"bearer", b"token"):
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("the Authorization header must be 'Bearer <token C>'")
        try:
            value = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("the token must be ASCII") from None
        address = check_guessing(throttle.TOKEN_C, request)
        candidates = token_candidates(value) if parts[0].lower() == b"token" else [value]
        for token in candidates:
            cpo = Cpo.objects.filter(token_c_digest=token_digest(token)).first()
            if cpo is not None:
                return (None, cpo)
        throttle.guess_failed(throttle.TOKEN_C, address)
        raise exceptions.AuthenticationFailed("unknown token: it is no CPO's token C")

    def authenticate_header(self, request):
        return 'Bearer realm="evhub"'


class TokenCScheme(OpenApiAuthenticationExtension):
    target_class = "ocpi.webhooks.TokenCAuthentication"
    name = "cpoTokenC"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "`Authorization: Bearer <token C>`: the CPO's OCPI credentials token C "
                               "(OCPI's `Token <base64(token C)>` is accepted too)."}


class WebhookView(PortalView):
    authentication_classes = [TokenCAuthentication]
    parser_classes = [StrictJSONParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not isinstance(request.auth, Cpo):
            raise exceptions.NotAuthenticated("send 'Authorization: Bearer <token C>'")
        cpo = request.auth
        if (cpo.country_code, cpo.party_id) != (kwargs["country_code"].upper(), kwargs["party_id"].upper()):
            raise PortalError(403, "Forbidden: this token does not belong to party "
                                   f"{kwargs['country_code']}*{kwargs['party_id']}")

    def body(self, request) -> dict:
        try:
            data = request.data
        except RequestDataTooBig:
            raise PortalError(413, "Payload Too Large") from None
        if not isinstance(data, dict):
            raise PortalError(400, "Bad Request: the body must be a JSON object",
                              [{"field": "non_field_errors", "message": "must be a JSON object"}])
        return data


def _bad_request(errors: dict[str, str]) -> PortalError:
    listed = [{"field": path, "message": reason} for path, reason in errors.items()]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in listed[:5])
    return PortalError(400, f"Bad Request: {summary}", listed)


# --- Mapping the webhook's shape onto OCPI's -------------------------------------------------------------

def webhook_location_id(name: Any, lat: Any, lng: Any) -> str:
    """The stable OCPI id of a webhook location: see the module's docstring."""
    normalised = _SPACES.sub(" ", str(name or "")).strip().casefold()
    try:
        point = f"{float(str(lat).strip()):.6f},{float(str(lng).strip()):.6f}"
    except ValueError:
        point = f"{lat},{lng}"  # invalid; the validation that follows names the field
    return "WH-" + hashlib.sha256(f"{normalised}|{point}".encode()).hexdigest()[:24].upper()


# A three-phase supply's voltage as the portal states it, between two lines (400 V in Europe, 380 V or 415 V
# elsewhere); OCPI wants it line to neutral.
THREE_PHASE_LINE_VOLTS = 380
KILOWATT_BELOW = 1000
NOMINAL_MARGIN = 1.1


def _number(value: Any) -> float | None:
    """A number to map; None (left as sent, for the validation to refuse) when no column could hold it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if not 0 <= value <= INT_MAX:
        return None
    return float(value)


def connector_ocpi_of_webhook(raw: Any) -> Any:
    """One connector of the portal's webhook as OCPI 2.2.1's (the rule the README and the docs state).

    * `power_type` `AC`: `AC_3_PHASE` when `max_voltage` is 380 V or more (a line-to-line voltage, stored
      line to neutral as OCPI defines it: 400 V becomes 231 V), else `AC_1_PHASE`. OCPI's own values pass.
    * `max_electric_power` below 1,000 is in kW (the portal's unit: 120 is 120,000 W), from 1,000 up in W.
    * No connector delivers more than its voltage times its current (times 3 phases): a declared power more
      than 10% above that is stored as that limit (230 V, 16 A, one phase: 3,680 W); within 10% it is a
      nominal rating (7,400 W for 230 V, 32 A) and kept.
    Anything that is no number is left as sent, for the validation to name.
    """
    if not isinstance(raw, dict):
        return raw
    connector = dict(raw)
    volts, amperes = _number(raw.get("max_voltage")), _number(raw.get("max_amperage"))
    power_type = raw.get("power_type")
    if isinstance(power_type, str) and power_type.strip().upper() == "AC":
        three_phase = volts is not None and volts >= THREE_PHASE_LINE_VOLTS
        connector["power_type"] = "AC_3_PHASE" if three_phase else "AC_1_PHASE"
        if three_phase and volts.is_integer():
            volts = float(round(volts / math.sqrt(3)))
            connector["max_voltage"] = int(volts)
    power = _number(raw.get("max_electric_power"))
    if power is None or power <= 0 or not power.is_integer():
        return connector
    watts = power * 1000 if power < KILOWATT_BELOW else power
    if volts and amperes and volts > 0 and amperes > 0:
        phases = 3 if connector.get("power_type") == "AC_3_PHASE" else 1
        limit = volts * amperes * phases
        if watts > limit * NOMINAL_MARGIN:
            watts = limit
    connector["max_electric_power"] = int(watts)
    return connector


def _evse_ocpi(raw: Any) -> Any:
    if not isinstance(raw, dict):
        return raw
    evse = {key: raw[key] for key in ("uid", "status", "meter_type", "kwh", "capabilities", "payment_types",
                                      *_EVSE_EXTRAS) if key in raw}
    connectors = raw.get("connectors")
    if isinstance(connectors, list):
        # The contract's connectors carry no id: their position is it (1, 2, ...).
        evse["connectors"] = [{"id": str(index), **connector_ocpi_of_webhook(connector)}
                              if isinstance(connector, dict) else connector
                              for index, connector in enumerate(connectors, 1)]
    elif "connectors" in raw:
        evse["connectors"] = connectors
    return evse


def _alpha3(country_code: str) -> str:
    country = pycountry.countries.get(alpha_2=country_code)
    return country.alpha_3 if country else country_code


def location_ocpi_of_webhook(raw: dict, *, cpo: Cpo) -> dict:
    """An OCPI 2.2.1 Location (without timestamps) from one location of the locations webhook."""
    location = {key: raw[key] for key in ("name", "address", "facilities", "parking_types",
                                          "parking_restrictions", *_LOCATION_EXTRAS) if key in raw}
    location.update(country_code=cpo.country_code, party_id=cpo.party_id, publish=True,
                    id=webhook_location_id(raw.get("name"), raw.get("lat"), raw.get("lng")),
                    coordinates={"latitude": raw.get("lat"), "longitude": raw.get("lng")})
    location.setdefault("country", _alpha3(cpo.country_code))
    if "city" not in location and isinstance(raw.get("address"), str):
        # OCPI requires a city, the contract sends none: the address's last part ("..., Olongapo City").
        location["city"] = raw["address"].rsplit(",", 1)[-1].strip()[:45]
    for name in _FREE_TEXT:
        if isinstance(location.get(name), str):
            # People open exports of these in spreadsheets: a formula is made literal on the way in.
            location[name] = neutralised(location[name])
    if "time_zone" not in location and isinstance(location["country"], str):
        zone = country_time_zone(location["country"])
        if zone:
            location["time_zone"] = zone
    if "evses" in raw:
        location["evses"] = [_evse_ocpi(evse) for evse in raw["evses"]] if isinstance(raw["evses"], list) \
            else raw["evses"]
    return location


# Paths in the OCPI objects that are named otherwise in the webhook's body.
_RENAMED = (("coordinates.latitude", "lat"), ("coordinates.longitude", "lng"), ("coordinates", "lat"))


def _webhook_path(path: str, prefix: str) -> str:
    for ocpi_name, webhook_name in _RENAMED:
        if path == ocpi_name:
            path = webhook_name
            break
    return f"{prefix}{path}"


def _reason(location: dict, path: str, reason: str) -> str:
    if path == "time_zone" and isinstance(location.get("country"), str):
        zones = country_time_zones(location["country"])
        if len(zones) > 1:
            return (f"is required: {location['country']} has zones with different clocks "
                    f"({', '.join(zones[:4])}, ...)")
    return reason


# --- Views ----------------------------------------------------------------------------------------------

LOCATIONS_EXAMPLE = {"locations": [{
    "name": "SM City Olongapo", "address": "Rizal Avenue, Olongapo City", "lat": "14.829150", "lng": "120.282830",
    "facilities": ["MALL", "RESTROOM"], "parking_types": ["INDOOR"], "parking_restrictions": ["CUSTOMERS"],
    "evses": [{"uid": "SMO-1", "status": "AVAILABLE", "meter_type": "AC", "kwh": 22,
               "capabilities": ["QR_READER"], "payment_types": ["GCASH"],
               "connectors": [{"standard": "TYPE_2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                               "max_voltage": 400, "max_amperage": 32, "max_electric_power": 22000}]}],
}]}
EVSE_EXAMPLE = {"location_id": 754, **LOCATIONS_EXAMPLE["locations"][0]["evses"][0]}
ERROR = inline_serializer("WebhookError", {
    "status": serializers.IntegerField(), "data": serializers.JSONField(), "message": serializers.CharField(),
})
_ERRORS = {400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 413: ERROR, 415: ERROR, 429: ERROR}


class LocationsWebhookView(WebhookView):
    @extend_schema(
        summary="Push locations (CPO back end)", tags=["webhooks"], request=inline_serializer(
            "LocationsWebhook", {"locations": serializers.ListField(child=serializers.JSONField())}),
        responses={200: inline_serializer("LocationsWebhookDone", {
            "status": serializers.IntegerField(), "message": serializers.CharField(),
            "data": serializers.ListField(child=inline_serializer("WebhookLocationId", {
                "location_id": serializers.IntegerField()}))}), **_ERRORS},
        examples=[OpenApiExample("Locations", value=LOCATIONS_EXAMPLE, request_only=True),
                  OpenApiExample("Done", value={"status": 200, "data": [{"location_id": 754}], "message": "Success"},
                                 response_only=True)],
        description="Creates or replaces the caller's locations, with their EVSEs and connectors; one "
                    "`location_id` per location, in order. Values are checked by OCPI 2.2.1's rules (status "
                    "`AVAILABLE`..., standard `TYPE_2`/`CHADEMO`/..., format `SOCKET`/`CABLE`, power_type "
                    "`AC`/`DC`/`AC_1_PHASE`/`AC_3_PHASE`). The portal's values are stored as OCPI's: "
                    "`power_type` `AC` is `AC_3_PHASE` from 380 V up (stored line to neutral: 400 V is 231 V), "
                    "else `AC_1_PHASE`; `max_electric_power` below 1,000 is kW (`120` is 120,000 W), from 1,000 "
                    "up W; a power more than 10% above volts x amperes (x 3 phases) is stored as that limit "
                    "(230 V, 16 A: 3,680 W). All or nothing: one wrong value and nothing is "
                    "written (400, each error naming its field, e.g. `locations[0].evses[1].status`). A location "
                    "is known by its name and coordinates, so sending it again changes nothing and returns the "
                    "same `location_id`. Optional beyond the contract: `city` (default: the address's last "
                    "comma-separated part), `postal_code`, `province`, `country` (default: the CPO's), "
                    "`time_zone` (default: the country's, when it has one).",
    )
    def post(self, request, country_code: str, party_id: str):
        cpo = request.auth
        body = self.body(request)
        raw_locations = body.get("locations")
        if not isinstance(raw_locations, list) or not raw_locations:
            raise _bad_request({"locations": "must list at least one location"})
        not_objects = {f"locations[{index}]": "must be an object"
                       for index, raw in enumerate(raw_locations) if not isinstance(raw, dict)}
        if not_objects:
            raise _bad_request(not_objects)
        items = [location_ocpi_of_webhook(raw, cpo=cpo) for raw in raw_locations]
        # Validated once, by the ingestion path; one invalid location rolls back the whole request.
        with transaction.atomic():
            results = services.location_upsert_many(cpo=cpo, items=items, stamped=False)
            failed = {_webhook_path(path, f"locations[{index}]."): _reason(items[index], path, reason)
                      for index, result in enumerate(results) if isinstance(result, InvalidPayload)
                      for path, reason in result.errors.items()}
            if failed:
                transaction.set_rollback(True)
                raise _bad_request(failed)
        return envelope([{"location_id": result.instance.pk} for result in results])


class EvseWebhookView(WebhookView):
    @extend_schema(
        summary="Push one EVSE (CPO back end)", tags=["webhooks"], request=inline_serializer(
            "EvseWebhook", {"location_id": serializers.IntegerField(), "uid": serializers.CharField(),
                            "status": serializers.CharField(),
                            "connectors": serializers.ListField(child=serializers.JSONField())}),
        responses={200: inline_serializer("EvseWebhookDone", {
            "status": serializers.IntegerField(), "data": serializers.CharField(),
            "message": serializers.CharField()}), **_ERRORS},
        examples=[OpenApiExample("EVSE", value=EVSE_EXAMPLE, request_only=True),
                  OpenApiExample("Done", value={"status": 200, "data": "SUCCESS", "message": "Success"},
                                 response_only=True)],
        description="Creates or replaces one EVSE (by `uid`), with its connectors, at one of the caller's "
                    "locations (`location_id` as the locations webhook returned it; another CPO's is 404). "
                    "Values are checked by OCPI 2.2.1's rules, the portal's mapped as for the locations webhook "
                    "(`AC`, power in kW below 1,000); sending it again changes nothing.",
    )
    def post(self, request, country_code: str, party_id: str):
        cpo = request.auth
        body = self.body(request)
        location_id = body.get("location_id")
        if isinstance(location_id, bool) or not isinstance(location_id, (int, str)) \
                or not str(location_id).strip().isdigit():
            raise _bad_request({"location_id": "is required: the location_id the locations webhook returned"})
        pk = selectors.primary_key(location_id)
        location = None if pk is None else Location.objects.select_related("cpo").filter(pk=pk, cpo=cpo).first()
        if location is None:
            raise PortalError(404, f"Not Found: location {location_id} is not one of yours")
        try:
            services.evse_upsert(location=location, data=_evse_ocpi(body), stamped=False)
        except InvalidPayload as exc:
            raise _bad_request(exc.errors) from None
        return envelope("SUCCESS")

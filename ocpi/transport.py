"""OCPI transport (transport_and_format.asciidoc): the envelope, status codes, token auth, headers, paging.

Every OCPI view derives from `OcpiView`, which authenticates the caller, turns every error (ours, a
malformed request, a bug) into the envelope with the right HTTP status, and adds the routing headers.
"""

import base64
import binascii
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.utils.dateparse import parse_datetime
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from locations.models import Cpo
from locations.tokens import token_digest
from ocpi.models import Peer, PeerParty

logger = logging.getLogger(__name__)

V221, V211 = "2.2.1", "2.1.1"
VERSIONS = (V221, V211)  # highest first: the handshake picks the first one both sides have

# status_codes.asciidoc
SUCCESS = 1000
CLIENT_ERROR, INVALID_PARAMETERS, NOT_ENOUGH_INFORMATION, UNKNOWN_LOCATION, UNKNOWN_TOKEN = 2000, 2001, 2002, 2003, 2004
SERVER_ERROR, CLIENT_API_ERROR, UNSUPPORTED_VERSION, NO_MATCHING_ENDPOINTS = 3000, 3001, 3002, 3003


class OcpiError(Exception):
    """An error answered in the envelope: an OCPI status code, its message and the HTTP status."""

    def __init__(self, message: str, *, status_code: int = CLIENT_ERROR, http_status: int = 400, data=None):
        super().__init__(message)
        self.message, self.status_code, self.http_status, self.data = message, status_code, http_status, data


def ocpi_timestamp(moment: datetime | None = None) -> str:
    """A DateTime as OCPI writes it: UTC with a `Z`, whole seconds."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Encoder(DjangoJSONEncoder):
    def default(self, o):
        if isinstance(o, datetime):
            return ocpi_timestamp(o)
        return super().default(o)


def envelope(data=None, *, status_code: int = SUCCESS, message: str = "Success", http_status: int = 200,
             headers: dict | None = None) -> HttpResponse:
    body = {"data": data, "status_code": status_code, "status_message": message, "timestamp": ocpi_timestamp()}
    if data is None:
        del body["data"]  # optional in the envelope; absent rather than null
    response = HttpResponse(json.dumps(body, cls=_Encoder, separators=(",", ":")), status=http_status,
                            content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# --- who is calling ----------------------------------------------------------------------------------

@dataclass
class Caller:
    """The authenticated caller: a peer (by token A or its token), or a CPO of ours by its token C."""

    kind: str  # "A" (registration only), "PEER", "CPO"
    token: str
    peer: Peer | None = None
    cpo: Cpo | None = None
    parties: list[PeerParty] | None = field(default=None, repr=False)  # the peer's, when read with it

    def cpo_parties(self) -> list[Cpo]:
        """The catalogue tenants this caller may write as a CPO (receiver endpoints, webhooks)."""
        if self.cpo is not None:
            return [self.cpo]
        if self.peer is None:
            return []
        if self.parties is None:
            self.parties = list(self.peer.parties.select_related("cpo").order_by("pk"))
        return [party.cpo for party in self.parties if party.cpo_id]


def header_token(request) -> str | None:
    """The token of `Authorization: Token <...>`, or None when the header is missing or another scheme."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value:
        return None
    return value


def token_candidates(value: str) -> list[str]:
    """2.2.1 sends base64(token), 2.1.1 the token itself; peers mix them up, so both are tried."""
    candidates = [value]
    try:
        decoded = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return candidates
    if decoded and decoded.isprintable():
        candidates.insert(0, decoded)
    return candidates


def caller_authenticate(request, *, allow_token_a: bool) -> Caller:
    """Find the caller by its token's digest (a lookup by SHA-256 digest tells nothing about the token)."""
    value = header_token(request)
    if value is None:
        raise OcpiError("Authorization header missing: send 'Authorization: Token <token>'", http_status=401)
    for token in token_candidates(value):
        digest = token_digest(token)
        # A connected peer with its parties (and their CPOs) in one query; a peer without parties by itself.
        parties = list(PeerParty.objects.select_related("peer", "cpo").filter(
            peer__token_in_digest=digest, peer__state=Peer.State.CONNECTED).order_by("peer_id", "pk"))
        if parties:
            peer = parties[0].peer
            parties = [party for party in parties if party.peer_id == peer.pk]
            for party in parties:
                party.peer = peer
            return Caller(kind="PEER", token=token, peer=peer, parties=parties)
        peer = Peer.objects.filter(token_in_digest=digest, state=Peer.State.CONNECTED).first()
        if peer is not None:
            return Caller(kind="PEER", token=token, peer=peer, parties=[])
        cpo = Cpo.objects.filter(token_c_digest=digest).first()
        if cpo is not None:
            return Caller(kind="CPO", token=token, cpo=cpo)
        peer = Peer.objects.filter(token_a_digest=digest).exclude(state=Peer.State.SUSPENDED).first()
        if peer is not None:
            if not allow_token_a:
                raise OcpiError("Token A is good for versions and credentials only; use the token of the "
                                "credentials handshake", http_status=401)
            return Caller(kind="A", token=token, peer=peer)
    raise OcpiError("Unknown token: it does not belong to any registered party", http_status=401)


# --- the base view ----------------------------------------------------------------------------------

class OcpiView(View):
    """Base of every OCPI endpoint. Subclasses set `module` and write get/put/patch/post/delete.

    `version` comes from the URL configuration (as_view(version=...)); `routed` views (functional
    modules) answer with the OCPI-from/to routing headers; `allow_token_a` only on credentials and
    versions.
    """

    version: str = V221
    module: str = ""
    routed: bool = True
    allow_token_a: bool = False

    @classmethod
    def as_view(cls, **initkwargs):
        # Peers authenticate with a token in a header, never a cookie: CSRF does not apply (and would 403 them).
        return csrf_exempt(super().as_view(**initkwargs))

    def dispatch(self, request, *args, **kwargs):
        try:
            if request.method.lower() not in self.http_method_names or not hasattr(self, request.method.lower()):
                raise OcpiError(f"Method {request.method} is not allowed on this endpoint", http_status=405)
            self.caller = caller_authenticate(request, allow_token_a=self.allow_token_a)
            response = super().dispatch(request, *args, **kwargs)
        except OcpiError as error:
            response = envelope(error.data, status_code=error.status_code, message=error.message,
                                http_status=error.http_status)
        except RequestDataTooBig:
            response = envelope(status_code=CLIENT_ERROR, message="Request body too large", http_status=413)
        except Exception:  # a bug: logged with its trace, answered without one
            logger.exception("OCPI %s %s failed", request.method, request.path)
            response = envelope(status_code=SERVER_ERROR, message="Internal server error", http_status=500)
        if self.routed:
            self._routing_headers(request, response)
        return response

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise OcpiError(f"Method {request.method} is not allowed on this endpoint", http_status=405)

    @staticmethod
    def _routing_headers(request, response) -> None:
        """Answer to whoever asked (their OCPI-from-* become our OCPI-to-*), from the party they addressed."""
        asked_to = (request.headers.get("OCPI-to-country-code"), request.headers.get("OCPI-to-party-id"))
        asked_from = (request.headers.get("OCPI-from-country-code"), request.headers.get("OCPI-from-party-id"))
        ours = (settings.EVHUB_COUNTRY_CODE, settings.EVHUB_PARTY_ID)
        country, party = asked_to if all(asked_to) else ours
        response["OCPI-from-country-code"], response["OCPI-from-party-id"] = _header_safe(country), _header_safe(party)
        if all(asked_from):
            response["OCPI-to-country-code"] = _header_safe(asked_from[0])
            response["OCPI-to-party-id"] = _header_safe(asked_from[1])


def json_body(request) -> dict:
    """The request's JSON object, or a 2001 error saying what is wrong with it."""
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise OcpiError(f"Body is not valid JSON: {exc}", status_code=INVALID_PARAMETERS) from None
    except RecursionError:  # nesting deeper than the parser's stack: not an OCPI object either
        raise OcpiError("Body is nested too deeply", status_code=INVALID_PARAMETERS) from None
    if not isinstance(data, dict):
        raise OcpiError("Body must be a JSON object", status_code=INVALID_PARAMETERS)
    return data


def public_url(path: str) -> str:
    """An absolute URL of ours as peers must use it (EVHUB_BASE_URL), whatever host the request named."""
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


# --- paging (transport_and_format: pagination) ---------------------------------------------------------

@dataclass
class Page:
    offset: int
    limit: int
    date_from: datetime | None
    date_to: datetime | None


def page_params(request) -> Page:
    """offset, limit (capped at OCPI_PAGE_LIMIT), date_from (inclusive), date_to (exclusive)."""
    cap = settings.OCPI_PAGE_LIMIT
    offset = _int_param(request, "offset", 0)
    limit = min(_int_param(request, "limit", cap), cap)
    return Page(offset=offset, limit=limit, date_from=_datetime_param(request, "date_from"),
                date_to=_datetime_param(request, "date_to"))


def page_headers(request, page: Page, total: int, returned: int) -> dict:
    """X-Total-Count, X-Limit, and a Link to the next page (with the same filters) only when there is one."""
    headers = {"X-Total-Count": str(total), "X-Limit": str(page.limit)}
    if page.offset + returned < total and returned:
        query = {key: value for key, value in request.GET.items() if key not in ("offset", "limit")}
        query.update(offset=page.offset + returned, limit=page.limit)
        url = public_url(request.path) + "?" + urlencode(query)
        headers["Link"] = f'<{url}>; rel="next"'
    return headers


def _int_param(request, name: str, default: int) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise OcpiError(f"'{name}' must be a non-negative whole number, not {raw[:40]!r}",
                        status_code=INVALID_PARAMETERS)
    return int(raw)


def _datetime_param(request, name: str) -> datetime | None:
    raw = request.GET.get(name)
    if not raw:
        return None
    try:
        moment = parse_datetime(raw.replace(" ", "+"))  # a '+' offset arrives as a space when not escaped
    except ValueError:
        moment = None
    if moment is None:
        raise OcpiError(f"'{name}' must be an RFC 3339 date-time such as 2024-01-31T12:00:00Z, not {raw[:40]!r}",
                        status_code=INVALID_PARAMETERS)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# --- request ids ----------------------------------------------------------------------------------------

_HEADER_VALUE = re.compile(r"[\x21-\x7e]{1,100}")


def _header_safe(value: str) -> str:
    return value if value and _HEADER_VALUE.fullmatch(value) else "-"


def ocpi_headers_middleware(get_response):
    """Echo X-Request-ID and X-Correlation-ID on OCPI paths, as the peer sent them (or new ones)."""

    def middleware(request):
        response = get_response(request)
        if request.path.startswith("/ocpi/"):
            request_id = request.headers.get("X-Request-ID", "")
            if _HEADER_VALUE.fullmatch(request_id):
                response["X-Request-ID"] = request_id
            elif not response.has_header("X-Request-ID"):
                response["X-Request-ID"] = str(uuid.uuid4())
            correlation_id = request.headers.get("X-Correlation-ID", "")
            response["X-Correlation-ID"] = (
                correlation_id if _HEADER_VALUE.fullmatch(correlation_id) else response["X-Request-ID"]
            )
        return response

    return middleware

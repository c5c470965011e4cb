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
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, router
from django.db.models.expressions import Col
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
    """Find the caller by its token's digest (a lookup by SHA-256 digest tells nothing about the token).

    Every candidate token and every kind of caller is looked up at once (one round trip); the first
    candidate that matches decides, and within it: a connected peer (the one with parties first), a CPO
    of ours by its token C, a not suspended peer by its token A. Read on every request, never cached: a
    peer disconnected or rotated by any process is refused at once.
    """
    value = header_token(request)
    if value is None:
        raise OcpiError("Authorization header missing: send 'Authorization: Token <token>'", http_status=401)
    tokens = {token_digest(token): token for token in token_candidates(value)}  # in the order of the candidates
    found = _callers_found(list(tokens))
    for digest, token in tokens.items():
        caller = found.get(digest)
        if caller is None:
            continue
        if caller.kind == "A" and not allow_token_a:
            raise OcpiError("Token A is good for versions and credentials only; use the token of the "
                            "credentials handshake", http_status=401)
        caller.token = token
        return caller
    raise OcpiError("Unknown token: it does not belong to any registered party", http_status=401)


# The authentication runs on every OCPI request. Through the ORM (a select_related query built and compiled
# each time, then the instances) it cost about 1 ms of CPU, a quarter of a PUT; it is plain SQL instead, made
# once per database connection, read into instances as the ORM would. The three lookups go to PostgreSQL as
# one batch (one round trip): as one UNION, padded with NULLs, they took twice as long to plan.

class _Columns:
    """The concrete fields of a model from `start` in a row, and how to turn them into an instance."""

    def __init__(self, model, connection, alias: str, start: int = 0):
        fields = model._meta.concrete_fields
        self.model, self.start, self.stop = model, start, start + len(fields)
        self.pk = start + fields.index(model._meta.pk)
        self.names = [field_.attname for field_ in fields]
        self.at = {name: start + index for index, name in enumerate(self.names)}  # attname -> row index
        self.sql = ", ".join(f"{alias}.{connection.ops.quote_name(field_.column)}" for field_ in fields)
        self.converters = []  # (index, converters, column): what the compiler would apply to each value
        for index, field_ in enumerate(fields):
            col = Col(alias, field_)
            converters = connection.ops.get_db_converters(col) + field_.get_db_converters(connection)
            if converters:
                self.converters.append((index, converters, col))

    def instance(self, row, connection):
        if row[self.pk] is None:  # the outer side of a LEFT JOIN that found nothing
            return None
        values = list(row[self.start:self.stop])
        for index, converters, col in self.converters:
            for converter in converters:
                values[index] = converter(values[index], col, connection)
        return self.model.from_db(connection.alias, self.names, values)


class _CallerQueries:
    """The connected peers (with their parties and those parties' CPOs), the CPOs by token C and the
    not suspended peers by token A whose digests are one of two."""

    def __init__(self, connection):
        qn = connection.ops.quote_name

        def column(model, name: str) -> str:
            return qn(model._meta.get_field(name).column)

        peers, parties, cpos = (qn(model._meta.db_table) for model in (Peer, PeerParty, Cpo))
        self.peer = _Columns(Peer, connection, "p")
        self.party = _Columns(PeerParty, connection, "pp", self.peer.stop)
        self.party_cpo = _Columns(Cpo, connection, "c", self.party.stop)
        self.cpo = _Columns(Cpo, connection, "c")
        state = column(Peer, "state")
        self.statements = [
            f"SELECT {self.peer.sql}, {self.party.sql}, {self.party_cpo.sql} FROM {peers} p "
            f"LEFT JOIN {parties} pp ON pp.{column(PeerParty, 'peer')} = p.{column(Peer, 'id')} "
            f"LEFT JOIN {cpos} c ON c.{column(Cpo, 'id')} = pp.{column(PeerParty, 'cpo')} "
            f"WHERE p.{column(Peer, 'token_in_digest')} IN (%s, %s) AND p.{state} = %s",
            f"SELECT {self.cpo.sql} FROM {cpos} c WHERE c.{column(Cpo, 'token_c_digest')} IN (%s, %s)",
            f"SELECT {self.peer.sql} FROM {peers} p WHERE p.{column(Peer, 'token_a_digest')} IN (%s, %s) "
            f"AND p.{state} <> %s",
        ]
        # Django's psycopg cursor binds parameters on the client, so statements joined by ';' go as one.
        self.batched = (connection.vendor == "postgresql"
                        and not connection.settings_dict["OPTIONS"].get("server_side_binding"))

    def rows(self, connection, digests: list[str]) -> list[list[tuple]]:
        pair = [digests[0], digests[-1]]  # always two: the same SQL every time
        params = [[*pair, Peer.State.CONNECTED], pair, [*pair, Peer.State.SUSPENDED]]
        with connection.cursor() as cursor:
            if not self.batched:
                results = []
                for sql, values in zip(self.statements, params):
                    cursor.execute(sql, values)
                    results.append(cursor.fetchall())
                return results
            cursor.execute("; ".join(self.statements), [value for values in params for value in values])
            results = [cursor.fetchall()]
            while cursor.nextset():
                results.append(cursor.fetchall())
            return results


_CALLER_QUERIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # database connection -> its queries


def _callers_found(digests: list[str]) -> dict[str, Caller]:
    """The caller each digest names, by the rules of caller_authenticate (the lowest id first where two
    rows could answer, as the ORM's queries did; digests are unique in practice)."""
    connection = connections[router.db_for_read(Peer)]
    queries = _CALLER_QUERIES.get(connection)
    if queries is None:
        queries = _CALLER_QUERIES[connection] = _CallerQueries(connection)
    connected_rows, cpo_rows, token_a_rows = queries.rows(connection, digests)
    connected: dict[str, dict[int, tuple[Peer, list[PeerParty]]]] = {}  # digest -> peer id -> (peer, parties)
    for row in connected_rows:
        peers = connected.setdefault(row[queries.peer.at["token_in_digest"]], {})
        if row[queries.peer.pk] not in peers:
            peers[row[queries.peer.pk]] = (queries.peer.instance(row, connection), [])
        peer, parties = peers[row[queries.peer.pk]]
        party = queries.party.instance(row, connection)
        if party is not None:
            PeerParty.peer.field.set_cached_value(party, peer)
            PeerParty.cpo.field.set_cached_value(party, queries.party_cpo.instance(row, connection))
            parties.append(party)
    by_token_c = _lowest_pk(cpo_rows, queries.cpo, "token_c_digest")
    by_token_a = _lowest_pk(token_a_rows, queries.peer, "token_a_digest")
    found: dict[str, Caller] = {}
    for digest in digests:
        if digest in connected:
            peers = connected[digest]
            peer, parties = peers[min(peers, key=lambda pk: (not peers[pk][1], pk))]  # with parties first
            parties.sort(key=lambda party: party.pk)
            found[digest] = Caller(kind="PEER", token="", peer=peer, parties=parties)
        elif digest in by_token_c:
            found[digest] = Caller(kind="CPO", token="", cpo=queries.cpo.instance(by_token_c[digest], connection))
        elif digest in by_token_a:
            found[digest] = Caller(kind="A", token="", peer=queries.peer.instance(by_token_a[digest], connection))
    return found


def _lowest_pk(rows: list[tuple], columns: _Columns, digest: str) -> dict[str, tuple]:
    """digest -> the row with the lowest id among those with that digest."""
    chosen: dict[str, tuple] = {}
    for row in rows:
        key = row[columns.at[digest]]
        if key not in chosen or row[columns.pk] < chosen[key][columns.pk]:
            chosen[key] = row
    return chosen


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
    """offset, limit (OCPI_PAGE_SIZE when not given, capped at OCPI_PAGE_LIMIT), date_from (inclusive),
    date_to (exclusive)."""
    cap = settings.OCPI_PAGE_LIMIT
    offset = _int_param(request, "offset", 0)
    limit = min(_int_param(request, "limit", min(settings.OCPI_PAGE_SIZE, cap)), cap)
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

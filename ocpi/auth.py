"""Who is calling an OCPI endpoint: a peer by its token (or token A while registering), or a CPO of
ours by its token C. Tokens are found by their SHA-256 digest, never compared as text."""

import base64
import binascii
import re
import weakref
from dataclasses import dataclass, field

from django.db import connections, router

from emsp import throttle
from locations.models import Cpo
from locations.rows import converted, db_converters
from locations.tokens import token_digest
from ocpi.hub import peer_is_hub
from ocpi.models import Peer, PeerParty
from ocpi.status import OcpiError

_PARTY = re.compile(r"[A-Z]{2}[A-Z0-9]{3}")  # country_code and party_id (credentials.asciidoc)

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

    def cpo_party(self, country_code: str, party_id: str, *, adopt: bool = True) -> Cpo | None:
        """The catalogue tenant the caller writes as CPO `country_code`/`party_id`, or None when it may not.

        A hub names only itself in its credentials (credentials.asciidoc), so a peer whose roles include
        HUB may write for any party behind it: one its HubClientInfo reported, or, on first sight, one
        that is neither ours nor anyone else's (another peer's, a portal CPO's); that party is then
        recorded as the hub's (PeerParty via_hub) with a tenant of its own (ocpi.services); not on a read
        (`adopt=False`): a GET creates nothing."""
        key = (country_code.upper(), party_id.upper())
        for cpo in self.cpo_parties():
            if (cpo.country_code.upper(), cpo.party_id.upper()) == key:
                return cpo
        if not adopt or self.kind != "PEER" or not peer_is_hub(self.peer) or not _PARTY.fullmatch("".join(key)):
            return None
        from ocpi.services import peer_party_behind_hub

        try:
            party, _ = peer_party_behind_hub(peer=self.peer, role="CPO", country_code=key[0], party_id=key[1])
        except OcpiError:
            return None
        self.parties.append(party)
        return party.cpo


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
    # OCPI has no status code for this: an error of the HTTP layer, answered in the envelope
    # (transport_and_format, "Response format"), 2000 inside.
    address = throttle.client_address(request)
    wait = throttle.guessing_blocked(throttle.OCPI_TOKEN, address)
    if wait:
        raise OcpiError(f"Too many unknown tokens from this address: try again in {wait} seconds",
                        http_status=429, headers={"Retry-After": str(wait)})
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
    throttle.guess_failed(throttle.OCPI_TOKEN, address)
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
        self.converters = db_converters(fields, alias, connection)  # what the compiler would apply

    def instance(self, row, connection):
        if row[self.pk] is None:  # the outer side of a LEFT JOIN that found nothing
            return None
        values = converted(list(row[self.start:self.stop]), self.converters, connection)
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

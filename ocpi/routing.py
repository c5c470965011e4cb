"""Message routing by the four OCPI-to/from-* headers (transport_and_format: "Message Routing").

Every routed (functional module) view asks `route_resolve` who is asking and for whom, before it runs:

- `OCPI-from-*` (both or neither) must be one of the caller's own parties: a peer's parties (those behind it
  when it is a hub, `via_hub`, included), or a portal CPO's own party. Anything else is refused (2001): a
  caller speaks only for itself.
- `OCPI-to-*` names who answers. Absent or our own party: we do (a broadcast, or the hub's own answer).
  A catalogue tenant of ours that no other connected peer represents: we do, for that party only.
  A party of another connected peer: in hub mode (settings.EVHUB_OCPI_HUB) the request is forwarded to
  that peer and its answer returned (`route_forward`); a plain CPO/eMSP platform routes nothing. Any other
  party: 4001, unknown receiver.

The answer carries OCPI-from-* of the party that answered and OCPI-to-* of the caller's party
(`route_headers`), only ever values checked against our own records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from django.conf import settings

from locations.models import Cpo
from locations.tokens import secret_decrypt
from ocpi.auth import Caller
from ocpi.client import AddressRefused, OcpiClient, PeerError, PeerTimeout
from ocpi.models import Peer, PeerParty
from ocpi.status import (
    CLIENT_ERROR, COUNTRY_CODE, HEADER_VALUE, INVALID_PARAMETERS, NO_MATCHING_ENDPOINTS, PARTY_ID, UNSUPPORTED_VERSION,
    OcpiError,
)

# status_codes.asciidoc, 4xxx: errors a hub meets while routing.
HUB_ERROR, UNKNOWN_RECEIVER, FORWARD_TIMEOUT, CONNECTION_PROBLEM = 4000, 4001, 4002, 4003

Party = tuple[str, str]  # (country_code, party_id), upper case

_SEGMENT = re.compile(r"[\x20-\x7e]{1,39}")  # an id of a URL (CiString(36), 39 in 2.1.1) or a fixed word
_QUERY_LIMIT = 2000
_PAGING_HEADERS = ("X-Total-Count", "X-Limit")


@dataclass
class Route:
    """Where a request goes and how its answer is labelled."""

    caller_party: Party | None = None  # the caller's OCPI-from-* (checked), or its only party
    answering: Party | None = None  # our answer's OCPI-from-*: ours, a tenant's, or the forwarded peer's party
    cpo: Cpo | None = None  # a catalogue tenant of ours the request is for: answered for that party only
    peer: Peer | None = None  # forwarded to this peer ...
    endpoint: str = ""  # ... at its endpoint of the view's module and interface
    parties: list[Party] = field(default_factory=list, repr=False)  # all of the caller's parties
    refusal: OcpiError | None = None  # what was wrong with its OCPI-from-* (answered still to its only party)


def our_party() -> Party:
    return settings.EVHUB_COUNTRY_CODE.upper(), settings.EVHUB_PARTY_ID.upper()


# --- resolving ---------------------------------------------------------------------------------------------

def route_caller(*, request, caller: Caller) -> Route:
    """The caller's party, from its OCPI-from-* headers (checked), or its only party when it sent none.
    Headers that are not one of its parties leave a `refusal` for `route_target` to raise."""
    parties = _caller_parties(caller)
    route = Route(answering=our_party(), parties=parties, caller_party=parties[0] if len(parties) == 1 else None)
    try:
        sent = _party_header(request, "from")
    except OcpiError as error:
        route.refusal = error
        return route
    if sent is None:
        return route
    if sent not in parties:
        yours = ", ".join(f"{cc}/{pid}" for cc, pid in parties) or "none"
        route.refusal = OcpiError(f"OCPI-from {sent[0]}/{sent[1]} is not one of the parties of your credentials "
                                  f"(yours: {yours}): a request is sent from one of its sender's own parties",
                                  status_code=INVALID_PARAMETERS)
        return route
    route.caller_party = sent
    return route


def route_target(*, request, route: Route, caller: Caller, version: str, module: str, interface: str) -> Route:
    """Who answers the request: fills `route` (cpo, or peer and endpoint), or raises 4001 (and others)."""
    if route.refusal is not None:
        raise route.refusal
    wanted = _party_header(request, "to")
    if wanted is None or wanted == our_party():
        return route
    behind = _peers_behind(wanted, caller)
    if behind and settings.EVHUB_OCPI_HUB:
        chosen = next((party for party in behind if interface and party.peer.endpoint(module, interface)), None)
        if chosen is not None:
            return _forwarded(request, route, chosen, version=version, module=module, interface=interface)
        if not any(party.cpo_id for party in behind):
            # 3003, not 4001: the receiver is known and connected, but not for this module in this role.
            # status_codes: 3003 "No matching endpoints or expected endpoints missing between parties";
            # 4001 would tell the caller the party does not exist, and it would give up on it.
            raise OcpiError(f"{wanted[0]}/{wanted[1]} offers no {module} {interface.lower()} endpoint to this hub",
                            status_code=NO_MATCHING_ENDPOINTS, http_status=200)
        # The party's peer serves no such endpoint, but pushed its objects to us: our copy answers.
    tenant = Cpo.objects.filter(country_code__iexact=wanted[0], party_id__iexact=wanted[1]).first()
    if tenant is not None:
        route.cpo, route.answering = tenant, wanted
        return route
    raise OcpiError(f"Unknown receiver {wanted[0]}/{wanted[1]}: no party of that name is connected to "
                    f"{our_party()[0]}/{our_party()[1]}", status_code=UNKNOWN_RECEIVER, http_status=404)


def _forwarded(request, route: Route, party: PeerParty, *, version: str, module: str, interface: str) -> Route:
    peer = party.peer
    if peer.version and peer.version != version:
        raise OcpiError(f"{party.country_code}/{party.party_id} speaks OCPI {peer.version} with this hub, not "
                        f"{version}: call its {peer.version} endpoints", status_code=UNSUPPORTED_VERSION,
                        http_status=200)
    if route.caller_party is None:
        raise OcpiError("Send OCPI-from-country-code and OCPI-from-party-id: your credentials have several "
                        "parties, and a forwarded request names the one it comes from", status_code=INVALID_PARAMETERS)
    owner = _url_party(request)
    if owner is not None and owner not in route.parties:
        # Client Owned Objects: only their owner addresses them (the peer behind us cannot tell who asks).
        raise OcpiError(f"{owner[0]}/{owner[1]} is not a party of your credentials; objects are addressed under "
                        "the party that owns them", status_code=CLIENT_ERROR, http_status=404)
    route.peer, route.endpoint = peer, peer.endpoint(module, interface)
    route.answering = (party.country_code.upper(), party.party_id.upper())
    return route


def _caller_parties(caller: Caller) -> list[Party]:
    if caller.kind == "CPO" and caller.cpo is not None:
        return [(caller.cpo.country_code.upper(), caller.cpo.party_id.upper())]
    if caller.peer is None:
        return []
    if caller.parties is None:
        caller.parties = list(caller.peer.parties.select_related("cpo").order_by("pk"))
    parties: list[Party] = []
    for party in caller.parties:
        pair = (party.country_code.upper(), party.party_id.upper())
        if pair not in parties:
            parties.append(pair)
    return parties


def _peers_behind(wanted: Party, caller: Caller) -> list[PeerParty]:
    """The parties of that name of connected peers other than the caller (parties behind a hub that are
    not connected there, by its ClientInfo, are left out: their hub could not deliver)."""
    parties = (PeerParty.objects.select_related("peer")
               .filter(peer__state=Peer.State.CONNECTED, country_code__iexact=wanted[0], party_id__iexact=wanted[1])
               .exclude(via_hub=True, status__in=("OFFLINE", "SUSPENDED")).order_by("pk"))
    if caller.peer is not None:
        parties = parties.exclude(peer=caller.peer)
    return list(parties)


def _party_header(request, side: str) -> Party | None:
    """OCPI-{side}-country-code and -party-id as a checked pair (upper case), None when neither is sent."""
    country = request.headers.get(f"OCPI-{side}-country-code", "").strip()
    party = request.headers.get(f"OCPI-{side}-party-id", "").strip()
    if not country and not party:
        return None
    if not country or not party:
        raise OcpiError(f"Send both OCPI-{side}-country-code and OCPI-{side}-party-id, or neither",
                        status_code=INVALID_PARAMETERS)
    if not COUNTRY_CODE.fullmatch(country) or not PARTY_ID.fullmatch(party):
        raise OcpiError(f"OCPI-{side}-country-code must be 2 letters and OCPI-{side}-party-id 3 letters or "
                        f"digits, not {country[:10]!r} and {party[:10]!r}", status_code=INVALID_PARAMETERS)
    return country.upper(), party.upper()


def _url_party(request) -> Party | None:
    kwargs = getattr(request.resolver_match, "kwargs", None) or {}
    if "country_code" in kwargs and "party_id" in kwargs:
        return str(kwargs["country_code"]).upper()[:2], str(kwargs["party_id"]).upper()[:3]
    return None


# --- forwarding --------------------------------------------------------------------------------------------

def route_forward(*, request, route: Route, module: str):
    """The peer's answer to the request, sent to it as received (method, the path below the module URL,
    query, body, X-Correlation-ID, routing headers), as an envelope of ours; a failure as 4002/4003/4000."""
    from ocpi.transport import envelope, public_url  # transport imports this module

    prefix, tail = _split_path(request.path, module)
    query = request.META.get("QUERY_STRING", "")
    if len(query) > _QUERY_LIMIT:
        raise OcpiError(f"Query string longer than {_QUERY_LIMIT} characters", status_code=INVALID_PARAMETERS)
    url = route.endpoint.rstrip("/") + tail + (f"?{query}" if query else "")
    correlation = request.headers.get("X-Correlation-ID", "")
    client = OcpiClient(token=secret_decrypt(route.peer.token_out), version=route.peer.version, retries=0,
                        from_party=route.caller_party, to_party=route.answering)
    who = f"{route.answering[0]}/{route.answering[1]}"
    # status_codes: a request that reached the OCPI layer is answered in the envelope without an HTTP error;
    # the hub's 4xxx says what went wrong on the way.
    try:
        reply = client.request(request.method, url, content=request.body or None,
                               correlation_id=correlation if HEADER_VALUE.fullmatch(correlation) else None)
    except PeerTimeout:
        raise OcpiError(f"{who} did not answer the forwarded request in time", status_code=FORWARD_TIMEOUT,
                        http_status=200) from None
    except AddressRefused:
        raise OcpiError(f"{who} cannot be reached from this hub (its address is refused)",
                        status_code=CONNECTION_PROBLEM, http_status=200) from None
    except PeerError as exc:
        answered = getattr(exc, "http_status", None)
        if answered is None or answered >= 500:  # no answer at all, or its server (or proxy) is down
            raise OcpiError(f"{who} is not reachable: connection failed", status_code=CONNECTION_PROBLEM,
                            http_status=200) from None
        raise OcpiError(f"{who} answered HTTP {answered} without an OCPI envelope", status_code=HUB_ERROR,
                        http_status=200) from None
    if reply.http_status in (401, 403) or reply.status_code is None:
        # Its refusal of the hub's own token is not the caller's to see as its own 401.
        raise OcpiError(f"{who} refused the hub's request (HTTP {reply.http_status})",
                        status_code=CONNECTION_PROBLEM if reply.http_status in (401, 403) else HUB_ERROR,
                        http_status=200)
    headers = {name: reply.headers[name] for name in _PAGING_HEADERS
               if name in reply.headers and reply.headers[name].isdigit() and len(reply.headers[name]) < 12}
    link = _link_ours(reply.headers.get("Link", ""), route.endpoint, public_url(prefix))
    if link:
        headers["Link"] = link
    return envelope(reply.data, status_code=reply.status_code, message=reply.status_message[:500],
                    http_status=reply.http_status if 200 <= reply.http_status < 600 else 200, headers=headers)


def _split_path(path: str, module: str) -> tuple[str, str]:
    """Our module URL (up to the module's segment after /ocpi/<version>/) and the rest, each id quoted."""
    segments = path.rstrip("/").split("/")
    try:
        at = segments.index(module, 3)
    except ValueError:
        raise OcpiError("This endpoint cannot be forwarded", status_code=NO_MATCHING_ENDPOINTS,
                        http_status=200) from None
    tail = segments[at + 1:]
    for segment in tail:
        if not _SEGMENT.fullmatch(segment):
            raise OcpiError(f"{segment[:40]!r} in the URL is not an OCPI id (printable ASCII, at most 39)",
                            status_code=INVALID_PARAMETERS)
    return "/".join(segments[:at + 1]), "".join("/" + quote(segment, safe="") for segment in tail)


_LINK = re.compile(r'<([^<>]{1,2000})>\s*;\s*rel="?next"?')
_URL_TEXT = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]{1,2100}")  # printable, no space, no < or >


def _link_ours(link: str, endpoint: str, ours: str) -> str:
    """The peer's Link to its next page as one to ours (the caller comes back through the hub), when it
    points below the endpoint we called; else none (an address of the peer's is not handed on)."""
    match = _LINK.fullmatch(link.strip())
    if not match:
        return ""
    target, base = urlsplit(match.group(1)), urlsplit(endpoint.rstrip("/"))
    if (target.scheme, target.netloc) != (base.scheme, base.netloc) or not (
            target.path == base.path or target.path.startswith(base.path + "/")):
        return ""
    url = ours + target.path[len(base.path):] + (f"?{target.query}" if target.query else "")
    return f'<{url}>; rel="next"' if _URL_TEXT.fullmatch(url) else ""


# --- the answer's headers ----------------------------------------------------------------------------------

def route_headers(*, response, route: Route | None) -> None:
    """OCPI-from-* of who answered, OCPI-to-* of the caller's checked party (none when not known)."""
    answering = route.answering if route is not None and route.answering else our_party()
    response["OCPI-from-country-code"], response["OCPI-from-party-id"] = answering
    if route is not None and route.caller_party:
        response["OCPI-to-country-code"], response["OCPI-to-party-id"] = route.caller_party

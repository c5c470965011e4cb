"""The credentials handshake's parts that write nothing (credentials.asciidoc, version_information_endpoint).

Our credentials object, reading a peer's, and discovering a peer's versions and endpoints through
OcpiClient. `ocpi.services` does the writes; `ocpi.credentials` answers the peers.
"""

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.urls import reverse

from locations.enums import Moderation
from locations.models import Cpo, Location
from ocpi.client import OcpiClient, PeerError
from ocpi.transport import (
    CLIENT_API_ERROR, INVALID_PARAMETERS, NO_MATCHING_ENDPOINTS, UNSUPPORTED_VERSION, V211, V221, VERSIONS,
    OcpiError, public_url,
)
from ocpi.models import Peer
from ocpi.routing import our_party
from ocpi.status import COUNTRY_CODE, PARTY_ID

ROLES = ("CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP")  # types.asciidoc: Role
_TOKEN = re.compile(r"[\x21-\x7e]{1,64}")  # credentials object: printable non-whitespace ASCII, string(64)


@dataclass(frozen=True)
class Party:
    role: str
    country_code: str
    party_id: str
    name: str

    def as_role(self) -> dict:
        return {"role": self.role, "country_code": self.country_code, "party_id": self.party_id,
                "business_details": {"name": self.name}}


@dataclass(frozen=True)
class Credentials:
    """A peer's credentials object, checked: the token to call it with, its versions URL, its parties."""

    token: str
    url: str
    parties: tuple[Party, ...]


@dataclass
class Discovery:
    """What a peer's versions endpoint told us: the version we will speak and its endpoints."""

    version: str
    endpoints: dict = field(default_factory=dict)  # {identifier: {SENDER|RECEIVER|ANY: url}}


# --- our credentials object -----------------------------------------------------------------------------

def our_versions_url() -> str:
    return public_url(reverse("ocpi-versions"))


def our_credentials(*, version: str, token: str, peer: Peer | None = None, with_parties: bool = True) -> dict:
    """2.2.1 as a hub (EVHUB_OCPI_HUB): one role, HUB, of our party. credentials.asciidoc: a Hub SHALL only
    report itself as role HUB and SHALL NOT report the other connected parties (HubClientInfo does).
    2.2.1 as a plain platform: roles CPO (to send our catalogue) and EMSP (to receive CPOs') of our party,
    and a CPO role for every party whose published locations we send (a plain receiver accepts a location
    only from a party named here). 2.1.1 has room for one party only: ours."""
    country_code, party_id = settings.EVHUB_COUNTRY_CODE, settings.EVHUB_PARTY_ID
    business_details = {"name": settings.EVHUB_BUSINESS_NAME}
    if version == V211:
        return {"token": token, "url": our_versions_url(), "business_details": business_details,
                "party_id": party_id, "country_code": country_code}
    if settings.EVHUB_OCPI_HUB:
        return {"token": token, "url": our_versions_url(), "roles": [
            {"role": "HUB", "party_id": party_id, "country_code": country_code, "business_details": business_details}]}
    roles = [{"role": role, "party_id": party_id, "country_code": country_code,
              "business_details": business_details} for role in ("CPO", "EMSP")]
    roles += [Party(role="CPO", country_code=cpo.country_code, party_id=cpo.party_id,
                    name=cpo.owner_name[:100] or f"{cpo.country_code}*{cpo.party_id}").as_role()
              for cpo in (_catalogue_parties(peer=peer) if with_parties else ())]
    return {"token": token, "url": our_versions_url(), "roles": roles}


def _catalogue_parties(*, peer: Peer | None) -> list[Cpo]:
    """The CPOs with published locations, except the hub's own party and the peer's own parties."""
    published = Location.objects.filter(cpo=OuterRef("pk"), moderation=Moderation.PUBLISHED)
    cpos = (Cpo.objects.filter(Exists(published))
            .exclude(country_code__iexact=settings.EVHUB_COUNTRY_CODE, party_id__iexact=settings.EVHUB_PARTY_ID)
            .order_by("country_code", "party_id"))
    if peer is not None and peer.pk:
        cpos = cpos.exclude(ocpi_parties__peer=peer)
    return list(cpos.only("country_code", "party_id", "owner_name"))


def is_our_party(party: Party) -> bool:
    return (party.country_code, party.party_id) == our_party()


# --- reading a peer's credentials object ----------------------------------------------------------------

def _invalid(field_name: str, problem: str) -> OcpiError:
    return OcpiError(f"Invalid credentials object: '{field_name}' {problem}", status_code=INVALID_PARAMETERS)


def _string(data: dict, key: str, *, where: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _invalid(where + key, "is missing or not a non-empty string")
    return value.strip()


def _party(data, *, role: str, where: str) -> Party:
    if not isinstance(data, dict):
        raise _invalid(where.rstrip("."), "must be an object")
    country_code = _string(data, "country_code", where=where)
    party_id = _string(data, "party_id", where=where)
    if not COUNTRY_CODE.fullmatch(country_code):
        raise _invalid(where + "country_code", "must be an ISO 3166-1 alpha-2 code such as 'NL'")
    if not PARTY_ID.fullmatch(party_id):
        raise _invalid(where + "party_id", "must be three letters or digits (ISO 15118)")
    details = data.get("business_details")
    if not isinstance(details, dict):
        raise _invalid(where + "business_details", "is missing or not an object")
    name = _string(details, "name", where=where + "business_details.")
    if len(name) > 100:
        raise _invalid(where + "business_details.name", "is longer than 100 characters")
    return Party(role=role, country_code=country_code.upper(), party_id=party_id.upper(), name=name)


def _roles(data: dict) -> tuple[Party, ...]:
    roles = data.get("roles")
    if not isinstance(roles, list) or not roles:
        raise _invalid("roles", "must be a non-empty list of CredentialsRole")
    parties = []
    for index, role in enumerate(roles):
        where = f"roles[{index}]."
        name = role.get("role") if isinstance(role, dict) else None
        if name not in ROLES:
            raise _invalid(where + "role", f"must be one of {', '.join(ROLES)}")
        parties.append(_party(role, role=name, where=where))
    keys = [(p.role, p.country_code, p.party_id) for p in parties]
    if len(set(keys)) != len(keys):
        raise _invalid("roles", "lists the same role, country_code and party_id twice")
    return tuple(parties)


def credentials_read(*, version: str, data, peer: Peer | None = None) -> Credentials:
    """A peer's credentials object, or a 2001 error naming the field that is wrong.

    2.1.1 has one party and no role: its role is the one chosen on our side for the peer (`v211_role`,
    at the invitation or registration); CPO without a peer.
    """
    if not isinstance(data, dict):
        raise _invalid("(body)", "must be a credentials object")
    token = data.get("token")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise _invalid("token", "must be 1 to 64 printable ASCII characters without spaces")
    url = _string(data, "url")
    if not re.match(r"https?://[^/\s]+", url) or len(url) > 255:
        raise _invalid("url", "must be the absolute http(s) URL of the versions endpoint, up to 255 characters")
    v211_role = peer.v211_role if peer is not None else "CPO"
    parties = (_party(data, role=v211_role, where=""),) if version == V211 else _roles(data)
    return Credentials(token=token, url=url, parties=parties)


# --- discovering a peer's versions and endpoints ---------------------------------------------------------

# 3xxx: the request was good, we could not use the other platform. status_codes.asciidoc: a syntactically
# valid request to an existing resource MUST NOT get an HTTP error, so these go with HTTP 200.
def _unusable(message: str) -> OcpiError:
    return OcpiError(message, status_code=CLIENT_API_ERROR, http_status=200)


def _get(client: OcpiClient, url: str, what: str):
    try:
        reply = client.get(url, routed=False)
    except PeerError as exc:
        raise _unusable(f"Could not read your {what} at {url[:200]}: {exc}") from None
    if not reply.ok:
        raise _unusable(f"Your {what} at {url[:200]} answered HTTP {reply.http_status}, "
                        f"status_code {reply.status_code}: {reply.status_message[:200]}")
    return reply


def _versions(*, url: str, token: str, version: str | None) -> tuple[list, str]:
    """The peer's versions list, and the token form it accepted: the version's form when the version is
    known, else base64 (2.2.1) first and the plain token (2.1.1) when that is refused with a 401."""
    forms = [version] if version else [V221, V211]
    for form in forms:
        client = OcpiClient(token=token, version=form)
        try:
            reply = client.get(url, routed=False)
        except PeerError as exc:
            raise _unusable(f"Could not read your versions at {url[:200]}: {exc}") from None
        if reply.http_status == 401 and form != forms[-1]:
            continue
        if not reply.ok or not isinstance(reply.data, list):
            raise _unusable(f"Your versions endpoint at {url[:200]} answered HTTP {reply.http_status}, "
                            f"status_code {reply.status_code}, without a list of versions")
        return reply.data, form
    raise AssertionError("unreachable")


def _version_url(versions: list, version: str) -> str | None:
    for entry in versions:
        if isinstance(entry, dict) and entry.get("version") == version and isinstance(entry.get("url"), str):
            return entry["url"]
    return None


def _endpoints(details, version: str) -> dict:
    if not isinstance(details, dict) or not isinstance(details.get("endpoints"), list):
        raise _unusable(f"Your {version} version details have no list of endpoints")
    endpoints: dict = {}
    for endpoint in details["endpoints"]:
        if not isinstance(endpoint, dict):
            continue
        identifier, url, role = endpoint.get("identifier"), endpoint.get("url"), endpoint.get("role")
        if not isinstance(identifier, str) or not isinstance(url, str) or not url.startswith(("http://", "https://")):
            continue
        role = role if role in ("SENDER", "RECEIVER") and version != V211 else "ANY"
        endpoints.setdefault(identifier, {})[role] = url
    if "credentials" not in endpoints:
        # Every implementation has the credentials module (credentials.asciidoc); without it we could
        # not rotate or unregister.
        raise OcpiError(f"Your {version} version details list no credentials endpoint",
                        status_code=NO_MATCHING_ENDPOINTS, http_status=200)
    return endpoints


def peer_discover(*, versions_url: str, token: str, version: str | None = None) -> Discovery:
    """Read a peer's versions and the details of `version` (a registration at our endpoint of that
    version), or of the highest version both sides speak (when we register). 3001 when the peer cannot
    be used, 3002 without the version, 3003 without the endpoints we need."""
    versions, form = _versions(url=versions_url, token=token, version=version)
    wanted = [version] if version else list(VERSIONS)
    chosen = next((v for v in wanted if _version_url(versions, v)), None)
    if chosen is None:
        theirs = ", ".join(str(e.get("version")) for e in versions if isinstance(e, dict))[:200] or "none"
        raise OcpiError(f"No common OCPI version: we speak {', '.join(wanted)}, your versions endpoint lists "
                        f"{theirs}", status_code=UNSUPPORTED_VERSION, http_status=200)
    client = OcpiClient(token=token, version=V211 if form == V211 else chosen)
    details = _get(client, _version_url(versions, chosen), f"{chosen} version details")
    return Discovery(version=chosen, endpoints=_endpoints(details.data, chosen))


def credentials_url(endpoints: dict) -> str | None:
    urls = endpoints.get("credentials") or {}
    return urls.get("SENDER") or urls.get("RECEIVER") or urls.get("ANY")

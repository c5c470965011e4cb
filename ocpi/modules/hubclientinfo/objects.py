"""ClientInfo objects (mod_hub_client_info, "ClientInfo Object"): ours out, a hub's in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils.dateparse import parse_datetime

from ocpi.handshake import ROLES
from ocpi.hub import STATUSES, client_status
from ocpi.models import Peer, PeerParty
from ocpi.status import COUNTRY_CODE, PARTY_ID
from ocpi.transport import INVALID_PARAMETERS, OcpiError, ocpi_timestamp

FIELDS = ("party_id", "country_code", "role", "status", "last_updated")


def clientinfo_parties(*, exclude_peer: Peer | None = None):
    """The parties connected to us over OCPI (the parties peers named in their credentials, whatever the
    peer's state: a suspended one is reported SUSPENDED), with `changed` (their ClientInfo's last_updated),
    in the order of a paginated list. Parties behind another hub are its to report, not ours."""
    parties = (PeerParty.objects.filter(via_hub=False).select_related("peer")
               .annotate(changed=Coalesce("last_updated", "peer__status_changed_at", "peer__date_created"))
               .order_by("changed", "pk"))
    if exclude_peer is not None:
        parties = parties.exclude(peer=exclude_peer)
    return parties


def date_filter(parties, *, date_from: datetime | None, date_to: datetime | None):
    query = Q()
    if date_from is not None:
        query &= Q(changed__gte=date_from)
    if date_to is not None:
        query &= Q(changed__lt=date_to)  # exclusive (transport_and_format, pagination)
    return parties.filter(query)


def clientinfo_json(party: PeerParty) -> dict:
    """A party of one of our peers (party.peer loaded) as the ClientInfo we report."""
    changed = getattr(party, "changed", None) or party.last_updated or party.peer.status_changed_at \
        or party.peer.date_created
    return {"party_id": party.party_id, "country_code": party.country_code, "role": party.role,
            "status": client_status(party.peer), "last_updated": ocpi_timestamp(changed)}


def stored_json(party: PeerParty) -> dict:
    """A party a hub reported to us, as it reported it."""
    return {"party_id": party.party_id, "country_code": party.country_code, "role": party.role,
            "status": party.status or "CONNECTED", "last_updated": ocpi_timestamp(party.last_updated or party.peer.date_modified)}


@dataclass(frozen=True)
class ClientInfo:
    country_code: str
    party_id: str
    role: str
    status: str
    last_updated: datetime


def _invalid(message: str) -> OcpiError:
    return OcpiError(f"Invalid ClientInfo: {message}", status_code=INVALID_PARAMETERS)


def clientinfo_read(data: dict, *, country_code: str, party_id: str) -> ClientInfo:
    """A pushed ClientInfo, every field checked (2001 naming the first wrong one); the party must be the
    URL's."""
    for name in FIELDS:
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise _invalid(f"'{name}' is missing or not a non-empty string")
    if not COUNTRY_CODE.fullmatch(data["country_code"]):
        raise _invalid("'country_code' must be an ISO 3166-1 alpha-2 code such as 'NL'")
    if not PARTY_ID.fullmatch(data["party_id"]):
        raise _invalid("'party_id' must be three letters or digits (ISO 15118)")
    if (data["country_code"].upper(), data["party_id"].upper()) != (country_code.upper(), party_id.upper()):
        raise _invalid(f"party {data['country_code']}/{data['party_id']} of the body is not "
                       f"{country_code[:2]}/{party_id[:3]} of the URL")
    if data["role"] not in ROLES:
        raise _invalid(f"'role' must be one of {', '.join(ROLES)}")
    if data["status"] not in STATUSES:
        raise _invalid(f"'status' must be one of {', '.join(STATUSES)}")
    moment = None
    if len(data["last_updated"]) <= 40:
        try:
            moment = parse_datetime(data["last_updated"])
        except ValueError:
            moment = None
    if moment is None:
        raise _invalid("'last_updated' must be an RFC 3339 date-time such as 2024-01-31T12:00:00Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return ClientInfo(country_code=data["country_code"].upper(), party_id=data["party_id"].upper(),
                      role=data["role"], status=data["status"], last_updated=moment)

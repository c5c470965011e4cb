"""HubClientInfo endpoints (2.2.1): one URL for both roles, as the module's paths do not overlap.

- GET `{url}` (Sender, ours as a hub): the ClientInfo of every party connected to us, paginated, with
  date_from/date_to on last_updated. The caller's own parties are left out: the module "provides parties
  connected to a hub with the connection status of OTHER parties" (mod_hub_client_info), and a party knows
  its own connection.
- PUT/GET `{url}/{country_code}/{party_id}` (Receiver): a hub we are connected to reports a party behind
  it; stored as that hub's PeerParty(via_hub=True), a CPO party with its catalogue tenant, so that what the
  hub later writes for it is accepted. Only a caller whose credentials name the HUB role.
"""

from __future__ import annotations


from django.conf import settings

from ocpi import services
from ocpi.hub import peer_is_hub
from ocpi.models import PeerParty
from ocpi.status import COUNTRY_CODE, PARTY_ID
from ocpi.modules.hubclientinfo.objects import (
    clientinfo_json, clientinfo_parties, clientinfo_read, date_filter, stored_json,
)
from ocpi.transport import (
    CLIENT_ERROR, INVALID_PARAMETERS, OcpiError, OcpiView, envelope, json_body, page_headers, page_params,
)



class HubClientInfoView(OcpiView):
    module = "hubclientinfo"
    # A configuration module: platform to hub, never routed (transport_and_format, Message Routing Headers).
    routed = False

    def get(self, request, country_code: str | None = None, party_id: str | None = None):
        if country_code is None:
            return self._list(request)
        country_code, party_id = self._party(country_code, party_id)
        party = (PeerParty.objects.select_related("peer")
                 .filter(peer=self.caller.peer, via_hub=True, country_code=country_code, party_id=party_id)
                 .order_by("-last_updated", "-pk").first())
        if party is None:
            raise OcpiError(f"No ClientInfo of {country_code}/{party_id} from you", status_code=CLIENT_ERROR,
                            http_status=404)
        return envelope(stored_json(party))

    def put(self, request, country_code: str | None = None, party_id: str | None = None):
        if country_code is None:
            raise OcpiError("PUT a ClientInfo to {url}/{country_code}/{party_id}", http_status=405)
        country_code, party_id = self._party(country_code, party_id)
        info = clientinfo_read(json_body(request), country_code=country_code, party_id=party_id)
        _, created = services.peer_party_behind_hub(
            peer=self.caller.peer, role=info.role, country_code=info.country_code, party_id=info.party_id,
            status=info.status, last_updated=info.last_updated)
        return envelope(message="Created", http_status=201) if created else envelope()

    # --- the Sender's list ----------------------------------------------------------------------------

    def _list(self, request):
        if not settings.EVHUB_OCPI_HUB:
            raise OcpiError("This platform is no hub: it has no ClientInfo to send", status_code=CLIENT_ERROR,
                            http_status=404)
        if self.caller.kind not in ("PEER", "CPO"):
            raise OcpiError("Registered parties only", http_status=401)
        page = page_params(request)
        parties = date_filter(clientinfo_parties(exclude_peer=self.caller.peer),
                              date_from=page.date_from, date_to=page.date_to)
        total = parties.count()
        rows = list(parties[page.offset:page.offset + page.limit]) if page.offset < total else []
        return envelope([clientinfo_json(party) for party in rows],
                        headers=page_headers(request, page, total, len(rows)))

    # --- the Receiver's scope --------------------------------------------------------------------------

    def _party(self, country_code: str, party_id: str) -> tuple[str, str]:
        if not (COUNTRY_CODE.fullmatch(country_code) and PARTY_ID.fullmatch(party_id)):
            raise OcpiError(f"{country_code[:8]!r}/{party_id[:8]!r} is not a country_code (2 letters) and a "
                            "party_id (3 letters or digits)", status_code=INVALID_PARAMETERS)
        if self.caller.kind != "PEER" or not peer_is_hub(self.caller.peer):
            raise OcpiError("Only a hub reports ClientInfo to this platform: your credentials name no HUB role",
                            status_code=CLIENT_ERROR, http_status=403)
        return country_code.upper(), party_id.upper()

"""Our CPO role (Sender interface): the hub's published catalogue for eMSPs to pull.

Every CPO's published locations except the caller's own parties' (a peer that is both CPO and eMSP
does not get its own locations back); a portal CPO calling with its token C gets its own only; of each, the EVSEs the hub published, REMOVED ones included with
that status. 2.1.1 has no `publish` flag to pass on, so locations a CPO asked not to publish are left
out there. The list is ordered by (last_updated, id) and paginated as transport_and_format says.
"""

from __future__ import annotations

from locations.memory import gc_paused
from locations.selectors import location_rows_ocpi, locations_ocpi
from ocpi.modules.locations.objects import V211, location_json
from ocpi.modules.locations.paths import object_below, object_id, unknown
from ocpi.transport import (CLIENT_ERROR, EncodedList, OcpiError, OcpiView, envelope, json_text, page_headers,
                            page_keys, page_params, page_total)


class LocationsSenderView(OcpiView):
    module = "locations"
    interface = "SENDER"

    def get(self, request, location_id: str | None = None, evse_uid: str | None = None,
            connector_id: str | None = None):
        if location_id is None:
            return self._list(request)
        location = self._location(request, object_id(location_id, "location_id", version=self.version))
        return envelope(object_below(location, version=self.version, evse_uid=evse_uid, connector_id=connector_id,
                                     published_only=not self._own_objects))

    @property
    def _own_objects(self) -> bool:
        # A portal CPO's token C is its back end's: it reads its own objects as stored (its pending EVSEs
        # too, so that a GET then PUT back drops nothing), never another CPO's.
        return self.caller.kind == "CPO"

    def _visible(self, **filters):
        party = self.route.cpo if self.route is not None else None  # OCPI-to-* named this CPO of ours
        if self._own_objects:
            cpos = [self.caller.cpo] if party is None or party.pk == self.caller.cpo.pk else []
            return locations_ocpi(cpos=cpos, published_only=False, **filters)
        return locations_ocpi(cpos=None if party is None else [party], exclude_cpos=self.caller.cpo_parties(),
                              publish_flag_only=self.version == V211, **filters)

    def _list(self, request):
        # Keyset pages (ocpi.paging): the page's keys from the order's covering index, the total counted
        # on the first page only; as cheap at the millionth location as at the first.
        page = page_params(request, scope=self._scope)
        locations = self._visible(date_from=page.date_from, date_to=page.date_to)
        keys, more = page_keys(locations, page)
        total = page_total(locations, page)
        data = EncodedList()
        if keys:
            with gc_paused():  # the page's rows and dicts are freed when _page returns, before it resumes
                data = self._page([pk for _, pk in keys])
        return envelope(data, headers=page_headers(request, page, total, len(keys),
                                                   last_key=keys[-1] if keys else None, more=more))

    @property
    def _scope(self) -> str:
        # What this caller sees (its total, its anchors): the same for every token of one peer or CPO.
        caller = self.caller
        return f"{caller.kind}:{caller.peer.pk if caller.peer else ''}:{caller.cpo.pk if caller.cpo else ''}"

    def _page(self, ids: list[int]) -> EncodedList:
        # Then the rows of those ids only: location_rows_ocpi reads them so. Each location is encoded at
        # once, so that its dicts do not outlive it.
        rows = location_rows_ocpi(ids=ids, published_only=not self._own_objects)
        return EncodedList(json_text(location_json(row, version=self.version)) for row in rows)

    def _location(self, request, location_id: str):
        """Location ids are unique per CPO only: the OCPI-to-* routing headers name the CPO where two share one
        (ocpi.routing has resolved them: `_visible` keeps that CPO's only)."""
        found = list(self._visible().filter(ocpi_id=location_id)[:2])
        if not found:
            raise unknown(f"location {location_id!r}")
        if len(found) > 1:
            parties = ", ".join(f"{loc.cpo.country_code}/{loc.cpo.party_id}" for loc in found)
            raise OcpiError(f"Location {location_id!r} exists at several CPOs ({parties}, ...): name one with the "
                            "OCPI-to-country-code and OCPI-to-party-id headers", status_code=CLIENT_ERROR)
        return found[0]


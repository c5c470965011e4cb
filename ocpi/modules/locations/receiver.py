"""Our eMSP role (Receiver interface): a connected CPO pushes its own Locations, EVSEs and Connectors.

Object URLs are scoped by `{country_code}/{party_id}` (Client Owned Objects): the party must be one of
the caller's CPO parties, and the pushed Location's own country_code/party_id the URL's (checked by the
service with the rest of the object, 2001) (a connected peer's CPO PeerParty, or a CPO of ours calling with its token C).
Another party's URL is answered with HTTP 404 and status 2000, as transport_and_format ("Errors") allows
for "objects that do not belong to them": the caller learns nothing about other parties' objects.
Writes go through `locations.services` (the one ingestion path); PUT answers 201 when it created the
object, 200 when it replaced (or found unchanged) one; an update older than what is stored is ignored
and answered with success, as OCPI expects of a receiver.
"""

from __future__ import annotations

from locations import services
from locations.models import Connector, Cpo, Evse, Location
from locations.selectors import locations_ocpi
from locations.validation import InvalidPayload
from ocpi.modules.locations.paths import object_below, object_id, unknown
from ocpi.transport import CLIENT_ERROR, INVALID_PARAMETERS, OcpiError, OcpiView, envelope, json_body

MESSAGE_LIMIT = 4000


class LocationsReceiverRootView(OcpiView):
    """The bare module URL (what version details list) and partial party paths: no object named."""

    module = "locations"
    interface = "RECEIVER"

    def get(self, request, **kwargs):
        raise OcpiError("The Locations receiver has no list: use {url}/{country_code}/{party_id}/{location_id}"
                        "[/{evse_uid}[/{connector_id}]]", status_code=INVALID_PARAMETERS, http_status=405)

    put = patch = get


class LocationsReceiverView(OcpiView):
    module = "locations"
    interface = "RECEIVER"

    def get(self, request, country_code, party_id, location_id, evse_uid=None, connector_id=None):
        cpo = self._party(country_code, party_id, adopt=False)
        location_id = object_id(location_id, "location_id", version=self.version)
        location = locations_ocpi(cpos=[cpo], published_only=False).filter(ocpi_id=location_id).first()
        if location is None:
            raise unknown(f"location {location_id!r} of {cpo.country_code}/{cpo.party_id}")
        return envelope(object_below(location, version=self.version, evse_uid=evse_uid, connector_id=connector_id,
                                     published_only=False))

    def put(self, request, country_code, party_id, location_id, evse_uid=None, connector_id=None):
        cpo = self._party(country_code, party_id)
        data = json_body(request)
        location_id = object_id(location_id, "location_id", version=self.version)
        if evse_uid is None:
            _same_id(data, "id", location_id, "location_id")
            result = _write("Location", services.location_upsert, cpo=cpo, data=data, version=self.version)
        elif connector_id is None:
            location = _location(cpo, location_id)
            uid = object_id(evse_uid, "evse_uid", version=self.version)
            _same_id(data, "uid", uid, "evse_uid")
            result = _write("EVSE", services.evse_upsert, location=location, data=data, version=self.version)
        else:
            evse = _evse(cpo, location_id, object_id(evse_uid, "evse_uid", version=self.version))
            wanted = object_id(connector_id, "connector_id")
            _same_id(data, "id", wanted, "connector_id")
            result = _write("Connector", services.connector_upsert, evse=evse, data=data, version=self.version)
        return _answer(result)

    def patch(self, request, country_code, party_id, location_id, evse_uid=None, connector_id=None):
        cpo = self._party(country_code, party_id)
        data = json_body(request)
        location_id = object_id(location_id, "location_id", version=self.version)
        if evse_uid is None:
            _same_id(data, "id", location_id, "location_id")
            location = _location(cpo, location_id)
            result = _write("Location", services.location_patch, location=location, data=data, version=self.version)
        elif connector_id is None:
            evse = _evse(cpo, location_id, object_id(evse_uid, "evse_uid", version=self.version))
            _same_id(data, "uid", evse.uid, "evse_uid")
            result = _write("EVSE", services.evse_patch, evse=evse, data=data, version=self.version)
        else:
            evse = _evse(cpo, location_id, object_id(evse_uid, "evse_uid", version=self.version))
            wanted = object_id(connector_id, "connector_id")
            connector = Connector.objects.select_related("evse__location__cpo").filter(
                evse=evse, connector_id=wanted).first()
            if connector is None:
                raise unknown(f"connector {wanted!r} of EVSE {evse.uid!r} of location {location_id!r}")
            _same_id(data, "id", wanted, "connector_id")
            result = _write("Connector", services.connector_patch, connector=connector, data=data,
                            version=self.version)
        return _answer(result)

    # --- scope ---------------------------------------------------------------------------------------

    def _party(self, country_code: str, party_id: str, *, adopt: bool = True) -> Cpo:
        cpo = self.caller.cpo_party(country_code, party_id, adopt=adopt)  # a hub's parties behind it too
        if cpo is not None:
            return cpo
        parties = self.caller.cpo_parties()
        yours = ", ".join(f"{cpo.country_code}/{cpo.party_id}" for cpo in parties) or "none"
        raise OcpiError(f"{country_code[:2]}/{party_id[:3]} is not a CPO party of your credentials (yours: {yours}); "
                        "objects are addressed under the party that owns them", status_code=CLIENT_ERROR,
                        http_status=404)


def _same_id(data: dict, name: str, expected: str, url_name: str) -> None:
    """transport_and_format: an object id different from the URL's is answered with 2001. (CiString: case
    does not matter.)"""
    given = data.get(name)
    if given is not None and (not isinstance(given, (str, int)) or str(given).strip().upper() != expected.upper()):
        raise OcpiError(f"{name} {str(given)[:40]!r} in the body does not match {url_name} {expected!r} of the URL",
                        status_code=INVALID_PARAMETERS)


def _location(cpo: Cpo, location_id: str) -> Location:
    location = Location.objects.select_related("cpo").filter(cpo=cpo, ocpi_id=location_id).first()
    if location is None:
        raise unknown(f"location {location_id!r} of {cpo.country_code}/{cpo.party_id}: PUT the location first")
    return location


def _evse(cpo: Cpo, location_id: str, uid: str) -> Evse:
    evse = Evse.objects.select_related("location__cpo").filter(
        location__cpo=cpo, location__ocpi_id=location_id, uid=uid).first()
    if evse is None:
        _location(cpo, location_id)
        raise unknown(f"EVSE {uid!r} of location {location_id!r}: PUT the EVSE first")
    return evse


def _write(kind: str, service, **kwargs) -> services.UpsertResult:
    try:
        return service(**kwargs)
    except InvalidPayload as exc:
        raise OcpiError(f"Invalid {kind}: {_reasons(exc.errors)}", status_code=INVALID_PARAMETERS) from None
    except (Location.DoesNotExist, Evse.DoesNotExist, Connector.DoesNotExist) as exc:  # gone meanwhile
        raise unknown(str(exc)) from None


def _reasons(errors: dict[str, str]) -> str:
    """Every reason with its field's path, as many whole ones as fit in a readable message."""
    parts, length = [], 0
    for path, reason in errors.items():
        part = f"{path}: {reason}"
        if length + len(part) > MESSAGE_LIMIT and parts:
            parts.append(f"... and {len(errors) - len(parts)} more")
            break
        parts.append(part)
        length += len(part) + 2
    return "; ".join(parts)


def _answer(result: services.UpsertResult):
    if result.created:
        return envelope(message="Created", http_status=201)
    if result.stale:
        return envelope(message="Success: not applied, older (last_updated) than what is stored")
    return envelope(message="Success" if result.changed else "Success: unchanged")

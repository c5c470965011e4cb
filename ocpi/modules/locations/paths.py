"""What the URL of a Locations request names, checked before it reaches a query."""

from __future__ import annotations

import re

from ocpi.modules.locations.objects import connector_ocpi, evse_ocpi, location_ocpi
from ocpi.transport import INVALID_PARAMETERS, UNKNOWN_LOCATION, V211, V221, OcpiError

_CI_STRING = re.compile(r"[\x20-\x7e]{1,39}")
# mod_locations 2.1.1: location_id and evse_uid are string(39); 2.2.1 has CiString(36) for every id.
_LENGTHS_211 = {"location_id": 39, "evse_uid": 39}


def object_id(value: str, name: str, *, version: str = V221, length: int | None = None) -> str:
    """A Location/EVSE/Connector id from the URL: printable ASCII, as long as `version` allows `name`."""
    if length is None:
        length = _LENGTHS_211.get(name, 36) if version == V211 else 36
    if not _CI_STRING.fullmatch(value) or len(value) > length:
        kind = "string" if length == 39 else "CiString"
        raise OcpiError(f"{name} {value[:60]!r} must be an OCPI {kind}({length}): printable ASCII only, "
                        f"1 to {length} characters", status_code=INVALID_PARAMETERS)
    return value


def unknown(what: str) -> OcpiError:
    return OcpiError(f"Unknown {what}", status_code=UNKNOWN_LOCATION, http_status=404)


def object_below(location, *, version: str, evse_uid: str | None, connector_id: str | None,
                 published_only: bool = True) -> dict:
    """The OCPI JSON of the location, or of the EVSE / connector the URL names below it (2003 if none)."""
    if evse_uid is None:
        return location_ocpi(location, version=version, published_only=published_only)
    uid = object_id(evse_uid, "evse_uid", version=version)
    evse = next((e for e in location.evses.all() if e.uid == uid), None)
    data = evse_ocpi(evse, version=version) if evse is not None else None
    if data is None:
        raise unknown(f"EVSE {uid!r} of location {location.ocpi_id!r}")
    if connector_id is None:
        return data
    wanted = object_id(connector_id, "connector_id")
    connector = next((c for c in evse.connectors.all() if c.connector_id == wanted), None)
    data = connector_ocpi(connector, version=version) if connector is not None else None
    if data is None:
        raise unknown(f"connector {wanted!r} of EVSE {uid!r} of location {location.ocpi_id!r}")
    return data

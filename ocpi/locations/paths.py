"""What the URL of a Locations request names, checked before it reaches a query."""

from __future__ import annotations

import re

from ocpi.transport import INVALID_PARAMETERS, UNKNOWN_LOCATION, OcpiError

_CI_STRING = re.compile(r"[\x20-\x7e]{1,36}")


def object_id(value: str, name: str, *, length: int = 36) -> str:
    """A Location/EVSE/Connector id from the URL: OCPI CiString(36), printable ASCII."""
    if not _CI_STRING.fullmatch(value) or len(value) > length:
        raise OcpiError(f"{name} {value[:60]!r} must be an OCPI CiString({length}): printable ASCII only, "
                        f"1 to {length} characters", status_code=INVALID_PARAMETERS)
    return value


def unknown(what: str) -> OcpiError:
    return OcpiError(f"Unknown {what}", status_code=UNKNOWN_LOCATION, http_status=404)

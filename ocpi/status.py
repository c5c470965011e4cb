"""OCPI versions, status codes (status_codes.asciidoc) and the error answered in the envelope."""

import re
from datetime import datetime, timezone

V221, V211 = "2.2.1", "2.1.1"
VERSIONS = (V221, V211)  # highest first: the handshake picks the first one both sides have

# status_codes.asciidoc
SUCCESS = 1000
CLIENT_ERROR, INVALID_PARAMETERS, NOT_ENOUGH_INFORMATION, UNKNOWN_LOCATION, UNKNOWN_TOKEN = 2000, 2001, 2002, 2003, 2004
SERVER_ERROR, CLIENT_API_ERROR, UNSUPPORTED_VERSION, NO_MATCHING_ENDPOINTS = 3000, 3001, 3002, 3003


# A party as OCPI names it (credentials, routing headers, URL segments): ISO 3166-1 alpha-2 country code,
# ISO 15118 party id. And a header value we may echo or pass on: printable ASCII without spaces.
COUNTRY_CODE = re.compile(r"[A-Za-z]{2}")
PARTY_ID = re.compile(r"[A-Za-z0-9]{3}")
HEADER_VALUE = re.compile(r"[\x21-\x7e]{1,100}")


class OcpiError(Exception):
    """An error answered in the envelope: an OCPI status code, its message and the HTTP status."""

    def __init__(self, message: str, *, status_code: int = CLIENT_ERROR, http_status: int = 400, data=None,
                 headers: dict | None = None):
        super().__init__(message)
        self.message, self.status_code, self.http_status, self.data = message, status_code, http_status, data
        self.headers = headers or {}


def ocpi_timestamp(moment: datetime | None = None) -> str:
    """A DateTime as OCPI writes it: UTC with a `Z`, whole seconds."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

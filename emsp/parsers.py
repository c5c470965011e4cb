"""The JSON parser of the portal and the webhooks (DRF's default here; no view import, so that DRF's
settings can name it)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import BaseParser

from locations.json_input import JsonRejected, json_loads


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "the body is too large"


def bounded_body(stream, what: str) -> bytes:
    """The request body, never more than DATA_UPLOAD_MAX_MEMORY_SIZE of it (413 past that)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(body) > limit:
        raise PayloadTooLarge(f"{what} may be at most {limit:,} bytes")
    return body


class StrictJSONParser(BaseParser):
    """JSON bodies read by `json_loads` (no lone surrogates, NaN or deep nesting) and never more than
    DATA_UPLOAD_MAX_MEMORY_SIZE of them (413, as Django answers for a form)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        body = bounded_body(stream, "a JSON body")
        try:
            return json_loads(body)
        except JsonRejected as exc:
            raise exceptions.ParseError(str(exc)) from None

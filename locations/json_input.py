"""JSON from callers, read strictly: every interface (portal, webhooks, OCPI, GraphQL) parses with this.

What it refuses would otherwise pass the parser and break later, as a 500 or as a value stored for good:
bytes that are not UTF-8, lone surrogates (`"\\ud800"`: no database stores them), `NaN` and `Infinity`
(no JSON number), numbers too large for a double, and nesting deeper than any object of ours (the
recursive code after the parser would run out of stack). orjson refuses the first four itself, and reads a
page of locations several times faster than `json`.
"""

from __future__ import annotations

from typing import Any

import orjson

# The deepest object we read is an OCPI Location: location > evses > connectors > ... about 7 levels.
MAX_DEPTH = 32


class JsonRejected(ValueError):
    """The body is no JSON we read; the message says why, in words a caller can act on."""


def json_loads(body: bytes | str) -> Any:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise JsonRejected(f"the body is not valid JSON: {exc}") from None
    if isinstance(data, (dict, list)) and _too_deep(data):
        raise JsonRejected(f"the body is nested more than {MAX_DEPTH} levels deep")
    return data


def _too_deep(data: dict | list) -> bool:
    # Iterative: the point is not to recurse on what a caller sent.
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def text_storable(value: str) -> bool:
    """A string every database stores: UTF-8-encodable (no lone surrogate) and without NUL."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

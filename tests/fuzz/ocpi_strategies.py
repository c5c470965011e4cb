"""Hypothesis strategies for OCPI 2.2.1 Locations (with their EVSEs and connectors): valid ones, and the
same mutated the ways hostile or broken peers send them.

A mutated object is sent as raw JSON text: some mutations exist only as text (a lone surrogate escape
`"\\ud800"`, the literals `NaN` and `Infinity`, nesting deeper than any parser should follow), so the
strategies build a JSON value with placeholders and `json_text` replaces them in the encoded text.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

from locations import enums

# --- placeholders for what only JSON text can hold -------------------------------------------------------

RAW = {
    "__RAW_LONE_SURROGATE__": '"bad \\ud800 text"',
    "__RAW_LOW_SURROGATE__": '"\\udfff"',
    "__RAW_NAN__": "NaN",
    "__RAW_INFINITY__": "Infinity",
    "__RAW_MINUS_INFINITY__": "-Infinity",
    "__RAW_HUGE_EXPONENT__": "1e999",
    "__RAW_BIG_INTEGER__": "1" + "0" * 400,
    "__RAW_DEEP_40__": "[" * 40 + "]" * 40,
    "__RAW_DEEP_5000__": "[" * 5000 + "]" * 5000,
    "__RAW_DEEP_OBJECT__": '{"a":' * 200 + "1" + "}" * 200,
    "__RAW_NUL__": '"nul \\u0000 inside"',
}


def json_text(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    for placeholder, raw in RAW.items():
        text = text.replace(json.dumps(placeholder), raw)
    return text


# --- valid objects --------------------------------------------------------------------------------------

CONNECTOR_STANDARDS = [code for code, _ in enums.OCPI_CONNECTOR_TYPES]
FACILITIES = [code for code, _ in enums.OCPI_FACILITIES]
CAPABILITIES = [code for code, _ in enums.OCPI_CAPABILITIES]
PARKING_RESTRICTIONS = [code for code, _ in enums.OCPI_PARKING_RESTRICTIONS]
TIME_ZONES = ["Europe/Berlin", "Europe/Amsterdam", "America/New_York", "Asia/Manila", "UTC"]
COUNTRIES = ["DEU", "NLD", "FRA", "USA", "PHL"]

# Readable text, as feeds send it (letters, digits, punctuation, spaces and a few non-ASCII letters).
_text_chars = st.characters(codec="utf-8", categories=("L", "N", "P", "Zs"))


def _text(max_size: int, min_size: int = 1) -> st.SearchStrategy[str]:
    return st.text(_text_chars, min_size=min_size, max_size=max_size).filter(lambda s: s.strip())


_ci_string = st.text(st.characters(min_codepoint=0x30, max_codepoint=0x5A).filter(str.isalnum), min_size=1,
                     max_size=12)


# Mostly newer than what the tests store (2024-05-01), so that most writes apply; some older, ignored.
_NEWER, _OLDER = datetime(2024, 5, 2, tzinfo=timezone.utc), datetime(2023, 1, 1, tzinfo=timezone.utc)


def timestamps() -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from([_NEWER, _NEWER, _NEWER, _OLDER]), st.integers(0, 2 * 365 * 24 * 3600)).map(
        lambda start_seconds: (start_seconds[0] + timedelta(seconds=start_seconds[1])).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _coordinate(limit: int) -> st.SearchStrategy[str]:
    # Away from 0 and from each other: (0, 0) and latitude == longitude are refused as placeholders.
    return st.tuples(st.sampled_from([1, -1]), st.integers(1_000_000, limit * 1_000_000)).map(
        lambda sign_micro: f"{sign_micro[0] * sign_micro[1] / 1_000_000:.6f}")


def coordinates() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({"latitude": _coordinate(89), "longitude": _coordinate(179)}).filter(
        lambda point: point["latitude"].lstrip("-") != point["longitude"].lstrip("-"))


def connectors(index: int) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "id": st.just(str(index)),
            "standard": st.sampled_from(CONNECTOR_STANDARDS),
            "format": st.sampled_from(enums.ConnectorFormat.values),
            "power_type": st.sampled_from(enums.PowerType.values),
            "max_voltage": st.integers(100, 1000),
            "max_amperage": st.integers(6, 500),
            "last_updated": timestamps(),
        },
        optional={
            "max_electric_power": st.integers(1000, 350_000),
            "tariff_ids": st.lists(_ci_string, max_size=2),
            "terms_and_conditions": st.just("https://example.com/terms"),
        },
    )


def evses(location_id: str, index: int) -> st.SearchStrategy[dict]:
    return st.integers(1, 3).flatmap(lambda count: st.fixed_dictionaries(
        {
            "uid": st.just(f"{location_id}-E{index}"),
            "status": st.sampled_from(enums.Status.values),
            "connectors": st.tuples(*(connectors(n) for n in range(1, count + 1))).map(list),
            "last_updated": timestamps(),
        },
        optional={
            "evse_id": st.just(f"DE*ALP*E{location_id}{index}".replace("-", "")),
            "capabilities": st.lists(st.sampled_from(CAPABILITIES), max_size=3, unique=True),
            "floor_level": st.text("0123456789-", min_size=1, max_size=3),
            "coordinates": coordinates(),
            "physical_reference": _text(16),
            "parking_restrictions": st.lists(st.sampled_from(PARKING_RESTRICTIONS), max_size=2, unique=True),
            "directions": st.lists(st.fixed_dictionaries({"language": st.just("en"), "text": _text(40)}),
                                   max_size=2),
        },
    ))


def locations(country_code: str, party_id: str, location_id: str) -> st.SearchStrategy[dict]:
    return st.integers(0, 3).flatmap(lambda count: st.fixed_dictionaries(
        {
            "country_code": st.just(country_code),
            "party_id": st.just(party_id),
            "id": st.just(location_id),
            "publish": st.booleans(),
            "address": _text(45),
            "city": _text(45),
            "country": st.sampled_from(COUNTRIES),
            "coordinates": coordinates(),
            "time_zone": st.sampled_from(TIME_ZONES),
            "evses": st.tuples(*(evses(location_id, n) for n in range(1, count + 1))).map(list),
            "last_updated": timestamps(),
        },
        optional={
            "name": _text(255),
            "postal_code": st.text("0123456789", min_size=4, max_size=5),
            "state": _text(20),
            "parking_type": st.sampled_from(enums.ParkingType.values),
            "facilities": st.lists(st.sampled_from(FACILITIES), max_size=3, unique=True),
            "charging_when_closed": st.booleans(),
            "opening_times": st.just({"twentyfourseven": True}),
            "operator": st.fixed_dictionaries({"name": _text(100)}),
        },
    ))


# --- mutations ----------------------------------------------------------------------------------------

HOSTILE_VALUES = st.one_of(
    st.sampled_from(list(RAW)),
    st.sampled_from([None, True, False, 0, -1, 2**31, 2**63, -(2**63) - 1, 10**30, 1e308, -1e308, 1.5, "",
                     " ", "0", "null", "NaN", "1e999", "2024-02-30T25:61:61Z", "Europe/Nowhere", "AVAILABLE ",
                     [], {}, [None], {"": None}]),
    st.text(min_size=1, max_size=8),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.builds(lambda char, size: char * size, st.sampled_from(["x", "é", "€", "😀", "\x7f", " "]),
              st.sampled_from([37, 46, 256, 10_000, 100_000])),
)


def _paths(value, prefix=()) -> list[tuple]:
    """Every path to a value inside a JSON value (the root excluded)."""
    found = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append(prefix + (key,))
            found += _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append(prefix + (index,))
            found += _paths(child, prefix + (index,))
    return found


def _parent(value, path):
    for step in path[:-1]:
        value = value[step]
    return value


@st.composite
def mutated(draw, valid: st.SearchStrategy) -> dict:
    """A valid object with one to three things wrong: a value replaced (a wrong type, a huge number, a long
    string, a placeholder for raw text), a field removed, a field added, a list emptied or duplicated."""
    value = draw(valid)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(value)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(value, path), path[-1]
        action = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add", "duplicate"]))
        if action == "replace":
            parent[key] = draw(HOSTILE_VALUES)
        elif action == "remove":
            del parent[key]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "ID", "evse", "__proto__", "\x00"]))] = draw(HOSTILE_VALUES)
        elif action == "duplicate" and isinstance(parent[key], list) and parent[key]:
            parent[key] = parent[key] + parent[key]
        else:
            parent[key] = draw(HOSTILE_VALUES)
    return value


# --- the portal's webhook shape (ocpi/webhooks.py): its own names and units, mapped onto OCPI's ----------

def webhook_connectors() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "standard": st.sampled_from(["TYPE_1", "TYPE_2", "GBT", "CHADEMO", "IEC_62196_T2_COMBO"]),
            "format": st.sampled_from(enums.ConnectorFormat.values),
            "power_type": st.sampled_from(["AC", "DC", "AC_1_PHASE", "AC_3_PHASE"]),
            "max_voltage": st.integers(100, 1000),
            "max_amperage": st.integers(6, 500),
        },
        optional={"max_electric_power": st.one_of(st.integers(1, 999), st.integers(1000, 350_000))},
    )


def webhook_evses(index: int) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "uid": st.just(f"WH-E{index}"),
            "status": st.sampled_from(enums.Status.values),
            "connectors": st.lists(webhook_connectors(), min_size=1, max_size=3),
        },
        optional={
            "meter_type": st.sampled_from(["AC", "DC"]),
            "kwh": st.integers(1, 350),
            "capabilities": st.lists(st.sampled_from([code for code, _ in enums.PORTAL_CAPABILITIES]), max_size=2,
                                     unique=True),
            "payment_types": st.lists(st.sampled_from([code for code, _ in enums.PORTAL_PAYMENT_TYPES]), max_size=2,
                                      unique=True),
        },
    )


def webhook_locations() -> st.SearchStrategy[dict]:
    return st.integers(0, 2).flatmap(lambda count: st.fixed_dictionaries(
        {
            "name": _text(60),
            "address": st.builds(lambda street, city: f"{street}, {city}", _text(30), _text(20)),
            "lat": _coordinate(60),
            "lng": _coordinate(179),
            "evses": st.tuples(*(webhook_evses(n) for n in range(1, count + 1))).map(list),
        },
        optional={
            "facilities": st.lists(st.sampled_from([code for code, _ in enums.PORTAL_FACILITIES]), max_size=3,
                                   unique=True),
            "parking_types": st.lists(st.sampled_from([code for code, _ in enums.PORTAL_PARKING_TYPES]), max_size=1),
        },
    ))


def webhook_bodies() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({"locations": st.lists(webhook_locations(), min_size=1, max_size=3)})

"""OCPI 2.2.1 validation and normalisation of Location, EVSE and Connector objects.

Pure functions, no database: `clean_location`, `clean_evse` and `clean_connector` take the JSON a
source sent and return the values the models store, or raise `InvalidPayload` with one reason per
offending field (`evses[0].connectors[1].standard`). What real feeds send that is harmless is
normalised (coordinates as numbers, lower-case enums, 2-letter countries, naive or offset timestamps);
what breaks a rule of the spec is rejected. OCPI 2.1.1 objects are read with that version's names.
"""

from __future__ import annotations

import functools
import math
import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable
from urllib.parse import urlsplit

import pycountry

from locations import enums
from locations.json_input import text_storable

V221 = "2.2.1"
V211 = "2.1.1"

_LAT = re.compile(r"^-?[0-9]{1,2}\.[0-9]{5,7}$")
_LNG = re.compile(r"^-?[0-9]{1,3}\.[0-9]{5,7}$")
_HHMM = re.compile(r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|z|[+-]\d{2}:?\d{2})?$"
)

STATUSES = frozenset(enums.Status.values)
FORMATS = frozenset(enums.ConnectorFormat.values)
POWER_TYPES = frozenset(enums.PowerType.values)
PARKING_TYPES = frozenset(enums.ParkingType.values)
FACILITIES = frozenset(code for code, _ in enums.OCPI_FACILITIES + enums.PORTAL_FACILITIES)
CAPABILITIES = frozenset(code for code, _ in enums.OCPI_CAPABILITIES + enums.PORTAL_CAPABILITIES)
PAYMENT_TYPES = frozenset(code for code, _ in enums.PORTAL_PAYMENT_TYPES)
PARKING_RESTRICTIONS = frozenset(code for code, _ in enums.OCPI_PARKING_RESTRICTIONS)
LOCATION_PARKING_TYPES = frozenset(code for code, _ in enums.OCPI_PARKING_TYPES + enums.PORTAL_PARKING_TYPES)
# Connector types whose power type the spec fixes: a feed that leaves power_type out loses nothing.
DC_ONLY_STANDARDS = frozenset({"CHADEMO", "CHAOJI", "GBT_DC", "IEC_62196_T1_COMBO", "IEC_62196_T2_COMBO"})
# OCPI 2.1.1's LocationType maps onto 2.2.1's ParkingType where one exists.
LOCATION_TYPE_211 = {
    "ON_STREET": "ON_STREET",
    "PARKING_GARAGE": "PARKING_GARAGE",
    "UNDERGROUND_GARAGE": "UNDERGROUND_GARAGE",
    "PARKING_LOT": "PARKING_LOT",
}
_TIME_ZONES = frozenset(zoneinfo.available_timezones())


class InvalidPayload(Exception):
    """The object breaks OCPI's rules; `errors` maps each offending field's path to its reason."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{path}: {reason}" for path, reason in errors.items()))


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass
class Checker:
    """Reads one JSON object field by field, collecting a reason for each field that is wrong."""

    data: dict
    path: str
    errors: dict[str, str]
    partial: bool = False
    out: dict = field(default_factory=dict)

    def at(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, reason: str) -> None:
        self.errors.setdefault(self.at(name), reason)

    def take(self, name: str, convert: Callable[[Any], Any], *, required: bool = False,
             to: str | None = None, default: Any = MISSING) -> Any:
        """Convert `data[name]` into `out[to or name]`; a ValueError from `convert` is the reason."""
        raw = self.data.get(name, MISSING)
        if raw is not MISSING and raw is not None:
            # The common case first: this runs for every field of every object of an import.
            try:
                value = convert(raw)
            except ValueError as exc:
                self.fail(name, str(exc))
                return MISSING
            self.out[to or name] = value
            return value
        if required and (raw is None or not self.partial):
            self.fail(name, "is required" if raw is MISSING else "must not be null")
            return MISSING
        if raw is MISSING and self.partial:
            return MISSING
        # A full object replaces what is stored: an absent optional field is cleared.
        value = None if default is MISSING else default
        self.out[to or name] = value
        return value

    def take_all(self, fields: tuple[tuple, ...]) -> None:
        """`take` of each field of a table of `spec` rows, in order: the same outcome, a loop
        instead of a call per field (validation runs this for about a hundred fields per location)."""
        data, out, partial = self.data, self.out, self.partial
        for name, convert, required, to, default in fields:
            raw = data.get(name)
            if raw is not None:
                try:
                    out[to] = convert(raw)
                except ValueError as exc:
                    self.fail(name, str(exc))
            elif required or partial:
                self.take(name, convert, required=required, to=to, default=[] if default is NEW_LIST else default)
            else:  # an absent optional field of a full object, as `take` clears it
                out[to] = [] if default is NEW_LIST else None if default is MISSING else default


NEW_LIST: Any = object()  # a field's default: a new empty list for each object


def spec(name: str, convert: Callable[[Any], Any], *, required: bool = False, to: str | None = None,
         default: Any = MISSING) -> tuple:
    """One row of a field table for `Checker.take_all`: what `take` is called with."""
    return (name, convert, required, to or name, default)


# --- Scalar converters: each returns the clean value or raises ValueError with the reason. ---------
# The factories (`text(36)`, `integer()`, ...) are cached: the validators call them for every field of
# every object, and building a new closure each time was a good part of the validation's time.

@functools.cache
def _storable(raw: str) -> str:
    if not text_storable(raw.replace("\x00", "")):  # NUL is a control character: replaced below
        raise ValueError("is not text: it holds a lone UTF-16 surrogate (such as \\ud800), which no database stores")
    return raw


def text(max_length: int, *, ci: bool = False, allow_empty: bool = True) -> Callable[[Any], str]:
    def convert(raw: Any) -> str:
        if type(raw) is str:
            # Nearly every value has no control character: isprintable() (C) rules the regex out. It is
            # also False for some harmless characters (non-breaking space), which the regex then keeps.
            value = (raw if raw.isprintable() else _CONTROL.sub(" ", _storable(raw))).strip()
        elif isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise ValueError(f"must be a string, not {type(raw).__name__}")
        else:
            value = _CONTROL.sub(" ", str(raw)).strip()
        if not allow_empty and not value:
            raise ValueError("must not be empty")
        if ci and not value.isascii():
            raise ValueError("must contain printable ASCII only (OCPI CiString)")
        if len(value) > max_length:
            raise ValueError(f"is {len(value)} characters long; the maximum is {max_length}")
        return value

    return convert


def boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ValueError(f"must be true or false, not {raw!r}")


# The largest value of the integer columns (PostgreSQL `integer`, and so what SQLite must hold too).
INT_MAX = 2**31 - 1


@functools.cache
def integer(*, minimum: int = 0, maximum: int = INT_MAX) -> Callable[[Any], int]:
    def convert(raw: Any) -> int:
        if type(raw) is int and minimum <= raw <= maximum:
            return raw  # a JSON integer (what OCPI sends): the value Decimal would give, without it
        if isinstance(raw, bool):
            raise ValueError("must be an integer, not a boolean")
        if type(raw) is str and raw.isascii() and raw.isdigit():
            # Plain digits (what a CSV cell holds): int() reads them as Decimal would, without it.
            number = int(raw)
            if minimum <= number <= maximum:
                return number  # out of bounds: the general path below words the reason
        try:
            number = Decimal(str(raw).strip())
        except InvalidOperation:
            raise ValueError(f"must be an integer, not {raw!r}") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise ValueError(f"must be an integer, not {raw!r}")
        if not minimum <= number <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}, not {raw!r}")
        return int(number)

    return convert


@functools.cache
def decimal(*, max_digits: int, places: int, minimum: float | None = None) -> Callable[[Any], Decimal]:
    """A number that its column (`DecimalField(max_digits, places)`) holds: rounded to `places`, and
    refused beyond the column's range, which SQLite would store but not read back."""
    step = Decimal(1).scaleb(-places)
    largest = Decimal(10) ** (max_digits - places) - step

    def convert(raw: Any) -> Decimal:
        if isinstance(raw, bool):
            raise ValueError("must be a number")
        if isinstance(raw, str) and len(raw) > 64:
            raise ValueError("must be a number, not a text of that length")
        try:
            number = Decimal(str(raw).strip().replace(",", "."))
        except InvalidOperation:
            raise ValueError(f"must be a number, not {raw!r}") from None
        if not number.is_finite():
            raise ValueError(f"must be a number, not {raw!r}")
        low = -largest if minimum is None else Decimal(str(minimum))
        if not low <= number <= largest:
            raise ValueError(f"must be between {low} and {largest}, not {raw!r}")
        return number.quantize(step, rounding=ROUND_HALF_UP)

    return convert


@functools.cache  # converters are built once per set of values, not once per object validated
def choice(allowed: frozenset[str]) -> Callable[[Any], str]:
    """An enum value; case is normalised (feeds send `ac_3_phase`), anything else is refused."""
    upper = {value.upper(): value for value in allowed}
    # A value sent exactly as it is allowed (nearly all of them) is itself: one lookup, not strip and upper.
    exact = {value: value for value in allowed if upper[value.upper()] == value}

    def convert(raw: Any) -> str:
        if type(raw) is str and raw in exact:
            return exact[raw]
        if not isinstance(raw, str):
            raise ValueError(f"must be one of {', '.join(sorted(allowed))}, not {raw!r}")
        key = raw.strip().upper()
        if key not in upper:
            raise ValueError(f"{raw!r} is not one of {', '.join(sorted(allowed))}")
        return upper[key]

    return convert


@functools.cache
def choices(allowed: frozenset[str]) -> Callable[[Any], list[str]]:
    one = choice(allowed)

    def convert(raw: Any) -> list[str]:
        if not isinstance(raw, list):
            raise ValueError("must be a list")
        values = []
        for item in raw:
            value = one(item)
            if value not in values:
                values.append(value)
        return values

    return convert


_TIMESTAMPS: dict[str, datetime] = {}  # raw text -> parsed: an object's EVSEs and connectors share theirs


def timestamp(raw: Any) -> datetime:
    """OCPI DateTime: UTC, `Z` optional (absent means UTC); offsets are converted, not refused."""
    value = _TIMESTAMPS.get(raw) if type(raw) is str else None
    if value is None:
        value = _timestamp(raw)
        if len(_TIMESTAMPS) >= 4096:
            _TIMESTAMPS.clear()
        _TIMESTAMPS[raw] = value
    return value


def _timestamp(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise ValueError(f"must be an RFC 3339 timestamp string, not {raw!r}")
    match = _DATETIME.match(raw.strip())
    if not match:
        raise ValueError(f"{raw!r} is not an RFC 3339 timestamp such as 2015-06-29T20:39:09Z")
    day, clock, fraction, zone = match.groups()
    fraction = (fraction or "")[:7].ljust(7, "0") if fraction else ""
    iso = f"{day}T{clock}{fraction[:7]}"
    if zone and zone.upper() != "Z":
        iso += zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"{raw!r} is not a valid date and time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def url(raw: Any) -> str:
    value = text(255)(raw)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def country_alpha3(raw: Any) -> str:
    """ISO 3166-1 alpha-3; an alpha-2 code is converted since it names exactly one country."""
    if not isinstance(raw, str):
        raise ValueError(f"must be an ISO 3166-1 alpha-3 country code, not {raw!r}")
    code = raw.strip().upper()
    if len(code) == 2:
        country = pycountry.countries.get(alpha_2=code)
    elif len(code) == 3:
        country = pycountry.countries.get(alpha_3=code)
    else:
        country = None
    if country is None:
        raise ValueError(f"{raw!r} is not an ISO 3166-1 alpha-3 country code")
    return country.alpha_3


def time_zone(raw: Any) -> str:
    # "Asia/Kuala Lumpur" is a spelling of Asia/Kuala_Lumpur, not another zone.
    value = text(255)(raw).replace(" ", "_")
    if value not in _TIME_ZONES:
        raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Berlin")
    return value


def coordinate(raw: Any, *, bound: int, pattern: re.Pattern, name: str) -> float:
    """A coordinate as OCPI's string, or as the number many feeds send; comma decimals accepted."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise ValueError(f"{name} must be a decimal degree string, not {raw!r}")
    source = str(raw).strip().replace(",", ".")
    try:
        value = float(source)
    except ValueError:
        raise ValueError(f"{name} {raw!r} is not a decimal degree") from None
    if not math.isfinite(value) or abs(value) > bound:
        raise ValueError(f"{name} {raw!r} is out of range (-{bound} to {bound})")
    text = format_coordinate(value)
    if not pattern.match(text):
        raise ValueError(f"{name} {raw!r} does not match {pattern.pattern}")
    # Stored as OCPI can say it (7 decimals): what we serve is then what we store, and the same value sent
    # again is unchanged (49.123456789 or a subnormal 2e-313 would be stored as no reader sees them).
    return float(text)


def format_coordinate(value: float) -> str:
    """OCPI's coordinate string: 5 to 7 decimals, trailing zeros dropped down to 5."""
    text_value = f"{value:.7f}".rstrip("0")
    whole, _, decimals = text_value.partition(".")
    return f"{whole}.{decimals.ljust(5, '0')}"


def geolocation(raw: Any) -> tuple[float, float]:
    if not isinstance(raw, dict):
        raise ValueError("must be an object with latitude and longitude")
    missing = [key for key in ("latitude", "longitude") if raw.get(key) in (None, "")]
    if missing:
        raise ValueError(f"{' and '.join(missing)} missing")
    lat = coordinate(raw["latitude"], bound=90, pattern=_LAT, name="latitude")
    lng = coordinate(raw["longitude"], bound=180, pattern=_LNG, name="longitude")
    if lat.is_integer() and lng.is_integer():
        raise ValueError(f"{lat:g}, {lng:g} is a placeholder, not the location of a charger")
    if lat == lng:
        raise ValueError("latitude equals longitude: one was copied into the other")
    return lat, lng


# --- Structured values kept as JSON, validated to their OCPI class -------------------------------

@functools.cache
def list_of(convert: Callable[[Any], Any]) -> Callable[[Any], list]:
    def convert_list(raw: Any) -> list:
        if not isinstance(raw, list):
            raise ValueError("must be a list")
        result = []
        for index, item in enumerate(raw):
            try:
                result.append(convert(item))
            except ValueError as exc:
                raise ValueError(f"item {index}: {exc}") from None
        return result

    return convert_list


def obj(fields: dict[str, tuple[Callable[[Any], Any], bool]]) -> Callable[[Any], dict]:
    """A JSON object with the given fields (converter, required); unknown keys are dropped."""

    def convert(raw: Any) -> dict:
        if not isinstance(raw, dict):
            raise ValueError("must be an object")
        result = {}
        for name, (convert_field, required) in fields.items():
            value = raw.get(name)
            if value is None:
                if required:
                    raise ValueError(f"{name} is required")
                continue
            try:
                result[name] = convert_field(value)
            except ValueError as exc:
                raise ValueError(f"{name} {exc}") from None
        return result

    return convert


def _plain(kind: type | tuple[type, ...]) -> Callable[[Any], Any]:
    def convert(raw: Any) -> Any:
        if isinstance(raw, bool) and kind is not bool:
            raise ValueError("has the wrong type")
        if not isinstance(raw, kind):
            raise ValueError(f"must be a {getattr(kind, '__name__', 'number')}")
        return raw

    return convert


def _datetime_json(raw: Any) -> str:
    return timestamp(raw).strftime("%Y-%m-%dT%H:%M:%SZ")


def _coordinate_json(raw: Any) -> dict:
    lat, lng = geolocation(raw)
    result = {"latitude": format_coordinate(lat), "longitude": format_coordinate(lng)}
    if isinstance(raw.get("name"), dict):
        result["name"] = DISPLAY_TEXT(raw["name"])
    return result


def _finite_number(raw: Any) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError("must be a number")
    if not math.isfinite(raw) or abs(raw) > 1e15:
        raise ValueError(f"must be a finite number of at most 1e15, not {raw!r}")
    return raw


NUMBER = _finite_number
DISPLAY_TEXT = obj({"language": (text(2), True), "text": (text(512), True)})
IMAGE = obj({
    "url": (url, True),
    "thumbnail": (url, False),
    "category": (choice(enums.IMAGE_CATEGORIES), True),
    "type": (lambda raw: _image_type(raw), True),
    "width": (integer(), False),
    "height": (integer(), False),
})
BUSINESS_DETAILS = obj({"name": (text(100), True), "website": (url, False), "logo": (IMAGE, False)})
REGULAR_HOURS = obj({
    "weekday": (integer(minimum=1, maximum=7), True),
    "period_begin": (lambda raw: _hhmm(raw), True),
    "period_end": (lambda raw: _hhmm(raw), True),
})
EXCEPTIONAL_PERIOD = obj({"period_begin": (_datetime_json, True), "period_end": (_datetime_json, True)})
HOURS = obj({
    "twentyfourseven": (boolean, True),
    "regular_hours": (list_of(REGULAR_HOURS), False),
    "exceptional_openings": (list_of(EXCEPTIONAL_PERIOD), False),
    "exceptional_closings": (list_of(EXCEPTIONAL_PERIOD), False),
})
ENERGY_MIX = obj({
    "is_green_energy": (boolean, True),
    "energy_sources": (list_of(obj({
        "source": (choice(enums.ENERGY_SOURCE_CATEGORIES), True), "percentage": (NUMBER, True),
    })), False),
    "environ_impact": (list_of(obj({
        "category": (choice(enums.ENVIRONMENTAL_IMPACT_CATEGORIES), True), "amount": (NUMBER, True),
    })), False),
    "supplier_name": (text(64), False),
    "energy_product_name": (text(64), False),
})
PUBLISH_TOKEN = obj({
    "uid": (text(36, ci=True), False),
    "type": (text(20), False),
    "visual_number": (text(64), False),
    "issuer": (text(64), False),
    "group_id": (text(36, ci=True), False),
})
STATUS_SCHEDULE = obj({
    "period_begin": (_datetime_json, True),
    "period_end": (_datetime_json, False),
    "status": (choice(STATUSES), True),
})


def _image_type(raw: Any) -> str:
    # Some feeds send the MIME type (`image/jpeg`) where OCPI wants its subtype (`jpeg`).
    value = text(32)(raw).lower().removeprefix("image/")
    return text(4, ci=True)(value)


def _hhmm(raw: Any) -> str:
    if not isinstance(raw, str) or not _HHMM.match(raw):
        raise ValueError(f"{raw!r} is not a time of day such as 18:15")
    return raw


# --- Objects -------------------------------------------------------------------------------------
# Runs of plain fields are tables read by `Checker.take_all`; fields whose value steers what follows
# are taken one by one around them.

_ID = text(36, ci=True, allow_empty=False)
_ID_211 = text(39, ci=True, allow_empty=False)  # 2.1.1's Location.id and EVSE.uid: string(39)
_TARIFF_ID = text(36, ci=True)
CONNECTOR_HEAD = (
    spec("id", _ID, required=True, to="connector_id"),
    spec("standard", lambda raw: _connector_standard(raw), required=True),
    spec("format", choice(FORMATS), required=True),
    spec("power_type", choice(POWER_TYPES)),
)
CONNECTOR_ELECTRIC = {
    V211: (
        spec("voltage", integer(), required=True, to="max_voltage"),
        spec("amperage", integer(), required=True, to="max_amperage"),
        spec("tariff_id", lambda raw: [_TARIFF_ID(raw)], to="tariff_ids", default=NEW_LIST),
        spec("terms_and_conditions", url, default=""),
    ),
    V221: (
        spec("max_voltage", integer(), required=True),
        spec("max_amperage", integer(), required=True),
        spec("max_electric_power", lambda raw: watts(raw)),
        spec("tariff_ids", list_of(_TARIFF_ID), default=NEW_LIST),
        spec("terms_and_conditions", url, default=""),
    ),
}
CONNECTOR_TAIL = (  # portal contract extensions
    spec("rate_setting", decimal(max_digits=10, places=4)),
    spec("status", choice(STATUSES), default=""),
)

def clean_connector(data: Any, *, path: str = "", version: str = V221, partial: bool = False,
                    stamped: bool = True, errors: dict[str, str] | None = None) -> dict:
    own_errors = errors if errors is not None else {}
    if not isinstance(data, dict):
        own_errors[path or "connector"] = "must be an object"
        return _finish({}, own_errors, errors)
    c = Checker(data, path, own_errors, partial)
    c.take_all(CONNECTOR_HEAD)
    if c.out.get("power_type") is None and not partial:
        if c.out.get("standard") in DC_ONLY_STANDARDS:
            c.out["power_type"] = "DC"
        else:
            c.fail("power_type", "must not be null" if "power_type" in data else "is required")
    c.take_all(CONNECTOR_ELECTRIC[V211 if version == V211 else V221])
    _take_last_updated(c, stamped)
    c.take_all(CONNECTOR_TAIL)
    if isinstance(data.get("standard"), str):
        c.out["connector_type_code"] = _portal_connector_code(data["standard"], c.out.get("standard"))
    return _finish(c.out, own_errors, errors)


def watts(raw: Any) -> int:
    value = integer()(raw)
    if 0 < value < 1000:
        raise ValueError(f"{value} W is no charger's power: OCPI counts watts ({value} kW is {value * 1000})")
    return value


_STANDARDS_BY_UPPER = {code.upper(): code for code in enums.OCPI_CONNECTOR_CODES}
# Names real feeds use for a standard, each of which means exactly one OCPI ConnectorType.
STANDARD_ALIASES = {"TYPE 2 OUTLET": "IEC_62196_T2", "GB/T (DC)": "GBT_DC", "GB/T (AC)": "GBT_AC"}


def _connector_standard(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"must be an OCPI ConnectorType, not {raw!r}")
    key = raw.strip()
    if key.upper() in _STANDARDS_BY_UPPER:
        return _STANDARDS_BY_UPPER[key.upper()]
    if key.upper() in STANDARD_ALIASES:
        return STANDARD_ALIASES[key.upper()]
    if key.upper() in enums.PORTAL_CONNECTOR_TO_OCPI:
        return enums.PORTAL_CONNECTOR_TO_OCPI[key.upper()]
    if key.upper() == "GBT":
        return "GBT_AC"  # refined to GBT_DC by the power type in _refine_gbt
    raise ValueError(
        f"{raw!r} is not an OCPI ConnectorType; valid: "
        + ", ".join(sorted(enums.OCPI_CONNECTOR_CODES | set(enums.PORTAL_CONNECTOR_TO_OCPI) | {"GBT"}))
    )


def _portal_connector_code(raw: str, standard: str | None) -> str | None:
    key = raw.strip().upper()
    if key in enums.PORTAL_CONNECTOR_TO_OCPI or key == "GBT":
        return key
    return standard


EVSE_HEAD_FIELDS = (
    spec("evse_id", text(48, ci=True), default=""),
    spec("status", choice(STATUSES), required=True),
    spec("status_schedule", list_of(STATUS_SCHEDULE), default=NEW_LIST),
    spec("capabilities", choices(CAPABILITIES), default=NEW_LIST),
    spec("payment_types", choices(PAYMENT_TYPES), default=NEW_LIST),
    spec("floor_level", text(4), default=""),
    # Spec: 16 characters; labels such as "BAY 02 ( SOCKET ONLY )" are kept whole, like addresses.
    spec("physical_reference", text(64), default=""),
    spec("directions", list_of(DISPLAY_TEXT), default=NEW_LIST),
    spec("parking_restrictions", choices(PARKING_RESTRICTIONS), default=NEW_LIST),
    spec("images", list_of(IMAGE), default=NEW_LIST),
)
EVSE_HEAD = {version: (spec("uid", _ID_211 if version == V211 else _ID, required=True), *EVSE_HEAD_FIELDS)
             for version in (V211, V221)}
EVSE_TAIL = (  # portal contract extensions
    *(spec(name, text(size), default="") for name, size in (
        ("serial_number", 64), ("meter_type", 64), ("current_ws_connection_id", 128), ("server_id", 128))),
    spec("kwh", decimal(max_digits=10, places=2, minimum=0)),
)


def clean_evse(data: Any, *, path: str = "", version: str = V221, partial: bool = False,
               stamped: bool = True, errors: dict[str, str] | None = None) -> dict:
    own_errors = errors if errors is not None else {}
    if not isinstance(data, dict):
        own_errors[path or "evse"] = "must be an object"
        return _finish({}, own_errors, errors)
    c = Checker(data, path, own_errors, partial)
    c.take_all(EVSE_HEAD[V211 if version == V211 else V221])
    coordinates = c.take("coordinates", geolocation)
    if coordinates is not MISSING:
        c.out.pop("coordinates")
        c.out["evse_lat"], c.out["evse_lng"] = coordinates if coordinates else (None, None)
    _take_last_updated(c, stamped)
    c.take_all(EVSE_TAIL)
    _clean_connectors(c, data, version, stamped)
    return _finish(c.out, own_errors, errors)


def _clean_connectors(c: Checker, data: dict, version: str, stamped: bool) -> None:
    raw = data.get("connectors", MISSING)
    if raw is MISSING and c.partial:
        return
    if not isinstance(raw, list) or not raw:
        c.fail("connectors", "must list at least one connector")
        return
    connectors = [
        clean_connector(item, path=c.at(f"connectors[{index}]"), version=version, stamped=stamped, errors=c.errors)
        for index, item in enumerate(raw)
    ]
    ids = [conn.get("connector_id") for conn in connectors]
    for index, connector_id in enumerate(ids):
        if connector_id is not None and ids.index(connector_id) != index:
            c.fail(f"connectors[{index}].id", f"{connector_id!r} is used twice in this EVSE")
    for connector in connectors:
        _refine_gbt(connector)
    c.out["connectors"] = connectors


def _refine_gbt(connector: dict) -> None:
    if connector.get("connector_type_code") == "GBT" and connector.get("power_type") == "DC":
        connector["standard"] = "GBT_DC"


LOCATION_HEAD = {
    # 2.1.1 objects carry no party: it comes from the URL and the credentials of the sender.
    V211: (
        spec("country_code", text(2, ci=True)),
        spec("party_id", text(3, ci=True)),
        spec("id", _ID_211, required=True, to="ocpi_id"),
        spec("type", choice(frozenset({*LOCATION_TYPE_211, "OTHER", "UNKNOWN"})), to="parking_type"),
        spec("publish", boolean, default=True),
    ),
    V221: (
        spec("country_code", text(2, ci=True), required=True),
        spec("party_id", text(3, ci=True), required=True),
        spec("id", _ID, required=True, to="ocpi_id"),
        spec("publish", boolean, required=True),
        spec("parking_type", choice(PARKING_TYPES)),
    ),
}
LOCATION_ADDRESS = (
    spec("publish_allowed_to", list_of(PUBLISH_TOKEN), default=NEW_LIST),
    spec("name", text(255), default=""),
    # OCPI caps address at 45 characters, but most Asian and Turkish feeds send the full street
    # address; it is stored whole (the sender shortens it) rather than losing the location.
    spec("address", text(255, allow_empty=False), required=True),
    spec("city", text(45, allow_empty=False), required=True),
    spec("postal_code", text(10), default=""),
)
PROVINCE = text(20)
LOCATION_REGION = (
    spec("region", text(64), default=""),
    spec("country", country_alpha3, required=True),
)
LOCATION_DETAILS = (
    spec("related_locations", list_of(_coordinate_json), default=NEW_LIST),
    spec("directions", list_of(DISPLAY_TEXT), default=NEW_LIST),
    *(spec(name, BUSINESS_DETAILS) for name in ("operator", "suboperator", "owner")),
    spec("facilities", choices(FACILITIES), default=NEW_LIST),
)
LOCATION_TAIL = {
    version: (
        spec("parking_restrictions", choices(PARKING_RESTRICTIONS), default=NEW_LIST),
        spec("time_zone", time_zone, required=version != V211, default=""),
        spec("opening_times", HOURS),
        spec("charging_when_closed", boolean),
        spec("images", list_of(IMAGE), default=NEW_LIST),
        spec("energy_mix", ENERGY_MIX),
    )
    for version in (V211, V221)
}


def clean_location(data: Any, *, version: str = V221, partial: bool = False, stamped: bool = True) -> dict:
    """`stamped=False` is for sources that send no timestamps (portal, webhooks, CSV): a missing
    `last_updated` is left None, and the writer stamps what changed with the time of the write."""
    errors: dict[str, str] = {}
    if not isinstance(data, dict):
        raise InvalidPayload({"location": "must be a JSON object"})
    c = Checker(data, "", errors, partial)
    c.take_all(LOCATION_HEAD[V211 if version == V211 else V221])
    # OCPI's single parking type and the portal's list are one set of codes on the model.
    parking_type = c.out.pop("parking_type", None)
    if version == V211:
        parking_type = LOCATION_TYPE_211.get(parking_type or "")
    if not partial or parking_type:
        c.out["parking_types"] = [parking_type] if parking_type else []
    c.take_all(LOCATION_ADDRESS)
    c.take("province" if "province" in data else "state", PROVINCE, to="province", default="")
    c.take_all(LOCATION_REGION)
    coordinates = c.take("coordinates", geolocation, required=True)
    if coordinates not in (MISSING, None):
        c.out.pop("coordinates")
        c.out["address_lat"], c.out["address_lng"] = coordinates
    c.take_all(LOCATION_DETAILS)
    if "parking_types" in data:
        c.take("parking_types", choices(LOCATION_PARKING_TYPES), default=[])
    c.take_all(LOCATION_TAIL[V211 if version == V211 else V221])
    _take_last_updated(c, stamped)
    _clean_evses(c, data, version, stamped)
    if errors:
        raise InvalidPayload(errors)
    return c.out


def _clean_evses(c: Checker, data: dict, version: str, stamped: bool) -> None:
    raw = data.get("evses", MISSING)
    if raw is MISSING or raw is None:
        if not c.partial:
            c.out["evses"] = []
        return
    if not isinstance(raw, list):
        c.fail("evses", "must be a list")
        return
    evses = [
        clean_evse(item, path=f"evses[{index}]", version=version, stamped=stamped, errors=c.errors)
        for index, item in enumerate(raw)
    ]
    uids = [evse.get("uid", "").upper() for evse in evses]
    for index, uid in enumerate(uids):
        if uid and uids.index(uid) != index:
            c.fail(f"evses[{index}].uid", f"{evses[index]['uid']!r} is used twice in this location")
    c.out["evses"] = evses


def _take_last_updated(c: Checker, stamped: bool) -> None:
    c.take("last_updated", timestamp, required=stamped)
    if not stamped and c.out.get("last_updated") is None:
        c.out["last_updated"] = None


def _finish(out: dict, own_errors: dict[str, str], shared: dict[str, str] | None) -> dict:
    """Standalone calls raise; nested calls leave their errors in the parent's collection."""
    if shared is None and own_errors:
        raise InvalidPayload(own_errors)
    return out

"""The charge points ("Ladepunkte") of a BNetzA row as OCPI EVSEs and connectors.

Each charge point is one EVSE; each plug named in its `Steckertypen<n>` cell one connector. Plugs are
separated by "," (2017-2019) or ";" (2021 on). The power cell holds one value for every plug of the
charge point, or, since 2021, one per plug ("50; 50"). A plug is capped at its own rating (a Schuko
next to a 22 kW Type 2 socket still delivers 3.7 kW). Electrical values the register does not give
are derived from the power (`common.electrics`).

`EVSE-ID<n>` becomes the EVSE's `evse_id` when it is one valid eMI3 EVSE id ("DE*ABC*E12345*1");
anything else (a free text, a key pasted into the wrong column, two ids) is left out with a warning.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

from locations.registers.bnetza.layout import ChargePointColumns, Layout
from locations.registers.common import ConnectorSpec, Issues, clean, electrics, parse_decimal, to_watts

# Keys are normalised with `connector_key`. The "seen" blocks are every string found in the 2017-04-11
# and 2019-07-19 exports, and in the exports of 2023 to 2026; the rest are anticipated spellings, by
# analogy, so a later export's variant maps instead of costing the plug.
CONNECTOR_TYPES: dict[str, ConnectorSpec] = {
    # seen 2017-2019
    "ac steckdose typ 2": ConnectorSpec("IEC_62196_T2", "SOCKET", "AC", None, Decimal("43")),
    "ac kupplung typ 2": ConnectorSpec("IEC_62196_T2", "CABLE", "AC", None, Decimal("43")),
    "dc kupplung combo": ConnectorSpec("IEC_62196_T2_COMBO", "CABLE", "DC", None, None),
    "dc chademo": ConnectorSpec("CHADEMO", "CABLE", "DC", None, Decimal("62.5")),
    "ac schuko": ConnectorSpec("DOMESTIC_F", "SOCKET", "AC", 1, Decimal("3.7")),
    "ac cee 3 polig": ConnectorSpec("IEC_60309_2_single_16", "SOCKET", "AC", 1, Decimal("3.7")),
    "ac cee 5 polig": ConnectorSpec("IEC_60309_2_three_16", "SOCKET", "AC", 3, Decimal("11")),
    "steckdose typ 1": ConnectorSpec("IEC_62196_T1", "SOCKET", "AC", 1, Decimal("7.4")),
    # seen 2023-2026
    "ac typ 2 steckdose": ConnectorSpec("IEC_62196_T2", "SOCKET", "AC", None, Decimal("43")),
    "ac typ 2 fahrzeugkupplung": ConnectorSpec("IEC_62196_T2", "CABLE", "AC", None, Decimal("43")),
    "dc fahrzeugkupplung typ combo 2 (ccs)": ConnectorSpec("IEC_62196_T2_COMBO", "CABLE", "DC", None, None),
    "ac typ 1 steckdose": ConnectorSpec("IEC_62196_T1", "SOCKET", "AC", 1, Decimal("7.4")),
    "dc tesla fahrzeugkupplung (typ 2)": ConnectorSpec("TESLA_S", "CABLE", "DC", None, None),
    # anticipated
    "ac steckdose typ 1": ConnectorSpec("IEC_62196_T1", "SOCKET", "AC", 1, Decimal("7.4")),
    "ac kupplung typ 1": ConnectorSpec("IEC_62196_T1", "CABLE", "AC", 1, Decimal("7.4")),
    "ac typ 1 fahrzeugkupplung": ConnectorSpec("IEC_62196_T1", "CABLE", "AC", 1, Decimal("7.4")),
    "dc kupplung typ 2": ConnectorSpec("IEC_62196_T2_COMBO", "CABLE", "DC", None, None),
    "dc kupplung combo typ 2": ConnectorSpec("IEC_62196_T2_COMBO", "CABLE", "DC", None, None),
    "dc kupplung combo typ 1": ConnectorSpec("IEC_62196_T1_COMBO", "CABLE", "DC", None, None),
    "dc kupplung typ 1": ConnectorSpec("IEC_62196_T1_COMBO", "CABLE", "DC", None, None),
    "dc fahrzeugkupplung typ combo 1 (ccs)": ConnectorSpec("IEC_62196_T1_COMBO", "CABLE", "DC", None, None),
    "dc fahrzeugkupplung typ combo (ccs)": ConnectorSpec("IEC_62196_T2_COMBO", "CABLE", "DC", None, None),
    "ac schuko steckdose": ConnectorSpec("DOMESTIC_F", "SOCKET", "AC", 1, Decimal("3.7")),
    "ac cee 16a 3 polig": ConnectorSpec("IEC_60309_2_single_16", "SOCKET", "AC", 1, Decimal("3.7")),
    "ac cee 16a 5 polig": ConnectorSpec("IEC_60309_2_three_16", "SOCKET", "AC", 3, Decimal("11")),
    "ac cee 32a 5 polig": ConnectorSpec("IEC_60309_2_three_32", "SOCKET", "AC", 3, Decimal("22")),
    "ac cee 63a 5 polig": ConnectorSpec("IEC_60309_2_three_64", "SOCKET", "AC", 3, Decimal("43")),
    "tesla": ConnectorSpec("TESLA_S", "CABLE", "DC", None, None),
    "dc tesla": ConnectorSpec("TESLA_S", "CABLE", "DC", None, None),
    "tesla supercharger": ConnectorSpec("TESLA_S", "CABLE", "DC", None, None),
}
# OCPI 2.2.1 has no connector type for the Megawatt Charging System ("DC Megawatt Charging System
# (MCS)", 29 stations in 2026): such a plug is reported as unknown rather than passed off as CCS.

# eMI3 V1.0 Part 2: country, "*", operator id, "*", "E", outlet id; the "*" are optional.
EVSE_ID = re.compile(r"[A-Z]{2}\*?[A-Z0-9]{3}\*?E[A-Z0-9*]{1,30}", re.IGNORECASE)
_PLUG_SEPARATOR = re.compile(r"[,;]")
_ID_SEPARATOR = re.compile(r"[\s,;]+")


def connector_key(text: str) -> str:
    return " ".join(text.replace("-", " ").split()).casefold()


def evses(cells: list[str], layout: Layout, location_id: str, issues: Issues, extras: dict) -> list[dict]:
    """The row's EVSEs, each with the `extras` (status, capabilities, ...) the whole row shares."""
    found, unknown = [], []
    for columns in layout.charge_points:
        plugs = _cell(cells, columns.plugs)
        power_column = layout.header[columns.power] if columns.power is not None else ""
        power_text = _cell(cells, columns.power).strip()
        if not plugs or plugs.isspace():  # most of the six charge points of a row are empty
            if power_text:
                issues.warn(power_column, power_text, "power without connector type, skipped")
            continue
        tokens, specs = _plug_specs(plugs)
        unknown += [(layout.header[columns.plugs], token) for token, spec in zip(tokens, specs) if spec is None]
        if any(specs):
            kws = _plug_powers(power_text, power_column, specs, issues)
            connectors = [_connector(index, spec, kw) for index, (spec, kw)
                          in enumerate(((s, k) for s, k in zip(specs, kws) if s is not None), start=1)]
            evse = {"uid": f"{location_id}-{columns.number}", **extras, "connectors": connectors}
            evse_id = _evse_id(cells, layout, columns, issues)
            if evse_id:
                evse["evse_id"] = evse_id
            found.append(evse)
    _report_unknown_connectors(found, unknown, layout, issues)
    return found


@lru_cache(maxsize=4096)
def _plug_specs(cell: str) -> tuple[tuple[str, ...], tuple[ConnectorSpec | None, ...]]:
    """The plugs named in a cell and their specs (None for an unknown one); a register has few
    distinct plug cells, so each is worked out once."""
    tokens = (clean(token) for token in _PLUG_SEPARATOR.split(clean(cell)))
    named = tuple(token for token in tokens if token)  # a trailing separator, as in "DC Kupplung Combo, "
    return named, tuple(CONNECTOR_TYPES.get(connector_key(token)) for token in named)


def _cell(cells: list[str], index: int | None) -> str:
    return cells[index] if index is not None and index < len(cells) else ""


def _plug_powers(text: str, column: str, specs: list[ConnectorSpec | None],
                 issues: Issues) -> list[Decimal | None]:
    """The power of each plug: one value for all of them, or one each ("50; 50")."""
    known = [spec for spec in specs if spec is not None]
    if ";" not in text:
        kw = _charge_point_power(text, column, known, issues)
        return [kw] * len(specs)
    parts = [part.strip() for part in text.split(";")]
    if len(parts) == len(specs):
        return [_charge_point_power(part, column, [spec], issues) if spec is not None else None
                for part, spec in zip(parts, specs)]
    numbers = [number for number in map(parse_decimal, parts) if number is not None]
    issues.warn(column, text, f"{len(parts)} powers for {len(specs)} connector(s), the largest taken for each")
    kw = _charge_point_power(str(max(numbers)) if numbers else "", column, known, issues)
    return [kw] * len(specs)


def _charge_point_power(text: str, column: str, specs: list[ConnectorSpec], issues: Issues) -> Decimal:
    kw = parse_decimal(text)
    ceiling = _ceiling(specs)
    if kw is None or kw <= 0:
        # The plug still exists; its rating is the best stand-in for a missing power value, and
        # for CCS (no rating) 50 kW, what nearly every DC charger of these exports delivers.
        issues.warn(column, text, "no usable power, assumed the connector's rating")
        return ceiling if ceiling is not None else Decimal(50)
    if ceiling is not None and kw > ceiling:
        issues.warn(column, text, f"more than the connectors' rating of {ceiling} kW, capped")
    return kw


def _ceiling(specs: list[ConnectorSpec]) -> Decimal | None:
    ratings = [spec.max_kw for spec in specs]
    return None if None in ratings else max(ratings)


def _connector(index: int, spec: ConnectorSpec, kw: Decimal) -> dict:
    return {"id": str(index), **_connector_fields(spec, kw)}


@lru_cache(maxsize=4096)
def _connector_fields(spec: ConnectorSpec, kw: Decimal) -> dict:
    # Cached: a register repeats a few dozen plug and power pairs; callers copy the dict.
    if spec.max_kw is not None:
        kw = min(kw, spec.max_kw)
    watts = to_watts(kw)
    power_type, volts, amps = electrics(spec, watts)
    return {
        "standard": spec.standard,
        "format": spec.format,
        "power_type": power_type,
        "max_voltage": volts,
        "max_amperage": amps,
        "max_electric_power": watts,
    }


def _evse_id(cells: list[str], layout: Layout, columns: ChargePointColumns, issues: Issues) -> str | None:
    text = _cell(cells, columns.evse_id).strip()
    if not text:
        return None
    column = layout.header[columns.evse_id]
    ids = {token.upper() for token in _ID_SEPARATOR.split(text) if token}
    valid = [token for token in ids if EVSE_ID.fullmatch(token)]
    if len(valid) == 1 and len(ids) == 1:
        return valid[0]
    reason = "several EVSE ids for one charge point, left out" if len(valid) > 1 else "not an eMI3 EVSE id, left out"
    issues.warn(column, clean(text), reason)
    return None


def _report_unknown_connectors(found: list[dict], unknown: list[tuple[str, str]], layout: Layout,
                               issues: Issues) -> None:
    # An unknown plug next to known ones only loses that plug; without any known plug there is
    # nothing to charge at, so the row cannot become a location.
    if found:
        for column, token in unknown:
            issues.warn(column, token, "unknown connector type, skipped")
        return
    columns = ", ".join(layout.header[cp.plugs] for cp in layout.charge_points)
    if unknown:
        issues.error(columns, ", ".join(token for _, token in unknown), "no known connector type")
    else:
        issues.error(columns, "", "no charge point")


def check_charge_point_count(cells: list[str], layout: Layout, found: int, issues: Issues) -> None:
    if not layout.has("charge_point_count"):
        return
    text = layout.cell(cells, "charge_point_count").strip()
    if text.isdigit() and int(text) != found:
        issues.warn(layout.title("charge_point_count"), text, f"but {found} charge point(s) listed")

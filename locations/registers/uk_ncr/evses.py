"""The connectors of a UK NCR charge device as OCPI EVSEs, one each."""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal

from locations.registers.common import ConnectorSpec, Issues, electrics, parse_decimal, to_watts
from locations.registers.uk_ncr.layout import ID_PREFIX, Layout, cell_value, deleted

# Keys are normalised with `_type_key` (letters and digits only, case-folded), so spacing such as
# "(IEC 62196)" / "(IEC62196)" does not matter. Every value of the 2012-2017 export is here.
# max_kw only stands in for a missing power value.
CONNECTOR_TYPES: dict[str, ConnectorSpec] = {
    "type2mennekesiec62196": ConnectorSpec("IEC_62196_T2", "SOCKET", "AC", None, Decimal("43")),
    "3pintypegbs1363": ConnectorSpec("DOMESTIC_G", "SOCKET", "AC", 1, Decimal("3")),
    "jevsg105chademodc": ConnectorSpec("CHADEMO", "CABLE", "DC", None, Decimal("50")),
    "type2comboiec62196dc": ConnectorSpec("IEC_62196_T2_COMBO", "CABLE", "DC", None, Decimal("50")),
    # Tesla's European Supercharger: a Type 2 plug carrying DC that only Teslas could use, so
    # TESLA_S (as the BNetzA parser maps "Tesla") rather than a Type 2 an ordinary car would try.
    "type2teslaiec62196dc": ConnectorSpec("TESLA_S", "CABLE", "DC", None, Decimal("120")),
    "type1saej1772iec62196": ConnectorSpec("IEC_62196_T1", "CABLE", "AC", 1, Decimal("7.4")),
    "type3scameiec62196": ConnectorSpec("IEC_62196_T3C", "SOCKET", "AC", None, Decimal("22")),
}

# Plugs whose format the standard fixes, whatever connectorNTetheredCable says.
_FIXED_FORMAT = frozenset({"CHADEMO", "IEC_62196_T2_COMBO", "TESLA_S", "DOMESTIC_G"})

_CHARGE_METHODS = {"single phase ac": ("AC", 1), "three phase ac": ("AC", 3), "dc": ("DC", None)}

_EVSE_STATUSES = {"in service": "UNKNOWN", "out of service": "OUTOFORDER", "planned": "PLANNED"}


def _type_key(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def evses(cells: list[str], layout: Layout, location_id: str, issues: Issues) -> list[dict]:
    device_status = _EVSE_STATUSES.get(layout.value(cells, "device_status").casefold(), "UNKNOWN")
    removed = deleted(cells, layout)
    evses, unknown = [], []
    for group in layout.connectors:
        def field(name: str, group=group) -> str:
            index = group.columns.get(name)
            return cell_value(cells[index]) if index is not None else ""

        def title(name: str, group=group) -> str:
            index = group.columns.get(name)
            return layout.header[index] if index is not None else f"connector{group.number}{name}"

        type_text = field("type")
        if not type_text:
            filled = [name for name in ("ratedoutputkw", "outputcurrent", "ratedvoltage") if field(name)]
            if filled:
                issues.warn(title(filled[0]), field(filled[0]), "values without a connector type, skipped")
            continue
        spec = CONNECTOR_TYPES.get(_type_key(type_text))
        if spec is None:
            unknown.append((title("type"), type_text))
            continue
        connector = _connector(spec, field, title, issues)
        connector_id = field("id")
        uid = ID_PREFIX + connector_id if connector_id.isdigit() else f"{location_id}-{group.number}"
        status = _EVSE_STATUSES.get(field("status").casefold(), "UNKNOWN")
        if device_status != "UNKNOWN":
            status = device_status
        if removed:
            status = "REMOVED"
        evses.append({"uid": uid, "status": status, "connectors": [connector]})
    if evses:
        for column, value in unknown:
            issues.warn(column, value, "unknown connector type, skipped")
    elif unknown:
        issues.error(", ".join(c for c, _ in unknown), ", ".join(v for _, v in unknown), "no known connector type")
    else:
        columns = ", ".join(layout.header[group.columns["type"]] for group in layout.connectors)
        issues.error(columns, "", "no connector")
    return evses


def _connector(spec: ConnectorSpec, field, title, issues: Issues) -> dict:
    current, phases = spec.current, spec.phases
    method_text = field("chargemethod")
    method = _CHARGE_METHODS.get(method_text.casefold())
    if method_text and method is None:
        issues.warn(title("chargemethod"), method_text, "unknown charge method, ignored")
    elif method and method[0] != spec.current:
        issues.warn(title("chargemethod"), method_text, "contradicts the connector type, which wins")
    elif method and phases is None:
        phases = method[1]

    kw = _positive(field, title, "ratedoutputkw", issues)
    volts = _positive(field, title, "ratedvoltage", issues)
    amps = _positive(field, title, "outputcurrent", issues)
    if kw is not None:
        watts = to_watts(kw)
    elif volts is not None and amps is not None:
        watts = _watts_from(current, phases, volts, amps)
    else:
        watts = to_watts(spec.max_kw)
        issues.warn(title("ratedoutputkw"), field("ratedoutputkw"), "no usable power, assumed the connector's rating")
    power_type, derived_volts, derived_amps = electrics(
        ConnectorSpec(spec.standard, spec.format, current, phases, None), watts
    )
    if volts is not None:
        if power_type == "AC_3_PHASE" and volts >= 380:
            volts = Decimal(round(float(volts) / math.sqrt(3) / 10) * 10)  # line to neutral
        derived_volts = _whole(volts)
    return {
        "id": "1",
        "standard": spec.standard,
        "format": _format(spec, field, title, issues),
        "power_type": power_type,
        "max_voltage": derived_volts,
        "max_amperage": _whole(amps) if amps is not None else derived_amps,
        "max_electric_power": watts,
    }


def _positive(field, title, name: str, issues: Issues) -> Decimal | None:
    text = field(name)
    if not text:
        return None
    number = parse_decimal(text)
    if number is None or number <= 0:
        issues.warn(title(name), text, "not a positive number, ignored")
        return None
    return number


def _whole(number: Decimal) -> int:
    return int(number.to_integral_value(rounding=ROUND_HALF_UP))


def _watts_from(current: str, phases: int | None, volts: Decimal, amps: Decimal) -> int:
    if current == "AC" and phases == 3:
        factor = Decimal(str(math.sqrt(3))) if volts >= 380 else Decimal(3)  # line to line or neutral
        return to_watts(volts * amps * factor / 1000)
    return to_watts(volts * amps / 1000)


def _format(spec: ConnectorSpec, field, title, issues: Issues) -> str:
    tethered = field("tetheredcable")
    stated = {"1": "CABLE", "0": "SOCKET"}.get(tethered)
    if spec.standard in _FIXED_FORMAT:
        if stated and stated != spec.format:
            issues.warn(title("tetheredcable"), tethered, f"a {spec.standard} connector is always a {spec.format}")
        return spec.format
    return stated or spec.format

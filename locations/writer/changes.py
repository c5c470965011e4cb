"""What the writer applies: a location's, EVSE's or connector's change, built from cleaned OCPI objects
(locations.validation output)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from locations.models import Capability, Facility, ParkingRestriction, ParkingTypeCode, PaymentType


LOCATION_M2M = {"facilities": Facility, "parking_types": ParkingTypeCode, "parking_restrictions": ParkingRestriction}
EVSE_M2M = {"capabilities": Capability, "payment_types": PaymentType, "parking_restrictions": ParkingRestriction}


@dataclass
class Outcome:
    instance: Any = None
    created: bool = False
    changed: bool = False
    stale: bool = False

    @property
    def pk(self) -> int | None:
        return self.instance.pk


@dataclass
class ConnectorChange:
    connector_id: str
    values: dict
    type_code: str | None = None
    partial: bool = False
    outcome: Outcome = field(default_factory=Outcome)


@dataclass
class EvseChange:
    uid: str
    values: dict
    m2m: dict[str, list[str]] = field(default_factory=dict)
    connectors: list[ConnectorChange] | None = None
    replace_connectors: bool = True
    partial: bool = False
    outcome: Outcome = field(default_factory=Outcome)


@dataclass
class LocationChange:
    ocpi_id: str
    values: dict
    m2m: dict[str, list[str]] = field(default_factory=dict)
    evses: list[EvseChange] | None = None
    replace_evses: bool = True
    partial: bool = False
    outcome: Outcome = field(default_factory=Outcome)


# --- Building changes from cleaned OCPI objects (locations.validation output) -----------------------

def connector_change(clean: dict, *, partial: bool = False, connector_id: str | None = None) -> ConnectorChange:
    values = dict(clean)
    code = values.pop("connector_type_code", None)
    return ConnectorChange(connector_id or values["connector_id"], values, code, partial)


def evse_change(clean: dict, *, partial: bool = False, uid: str | None = None) -> EvseChange:
    values = dict(clean)
    connectors = values.pop("connectors", None)
    m2m = {name: values.pop(name) or [] for name in EVSE_M2M if name in values}
    return EvseChange(
        uid or values["uid"], values, m2m,
        None if connectors is None else [connector_change(c) for c in connectors], partial=partial,
    )


def location_change(clean: dict, *, partial: bool = False, replace_evses: bool = True,
                    ocpi_id: str | None = None) -> LocationChange:
    values = {k: v for k, v in clean.items() if k not in ("country_code", "party_id")}
    evses = values.pop("evses", None)
    m2m = {name: values.pop(name) or [] for name in LOCATION_M2M if name in values}
    return LocationChange(
        ocpi_id or values["ocpi_id"], values, m2m,
        None if evses is None else [evse_change(e) for e in evses], replace_evses, partial,
    )


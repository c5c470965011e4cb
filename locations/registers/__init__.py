"""Readers of national charge-point registers, each yielding OCPI 2.2.1 Location dicts."""


def register_location(location: dict, *, country_code: str, party_id: str, last_updated: str) -> dict:
    """Complete a register's location for `location_upsert`: the importing CPO's party, and a
    `last_updated` on every level where the register has no date of its own."""
    stamp = location.get("last_updated") or last_updated
    evses = [
        {**evse, "last_updated": evse.get("last_updated") or stamp,
         "connectors": [{**c, "last_updated": c.get("last_updated") or stamp} for c in evse.get("connectors", [])]}
        for evse in location.get("evses", [])
    ]
    return {**location, "country_code": country_code, "party_id": party_id, "last_updated": stamp, "evses": evses}

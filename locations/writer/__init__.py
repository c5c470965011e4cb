"""The write engine behind `locations.services`: applies cleaned location changes in batches.

Every write of the catalogue, one location or a hundred thousand, is a list of `LocationChange`s applied
here with a constant number of queries per batch: the stored rows are read once, compared in Python, and
only what differs is written with bulk statements. The rules live here once: an older update is ignored
(`stale`), `last_updated` propagates connector -> EVSE -> location, a full location replaces its EVSE
list (EVSEs it no longer names become REMOVED, never deleted) and a full EVSE its connectors, new
locations and EVSEs start PENDING unless their CPO auto-publishes. A source that sends no timestamps
(portal, webhooks, CSV) gets `last_updated` set to the time of the write, and only when something changed.

- `changes`: the changes and their building from cleaned OCPI objects;
- `lookups`: the ids of lookup codes, cached per process;
- `stored`: new instances built fast, and the stored rows of a batch read;
- `batch`: the engine (read, decide, write);
- `inserts`: new rows by COPY (PostgreSQL) or in one statement batch.
"""

from locations.writer.batch import changes_apply
from locations.writer.changes import (
    EVSE_M2M,
    LOCATION_M2M,
    ConnectorChange,
    EvseChange,
    LocationChange,
    Outcome,
    connector_change,
    evse_change,
    location_change,
)
from locations.writer.lookups import lookups_forget

__all__ = [
    "EVSE_M2M", "LOCATION_M2M", "ConnectorChange", "EvseChange", "LocationChange", "Outcome", "changes_apply",
    "connector_change", "evse_change", "location_change", "lookups_forget",
]

"""Each location's public EVSEs (models.PublicEvses) after a batch of the writer.

PostgreSQL's triggers (migration locations 0008) refresh a location's row after every statement that
changes its EVSEs or connectors, whoever runs it. A batch writes a location's EVSEs, then their
connectors, then perhaps updates: the same rows refreshed two or three times. So a batch defers the
triggers (`DEFER`: a setting of its transaction, which they read) and refreshes the rows of the locations
it changed once, after its last write (`refresh`, which also ends the deferral). Both go with the batch's
own statements; a batch that fails is rolled back, its setting with it.
"""

from __future__ import annotations

SETTING = "evhub.public_evses"  # 'batch' while a batch defers the triggers (migration 0008 reads it)

DEFER = ("sql", f"SELECT set_config('{SETTING}', 'batch', true)", [])


def refresh(location_ids: list[int]) -> tuple[str, str, list]:
    """The statement (a step of the writer's inserts) that refreshes these locations' rows and ends the
    deferral."""
    return ("sql", f"SELECT locations_public_evses_refresh(%s::bigint[]), set_config('{SETTING}', '', true)",
            [list(location_ids)])

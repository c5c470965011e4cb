"""Signals other apps listen to (`ocpi` pushes changes to eMSPs); `locations` never imports them."""

from django.db import transaction
from django.dispatch import Signal

# Sent after the transaction that changed a location (or one of its EVSEs or connectors) commits.
# Arguments: location_id, created.
location_changed = Signal()


def send_location_changed(location, *, created: bool) -> None:
    location_id = location.pk
    transaction.on_commit(
        lambda: location_changed.send(sender=type(location), location_id=location_id, created=created)
    )

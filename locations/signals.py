"""Signals other apps listen to (`ocpi` pushes changes to eMSPs); `locations` never imports them."""

from django.db import transaction
from django.dispatch import Signal

# Sent after the transaction that changed locations (or their EVSEs or connectors) commits, once per
# write batch. Argument: location_ids, the ids of the locations that changed.
locations_changed = Signal()


def send_locations_changed(location_ids) -> None:
    # Ids only: a callback holding instances keeps every location of a large import in memory until the
    # commit. One signal per batch: a receiver can answer a 500-location batch with one statement.
    ids = list(location_ids)
    if ids:
        transaction.on_commit(lambda: locations_changed.send(sender=locations_changed, location_ids=ids))

"""Signals other apps listen to (`ocpi` pushes changes to eMSPs); `locations` never imports them."""

from django.db import transaction
from django.dispatch import Signal

# Sent after the transaction that changed locations (or their EVSEs or connectors) commits, once per
# write batch. Argument: location_ids, the ids of the locations that changed.
locations_changed = Signal()
# Sent after the transaction that took published locations out of publication commits (the hub's
# moderation). Argument: location_ids. Whoever was sent them must hear they are gone.
locations_withdrawn = Signal()


def send_locations_changed(location_ids) -> None:
    # Ids only: a callback holding instances keeps every location of a large import in memory until the
    # commit. One signal per batch: a receiver can answer a 500-location batch with one statement.
    ids = list(location_ids)
    if ids:
        transaction.on_commit(lambda: locations_changed.send(sender=locations_changed, location_ids=ids))


def send_locations_withdrawn(location_ids) -> None:
    ids = list(location_ids)
    if ids:
        transaction.on_commit(lambda: locations_withdrawn.send(sender=locations_withdrawn, location_ids=ids))

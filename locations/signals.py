"""Signals other apps listen to (`ocpi` announces changes to connected peers); `locations` never imports them.

Both are sent INSIDE the transaction that makes the change, once per write batch, so that a receiver
writes what it must (ocpi's outbox entries) in that same transaction: a change rolled back announces
nothing, and a receiver that fails fails the change (nothing committed goes unannounced). A receiver
that acts outside the database (a task, a call) does so with `transaction.on_commit`.
"""

from django.dispatch import Signal

# The locations (or their EVSEs or connectors) changed. Argument: location_ids, the ids of the locations.
locations_changed = Signal()
# The hub took published locations out of publication (its moderation). Argument: location_ids. Whoever
# was sent them must hear they are gone.
locations_withdrawn = Signal()


def send_locations_changed(location_ids) -> None:
    # Ids only, one signal per batch: a receiver answers a 500-location batch with one statement.
    ids = list(location_ids)
    if ids:
        locations_changed.send(sender=locations_changed, location_ids=ids)


def send_locations_withdrawn(location_ids) -> None:
    ids = list(location_ids)
    if ids:
        locations_withdrawn.send(sender=locations_withdrawn, location_ids=ids)

"""Signals other apps listen to (`ocpi` pushes changes to eMSPs); `locations` never imports them."""

from django.db import transaction
from django.dispatch import Signal

# Sent after the transaction that changed a location (or one of its EVSEs or connectors) commits.
# Arguments: location_id, created.
location_changed = Signal()


def send_location_changed(location, *, created: bool) -> None:
    # Only the id and the class are captured: a callback holding the instance keeps every location of
    # a large import in memory until the commit.
    location_id, sender = location.pk, type(location)
    transaction.on_commit(lambda: location_changed.send(sender=sender, location_id=location_id, created=created))

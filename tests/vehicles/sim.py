"""The simulated maker's cloud on a thread of the test process, and helpers to drive the sync engine."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from vehicles import models as m
from vehicles import sync


def driver_new(prefix: str = "driver"):
    return get_user_model().objects.create_user(username=f"{prefix}-{uuid.uuid4().hex[:8]}", password="pw-12345678")


def account_linked(server, *, cars=2, prefix="sim"):
    """A driver with a simulator account of `cars` cars, linked through the real login and discovery."""
    username = f"{prefix}-{uuid.uuid4().hex[:10]}"
    server.call(lambda cloud: cloud.account_add(username, "secret", cars))
    driver = driver_new()
    account = sync.account_connect(driver=driver, provider="simulator",
                                   credentials={"username": username, "password": "secret"},
                                   options={"base_url": server.url})
    return account


def sync_now(*vehicles_or_accounts) -> sync.SyncReport:
    """Make the given cars (or all cars of the given accounts) due, claim them and run one sync of them."""
    ids = []
    for item in vehicles_or_accounts:
        ids += [item.pk] if isinstance(item, m.Vehicle) else list(item.vehicles.values_list("pk", flat=True))
    m.Vehicle.objects.filter(pk__in=ids).exclude(poll_status=m.PollStatus.PAUSED).update(next_poll_at=timezone.now())
    with transaction.atomic():
        claimed, claim = sync.vehicles_claim(provider="simulator", limit=10_000)
    mine = [i for i in claimed if i in ids]
    return sync.vehicles_sync(vehicle_ids=mine, claim=claim)


def stats(server) -> dict:
    return server.call(lambda cloud: {k: dict(v) for k, v in cloud.stats.items()})

"""The sync engine in this process against the simulator over HTTP, on real PostgreSQL and Redis: what
each kind of maker answer does to cars, accounts, samples and quotas."""

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from vehicles import models as m
from vehicles import services, sync

from .sim import account_linked, stats, sync_now

pytestmark = pytest.mark.django_db(transaction=True)


def test_link_discovers_cars_and_a_sync_stores_their_state(engine):
    account = account_linked(engine, cars=3)
    assert account.vehicles.count() == 3
    car = account.vehicles.first()
    assert car.battery_capacity_kwh == 52.0 and "charging-start" in car.capabilities and car.hvac_min_soc == 45.0
    # The password is not kept; the tokens are, encrypted.
    assert "secret" not in account.secrets and services.maker_account_tokens(account=account).refresh_token

    report = sync_now(account)
    assert (report.polled, report.ok, report.samples) == (3, 3, 3)
    for car in account.vehicles.select_related("state"):
        assert 0 <= car.state.soc <= 100 and car.state.maker_timestamp <= timezone.now()
        assert car.poll_status == "OK" and car.claim_id == "" and car.last_success_at is not None
        # Jittered around the provider's pace; never polled again at once.
        assert car.next_poll_at > timezone.now() + timedelta(seconds=30)
    account.refresh_from_db()
    assert account.quota_tokens is not None and account.quota_tokens < 24


def test_same_maker_timestamp_is_one_sample(engine):
    engine.call(lambda cloud: setattr(cloud.config, "report_every", 3600))
    try:
        account = account_linked(engine, cars=2)
        sync_now(account)
        report = sync_now(account)
    finally:
        engine.call(lambda cloud: setattr(cloud.config, "report_every", 1))
    assert report.ok == 2 and report.samples == 0
    assert m.VehicleSample.objects.filter(vehicle__account=account).count() == 2


def test_expired_access_token_is_refreshed_once_for_the_account(engine):
    account = account_linked(engine, cars=4)
    before = services.maker_account_tokens(account=account).access_token
    refreshes = stats(engine)["by_path"].get("/auth/refresh", 0)
    engine.call(lambda cloud: cloud.expire(cloud.accounts[account.external_id]))
    report = sync_now(account)
    assert report.ok == 4
    assert stats(engine)["by_path"].get("/auth/refresh", 0) == refreshes + 1
    account.refresh_from_db()
    assert services.maker_account_tokens(account=account).access_token != before
    assert account.status == "ACTIVE"


def test_revoked_refresh_token_marks_the_account_for_relogin_and_stops_polling(engine):
    account = account_linked(engine, cars=3)
    engine.call(lambda cloud: cloud.revoke(cloud.accounts[account.external_id]))
    report = sync_now(account)
    assert report.ok == 0 and report.errors == {"auth": 3}
    account.refresh_from_db()
    assert account.status == "NEEDS_RELOGIN" and "refused" in account.last_error
    assert set(account.vehicles.values_list("poll_status", flat=True)) == {"PAUSED"}
    calls = stats(engine)["requests"].get(account.external_id, 0)
    with transaction.atomic():
        ids, _ = sync.vehicles_claim(provider="simulator", limit=10_000)
    assert not set(ids) & set(account.vehicles.values_list("pk", flat=True))
    assert stats(engine)["requests"].get(account.external_id, 0) == calls


def test_makers_429_cools_the_whole_account_down(engine):
    account = account_linked(engine, cars=3)
    engine.call(lambda cloud: cloud.accounts[account.external_id].faults.append("429:7"))
    calls = stats(engine)["requests"].get(account.external_id, 0)
    started = timezone.now()
    report = sync_now(account)
    # One call met the 429; the account's other cars were not sent at all.
    assert stats(engine)["requests"].get(account.external_id, 0) - calls == 1
    assert report.ok == 0 and report.errors == {"quota": 3}
    account.refresh_from_db()
    assert account.cooldown_until >= started + timedelta(seconds=6.5)
    for car in account.vehicles.all():
        assert car.next_poll_at >= account.cooldown_until
    with transaction.atomic():
        ids, _ = sync.vehicles_claim(provider="simulator", now=timezone.now() + timedelta(hours=1), limit=10_000)
    # Due by the clock, but not while the account cools down (now + 1 h is past it: claimed then).
    assert set(account.vehicles.values_list("pk", flat=True)) <= set(ids)


def test_500_and_timeout_back_off_then_recover(engine):
    account = account_linked(engine, cars=2)
    a, b = account.vehicles.order_by("vin")
    engine.call(lambda cloud: cloud.accounts[account.external_id].faults.extend(["500", "timeout:3"]))
    started = timezone.now()
    report = sync_now(a, b)
    assert report.errors == {"server": 1, "timeout": 1}
    for car in (a, b):
        car.refresh_from_db()
        assert car.poll_status == "BACKOFF" and car.poll_failures == 1
        assert car.next_poll_at >= started + timedelta(seconds=27)
    report = sync_now(a, b)
    assert report.ok == 2
    a.refresh_from_db()
    assert a.poll_status == "OK" and a.poll_failures == 0 and a.last_error == ""


def test_our_bucket_stops_calls_before_the_makers_quota(engine, settings):
    settings.VEHICLES_QUOTAS = {"simulator": {"account": (3, 0.001)}}
    # The login drew from the maker's bucket (the account had no id of ours yet), the discovery took 1 of 3.
    account = account_linked(engine, cars=6)
    before = stats(engine)
    report = sync_now(account)
    after = stats(engine)
    assert report.ok == 2 and report.errors == {"quota": 4}
    assert after["requests"][account.external_id] - before["requests"].get(account.external_id, 0) == 2
    assert after["quota_rejections"].get(account.external_id, 0) == 0
    # Put off, not failed: no backoff, no error shown.
    assert set(account.vehicles.values_list("poll_status", flat=True)) == {"OK"}


def test_action_sent_once_and_followed_to_completion(engine):
    account = account_linked(engine, cars=1)
    car = account.vehicles.get()
    action = services.vehicle_action_create(vehicle=car, action="horn-lights")
    sync.action_run(action_id=str(action.pk))
    sync.action_run(action_id=str(action.pk))  # a duplicate of the task, right after: nothing sent again
    action.refresh_from_db()
    assert action.status == "PENDING" and action.external_id and action.sent_at
    assert stats(engine)["by_path"].get("horn-lights", 0) >= 1
    time.sleep(0.3)
    sync.action_run(action_id=str(action.pk))
    action.refresh_from_db()
    assert action.status == "COMPLETED" and action.finished_at


def test_action_the_car_refuses_fails_with_its_reason(engine):
    account = account_linked(engine, cars=1)
    car = account.vehicles.get()
    engine.call(lambda cloud: cloud.accounts[account.external_id].cars[car.vin].set_phase("driving"))
    action = services.vehicle_action_create(vehicle=car, action="charging-start")
    sync.action_run(action_id=str(action.pk))
    time.sleep(0.3)
    sync.action_run(action_id=str(action.pk))
    action.refresh_from_db()
    assert action.status == "FAILED" and "not plugged" in action.error


def test_reading_fetched_within_quota_and_kept(engine):
    account = account_linked(engine, cars=1)
    car = account.vehicles.get()
    sync_now(car)
    data = sync.reading_fetch(vehicle=car, reading="lock-status")
    assert data["lockStatus"] in ("locked", "unlocked")
    assert m.VehicleState.objects.get(vehicle=car).readings["lock-status"]["data"] == data
    engine.call(lambda cloud: cloud.accounts[account.external_id].cars[car.vin].capabilities.remove("cockpit"))
    with pytest.raises(services.VehicleError) as err:
        sync.reading_fetch(vehicle=car, reading="cockpit")
    assert err.value.code == "unsupported"
    car.refresh_from_db()
    assert "cockpit" in car.unsupported and not car.supports("cockpit")


def test_wrong_password_is_refused_and_nothing_linked(engine):
    from .sim import driver_new

    driver = driver_new()
    with pytest.raises(services.VehicleError) as err:
        sync.account_connect(driver=driver, provider="simulator", credentials={"username": "nobody", "password": "x"},
                             options={"base_url": engine.url})
    assert err.value.code == "forbidden"
    assert not m.MakerAccount.objects.filter(driver=driver).exists()


def test_two_workers_meeting_an_expired_token_refresh_it_once(engine):
    """Two syncs of the same account's cars at once (as two worker processes would: two event loops,
    two database connections) meet the expired access token together: the lock lets one refresh, the other
    re-reads the tokens it saved and uses them."""
    import threading

    from django.db import connections

    account = account_linked(engine, cars=4)
    cars = list(account.vehicles.order_by("pk"))
    engine.call(lambda cloud: cloud.expire(cloud.accounts[account.external_id]))
    engine.call(lambda cloud: setattr(cloud.config, "latency", 0.2))  # both inside the refresh together
    refreshes = stats(engine)["by_path"].get("/auth/refresh", 0)
    m.Vehicle.objects.filter(pk__in=[c.pk for c in cars]).update(next_poll_at=timezone.now())
    claims = []
    for half in (cars[:2], cars[2:]):
        with transaction.atomic():
            ids = list(m.Vehicle.objects.filter(pk__in=[c.pk for c in half]).values_list("pk", flat=True))
            claim = f"test{len(claims)}"
            m.Vehicle.objects.filter(pk__in=ids).update(claim_id=claim)
            claims.append((ids, claim))
    reports = []

    def worker(ids, claim):
        try:
            reports.append(sync.vehicles_sync(vehicle_ids=ids, claim=claim))
        finally:
            connections.close_all()
    try:
        threads = [threading.Thread(target=worker, args=claim) for claim in claims]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        engine.call(lambda cloud: setattr(cloud.config, "latency", 0.0))
    assert sorted(r.ok for r in reports) == [2, 2]
    assert stats(engine)["by_path"].get("/auth/refresh", 0) == refreshes + 1


def test_two_dispatchers_never_claim_one_car(engine):
    """While one dispatcher's claim is uncommitted, another skips its rows (SKIP LOCKED) without waiting."""
    import threading

    from django.db import connections

    account = account_linked(engine, cars=3)
    ids = set(account.vehicles.values_list("pk", flat=True))
    m.Vehicle.objects.filter(pk__in=ids).update(next_poll_at=timezone.now())
    first_claimed, release = threading.Event(), threading.Event()
    claimed = {}

    def first():
        try:
            with transaction.atomic():
                claimed["first"] = set(sync.vehicles_claim(provider="simulator", limit=10_000)[0])
                first_claimed.set()
                release.wait(10)
        finally:
            connections.close_all()
    thread = threading.Thread(target=first)
    thread.start()
    assert first_claimed.wait(10)
    started = time.monotonic()
    with transaction.atomic():
        claimed["second"] = set(sync.vehicles_claim(provider="simulator", limit=10_000)[0])
    waited = time.monotonic() - started
    release.set()
    thread.join(10)
    assert ids <= claimed["first"] and not ids & claimed["second"] and waited < 2


def test_cars_of_an_account_marked_for_relogin_during_a_run_all_wait(engine):
    """One car meets a 500 first, the next the revoked token: both wait for the driver, none backs off."""
    account = account_linked(engine, cars=2)
    engine.call(lambda cloud: cloud.accounts[account.external_id].faults.extend(["500", "revoke"]))
    report = sync_now(account)
    assert report.errors == {"server": 1, "auth": 1}
    assert set(account.vehicles.values_list("poll_status", flat=True)) == {"PAUSED"}
    assert set(account.vehicles.values_list("next_poll_at", flat=True)) == {None}


def test_a_rejected_token_with_no_call_left_to_refresh_is_refreshed_first_next_time(engine, settings):
    account = account_linked(engine, cars=1)
    engine.call(lambda cloud: cloud.expire(cloud.accounts[account.external_id]))
    # One call left: the poll takes it, meets the expired token, and has none left to refresh with.
    settings.VEHICLES_QUOTAS = {"simulator": {"account": (1, 0.001)}}
    report = sync_now(account)
    assert report.errors == {"quota": 1}
    account.refresh_from_db()
    assert account.access_expires_at <= timezone.now()
    settings.VEHICLES_QUOTAS = {"simulator": {"account": (100, 10)}}
    time.sleep(0.5)  # a few calls back in the bucket
    states = stats(engine)["by_path"].get("state", 0)
    report = sync_now(account)
    # Refreshed before the poll: no call spent on the dead token.
    assert report.ok == 1 and stats(engine)["by_path"].get("state", 0) == states + 1

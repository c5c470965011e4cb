"""Token buckets, cool-downs and the refresh lock: on Redis, and on database rows where there is none
(the embedded default), giving the same answers."""

import asyncio
import os
import time

import pytest

from vehicles.quota import Buckets, Quota, QuotaExhausted, RefreshLock

# The database half also on the embedded default (SQLite): `make test`'s smoke phase.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.smoke]


@pytest.fixture(params=["redis", "database"])
def redis_url(request):
    if request.param == "redis":
        if not os.environ.get("REDIS_URL"):
            pytest.skip("needs REDIS_URL")
        return os.environ["REDIS_URL"]
    return ""


def run(coro):
    return asyncio.run(coro)


def test_bucket_grants_its_capacity_then_says_how_long_to_wait(redis_url):
    async def main():
        async with Buckets(redis_url) as b:
            kw = dict(provider="simulator", account_id=f"q{time.time_ns()}", account=Quota(3, 0.5),
                      maker=Quota(1000, 1000))
            left = [await b.take(**kw) for _ in range(3)]
            with pytest.raises(QuotaExhausted) as err:
                await b.take(**kw)
            return left, err.value
    left, err = run(main())
    assert [round(x, 1) for x in left] == [2.0, 1.0, 0.0]
    # One token at 0.5 a second: about 2 s away; kind "quota", retryable, not the maker's.
    assert 1.5 < err.retry_after <= 2.0 and err.kind == "quota" and not err.permanent


def test_maker_bucket_is_shared_by_accounts(redis_url):
    async def main():
        async with Buckets(redis_url) as b:
            maker = Quota(2, 0.001)
            provider = f"maker{time.time_ns()}"
            await b.take(provider=provider, account_id="a1", account=None, maker=maker)
            await b.take(provider=provider, account_id="a2", account=None, maker=maker)
            with pytest.raises(QuotaExhausted):
                await b.take(provider=provider, account_id="a3", account=Quota(10, 1), maker=maker)
            # The refused take took nothing from the account's own bucket.
            return await b.level(provider=provider, account_id="a3", account=Quota(10, 1))
    assert run(main()) == pytest.approx(10, abs=0.01)


def test_waiting_is_allowed_up_to_max_wait(redis_url):
    async def main():
        async with Buckets(redis_url) as b:
            kw = dict(provider="simulator", account_id=f"w{time.time_ns()}", account=Quota(1, 5), maker=None)
            await b.take(**kw)
            started = time.monotonic()
            await b.take(**kw, max_wait=1.0)
            return time.monotonic() - started
    assert 0.1 < run(main()) < 1.0


def test_cooldown_stops_the_account_and_is_never_shortened(redis_url):
    async def main():
        async with Buckets(redis_url) as b:
            account = f"c{time.time_ns()}"
            await b.cooldown(provider="simulator", account_id=account, seconds=5)
            await b.cooldown(provider="simulator", account_id=account, seconds=1)
            with pytest.raises(QuotaExhausted) as err:
                await b.take(provider="simulator", account_id=account, account=Quota(10, 1), maker=None, max_wait=10)
            return err.value.retry_after
    assert 4 < run(main()) <= 5


def test_refresh_lock_admits_one_holder_at_a_time(redis_url):
    async def main():
        async with Buckets(redis_url) as b:
            account = f"l{time.time_ns()}"
            inside, most = 0, 0

            async def holder():
                nonlocal inside, most
                async with RefreshLock(b, account, timeout=5):
                    inside += 1
                    most = max(most, inside)
                    await asyncio.sleep(0.05)
                    inside -= 1
            await asyncio.gather(*(holder() for _ in range(5)))
            return most
    assert run(main()) == 1

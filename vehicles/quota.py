"""Token buckets per maker account and per maker, account cool-downs, and one token refresh at a time.

Every call to a maker (poll, refresh, action, login) takes a token from the account's bucket AND the
maker's bucket in one atomic step, or none. With REDIS_URL this is a Lua script on Redis's own clock, shared
by every worker process; without it (the embedded default) the same arithmetic runs on rows of
`QuotaBucket` under a row lock. Buckets are set below the makers' published limits (see providers), so
that a fresh bucket of ours never meets a maker bucket that is still half empty.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from vehicles.providers.base import ProviderError

PREFIX = "evhub:vehicles:"


class QuotaExhausted(ProviderError):
    """Our own bucket is empty: the call was not made. Not the maker's error, so no cool-down follows."""

    def __init__(self, wait: float, scope: str):
        super().__init__(f"{scope} quota: no call left for {wait:.1f} s", permanent=False, retry_after=wait,
                         kind="quota")
        self.wait = wait


@dataclass(frozen=True)
class Quota:
    capacity: float
    per_second: float

    @classmethod
    def of(cls, value) -> "Quota | None":
        if value is None:
            return None
        if isinstance(value, Quota):
            return value
        capacity, per_second = value
        return cls(float(capacity), float(per_second))


def quotas_for(provider_cls) -> tuple[Quota | None, Quota | None]:
    """(per account, per maker): settings.VEHICLES_QUOTAS (or the JSON of EVHUB_VEHICLES_QUOTAS)
    {name: {"account": [capacity, per_second], "maker": [...]}} overrides the provider's defaults."""
    configured = getattr(settings, "VEHICLES_QUOTAS", None)
    if configured is None:
        configured = json.loads(os.environ.get("EVHUB_VEHICLES_QUOTAS") or "{}")
    override = configured.get(provider_cls.name, {})
    return (Quota.of(override.get("account", provider_cls.account_quota)),
            Quota.of(override.get("maker", provider_cls.maker_quota)))


# KEYS[1] the account's cool-down, KEYS[2..] buckets; ARGV: n, then capacity and rate per bucket.
# Answers {granted (1|0), seconds to wait or tokens left in the first bucket, as a string}.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = tonumber(ARGV[1])
local cool = redis.call('PTTL', KEYS[1])
if cool > 0 then return {0, tostring(cool / 1000), 'cooldown'} end
local wait, levels = 0, {}
for i = 2, #KEYS do
  local cap, rate = tonumber(ARGV[2 * i - 2]), tonumber(ARGV[2 * i - 1])
  local v = redis.call('HMGET', KEYS[i], 't', 'ts')
  local level = tonumber(v[1]) or cap
  local ts = tonumber(v[2]) or now
  level = math.min(cap, level + math.max(0, now - ts) * rate)
  levels[i] = level
  if level < n then
    local w = (n - level) / rate
    if w > wait then wait = w end
  end
end
if wait > 0 then return {0, tostring(wait), 'bucket'} end
for i = 2, #KEYS do
  local cap, rate = tonumber(ARGV[2 * i - 2]), tonumber(ARGV[2 * i - 1])
  redis.call('HSET', KEYS[i], 't', tostring(levels[i] - n), 'ts', tostring(now))
  redis.call('EXPIRE', KEYS[i], math.ceil(cap / rate) + 60)
end
return {1, tostring(levels[2] - n), 'ok'}
"""

# KEYS[1] a bucket; ARGV capacity, rate. Answers its level now, as a string.
_PEEK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local v = redis.call('HMGET', KEYS[1], 't', 'ts')
local cap, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local level = tonumber(v[1]) or cap
local ts = tonumber(v[2]) or now
return tostring(math.min(cap, level + math.max(0, now - ts) * rate))
"""


async def in_thread(fn, *args, **kwargs):
    """Run database work off the event loop, on a thread whose connection is closed after: the loop's
    threads are not Django's request cycle, and nothing else would ever close them."""
    from django.db import connections

    from django.db import OperationalError

    def run():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()
    for attempt in range(20):
        try:
            return await asyncio.to_thread(run)
        except OperationalError as exc:
            # SQLite's shared-cache tables answer "locked" at once instead of waiting out the busy timeout.
            if "locked" not in str(exc) or attempt == 19:
                raise
            await asyncio.sleep(0.02 * (attempt + 1))


def _keys(provider: str, account_id) -> tuple[str, str, str]:
    return (f"{PREFIX}cool:{account_id}", f"{PREFIX}bucket:acct:{account_id}", f"{PREFIX}bucket:maker:{provider}")


class Buckets:
    """The quota of one process's calls; use as `async with Buckets() as buckets` inside the event loop."""

    def __init__(self, redis_url: str | None = None):
        self.redis_url = settings.REDIS_URL if redis_url is None else redis_url
        self.redis = None
        self._take = self._peek = None

    async def __aenter__(self) -> "Buckets":
        if self.redis_url:
            import redis.asyncio as aioredis

            # Blocking: a loop with hundreds of polls in flight waits for one of these rather than failing.
            pool = aioredis.BlockingConnectionPool.from_url(self.redis_url, max_connections=32, timeout=30)
            self.redis = aioredis.Redis(connection_pool=pool)
            self._take = self.redis.register_script(_TAKE)
            self._peek = self.redis.register_script(_PEEK)
        return self

    async def __aexit__(self, *exc) -> None:
        if self.redis is not None:
            await self.redis.aclose(close_connection_pool=True)

    async def take(self, *, provider: str, account_id, account: Quota | None, maker: Quota | None,
                   n: float = 1, max_wait: float = 0.0) -> float | None:
        """Take n calls from both buckets, waiting up to `max_wait` seconds for them; the account's tokens left
        (None when it has no bucket). Raises QuotaExhausted with the wait when not granted."""
        deadline = time.monotonic() + max_wait
        while True:
            granted, value, why = await self._take_once(provider, account_id, account, maker, n)
            if granted:
                return value if account is not None else None
            left = deadline - time.monotonic()
            if why == "cooldown" or value > left:
                raise QuotaExhausted(value, "account cool-down" if why == "cooldown" else f"{provider}")
            await asyncio.sleep(value)

    async def _take_once(self, provider, account_id, account, maker, n):
        cool, acct_key, maker_key = _keys(provider, account_id)
        buckets = [(k, q) for k, q in ((acct_key, account), (maker_key, maker)) if q is not None]
        if self.redis is not None:
            if not buckets:
                ttl = await self.redis.pttl(cool)
                return (False, ttl / 1000, "cooldown") if ttl > 0 else (True, math.inf, "ok")
            args = [n]
            for _, q in buckets:
                args += [q.capacity, q.per_second]
            granted, value, why = await self._take(keys=[cool, *[k for k, _ in buckets]], args=args)
            return bool(granted), float(value), why.decode() if isinstance(why, bytes) else why
        return await in_thread(_db_take, cool, buckets, n)

    async def cooldown(self, *, provider: str, account_id, seconds: float) -> None:
        """The maker said stop: nothing more for this account until `seconds` have passed."""
        cool, acct_key, _ = _keys(provider, account_id)
        seconds = max(1.0, float(seconds))
        if self.redis is not None:
            # Never shortened by a later, shorter answer.
            current = await self.redis.pttl(cool)
            if current < seconds * 1000:
                await self.redis.set(cool, "1", px=int(seconds * 1000))
            return
        await in_thread(_db_cooldown, cool, seconds)

    async def level(self, *, provider: str, account_id, account: Quota | None) -> float | None:
        if account is None:
            return None
        _, acct_key, _ = _keys(provider, account_id)
        if self.redis is not None:
            return float(await self._peek(keys=[acct_key], args=[account.capacity, account.per_second]))
        return await in_thread(_db_level, acct_key, account)


# --- the embedded default: the same buckets on database rows ----------------------------------------


def _db_take(cool: str, buckets, n: float):
    from vehicles.models import QuotaBucket

    now = time.time()
    with transaction.atomic():
        rows = {r.key: r for r in QuotaBucket.objects.select_for_update().filter(key__in=[cool, *[k for k, _ in buckets]])}
        if cool in rows and rows[cool].stamp > now:
            return False, rows[cool].stamp - now, "cooldown"
        levels, wait = {}, 0.0
        for key, q in buckets:
            row = rows.get(key)
            level = q.capacity if row is None else min(q.capacity, row.tokens + max(0.0, now - row.stamp) * q.per_second)
            levels[key] = level
            if level < n:
                wait = max(wait, (n - level) / q.per_second)
        if wait > 0:
            return False, wait, "bucket"
        for key, q in buckets:
            QuotaBucket.objects.update_or_create(key=key, defaults={"tokens": levels[key] - n, "stamp": now})
    first = buckets[0][0] if buckets else None
    return True, (levels[first] - n) if first else math.inf, "ok"


def _db_cooldown(cool: str, seconds: float) -> None:
    from vehicles.models import QuotaBucket

    until = time.time() + seconds
    with transaction.atomic():
        row, _ = QuotaBucket.objects.select_for_update().get_or_create(key=cool, defaults={"tokens": 0, "stamp": 0})
        if row.stamp < until:
            row.stamp = until
            row.save(update_fields=["stamp"])


def _db_level(key: str, q: Quota) -> float:
    from vehicles.models import QuotaBucket

    row = QuotaBucket.objects.filter(key=key).first()
    if row is None:
        return q.capacity
    return min(q.capacity, row.tokens + max(0.0, time.time() - row.stamp) * q.per_second)


# --- one refresh at a time per account ----------------------------------------------------------------


class RefreshLock:
    """A lock across processes (Redis, or a database row without it) around one account's token refresh.

    Whoever gets it must re-read the account's tokens first: the holder before may have refreshed them."""

    def __init__(self, buckets: Buckets, account_id, *, timeout: float = 30.0):
        self.buckets, self.account_id, self.timeout = buckets, account_id, timeout
        self.key = f"{PREFIX}refresh:{account_id}"
        self.token = uuid.uuid4().hex
        self._lock = None

    async def __aenter__(self) -> "RefreshLock":
        deadline = time.monotonic() + self.timeout
        if self.buckets.redis is not None:
            self._lock = self.buckets.redis.lock(self.key, timeout=self.timeout, blocking_timeout=self.timeout)
            if not await self._lock.acquire():
                raise ProviderError("another token refresh of this account did not finish", permanent=False,
                                    kind="timeout", retry_after=self.timeout)
            return self
        while not await in_thread(_db_lock, self.key, self.token, self.timeout):
            if time.monotonic() > deadline:
                raise ProviderError("another token refresh of this account did not finish", permanent=False,
                                    kind="timeout", retry_after=self.timeout)
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc) -> None:
        if self._lock is not None:
            try:
                await self._lock.release()
            except Exception:  # expired meanwhile: the next holder has it, nothing of ours to release
                pass
            return
        await in_thread(_db_unlock, self.key, self.token)


def _db_lock(key: str, token: str, timeout: float) -> bool:
    from vehicles.models import QuotaBucket

    now = time.time()
    with transaction.atomic():
        row, created = QuotaBucket.objects.select_for_update().get_or_create(
            key=key, defaults={"tokens": 0, "stamp": now + timeout, "holder": token})
        if created:
            return True
        if row.stamp < now:
            row.stamp, row.holder = now + timeout, token
            row.save(update_fields=["stamp", "holder"])
            return True
    return False


def _db_unlock(key: str, token: str) -> None:
    from vehicles.models import QuotaBucket

    QuotaBucket.objects.filter(key=key, holder=token).delete()

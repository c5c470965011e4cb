"""Wrong guesses at a credential cost time: failures are counted in the shared cache (Redis in production)
per kind of credential and per client address, in fixed windows, and an address past its kind's limit is
answered 429 with `Retry-After` before its credential is even looked at (otherwise the right guess would
still get through, and guessing would go on at full speed).

Only the address that guessed waits: a caller elsewhere is never refused for someone else's failures.
The client address is `client_address`, the one place that reads `REMOTE_ADDR` and `X-Forwarded-For`.
Used by the portal (client keys, access tokens, passwords), the webhooks (token C), OCPI (peers' tokens)
and GraphQL; it imports nothing but Django, so every app above `locations` may use it.

Each process notes for EVHUB_THROTTLE_CLEAR_SECONDS (1 s) that an address was found under its limit, and
asks the cache again only after that or after a failure of that address in this process: an app's searches
(one per map move, each with its client key) no longer read Redis each, which cost a search ~0.2 ms of its
~2.2 ms (bench/bench_graphql.py, 1,000,000 locations). A guesser is checked against the cache again after
each wrong guess, so at most one guess per process passes a block that began elsewhere; an address blocked
for other processes' failures alone is refused here at most that long after.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

# The kinds of credential whose limits are settings (CREDENTIAL_FAILURE_LIMITS: kind -> (failures, seconds)).
CLIENT_KEY, ACCESS_TOKEN, TOKEN_C, OCPI_TOKEN, OLD_PASSWORD = (
    "client_key", "access_token", "token_c", "ocpi_token", "old_password")


# --- The client's address ------------------------------------------------------------------------------

def client_address(request) -> str | None:
    """The caller's IP address: REMOTE_ADDR, or behind EVHUB_TRUSTED_PROXY_HOPS reverse proxies the address
    the outermost of them saw, which is that many entries from the right of X-Forwarded-For (entries further
    left were written by the client, who may write anything). None when there is no usable address."""
    hops = settings.EVHUB_TRUSTED_PROXY_HOPS
    if hops > 0:
        forwarded = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [entry for entry in forwarded if entry]
        if forwarded:
            # Fewer entries than hops: the request passed fewer proxies than configured; the leftmost entry
            # is still one a trusted proxy wrote.
            address = _ip(forwarded[-hops] if len(forwarded) >= hops else forwarded[0])
            if address:
                return address
    return _ip(request.META.get("REMOTE_ADDR", ""))


@functools.lru_cache(maxsize=1024)
def _ip(text: str) -> str | None:
    """`text` as an IP address, without the port or brackets some proxies add; None if it is none."""
    text = text.strip()
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def address_scope(address: str | None) -> str:
    """What one client is, for counting: an IPv6 address by its /64, the block one subscriber usually has
    whole (counted one by one, an attacker there would have 2**64 fresh addresses)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


# --- Counting failures -----------------------------------------------------------------------------------

def _window(seconds: int) -> tuple[int, int]:
    """The current window's number and the seconds left in it."""
    now = int(time.time())
    return now // seconds, seconds - now % seconds


def _key(counter: str, scope: str, seconds: int) -> str:
    # Scopes are addresses, usernames, user ids: hashed, so that any text makes a valid cache key.
    digest = hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"fail:{counter}:{digest}:{_window(seconds)[0]}"


def over_limit(counter: str, scopes: tuple[str, ...], limit: int, seconds: int) -> bool:
    """Whether any of `scopes` has had `limit` failures in the current window of `seconds` (one read)."""
    keys = [_key(counter, scope, seconds) for scope in scopes]
    try:
        counts = cache.get_many(keys)
    except Exception:  # the cache is down: no throttle rather than no service
        logger.warning("throttle: cache unavailable, %s not checked", counter, exc_info=True)
        return False
    return any(int(counts.get(key) or 0) >= limit for key in keys)


def failure_count(counter: str, scope: str, seconds: int) -> int:
    """Add a failure for `scope` (atomic on Redis: INCR); the count so far in this window."""
    key = _key(counter, scope, seconds)
    # The key outlives its window a little, never longer: once expired, nobody asks for it again.
    timeout = _window(seconds)[1] + 5
    try:
        if cache.add(key, 1, timeout):
            return 1
        return cache.incr(key)
    except ValueError:  # expired between add and incr: this window is over anyway
        return 1
    except Exception:
        logger.warning("throttle: cache unavailable, %s not counted", counter, exc_info=True)
        return 0


def forget(counter: str, scope: str, seconds: int) -> None:
    try:
        cache.delete(_key(counter, scope, seconds))
    except Exception:
        logger.warning("throttle: cache unavailable, %s not reset", counter, exc_info=True)


def retry_after(seconds: int) -> int:
    return max(1, _window(seconds)[1])


# --- Guesses at a credential of a kind, per client address ----------------------------------------------

def limit_of(kind: str) -> tuple[int, int]:
    """(failures allowed, window in seconds) of `kind`."""
    return settings.CREDENTIAL_FAILURE_LIMITS[kind]


def guessing_blocked(kind: str, address: str | None, *more_scopes: str) -> int | None:
    """Seconds to wait (for `Retry-After`) if the client's `address`, or any of `more_scopes` (say, a
    user), has had its limit of wrong `kind` credentials in this window; None if it may try."""
    limit, seconds = limit_of(kind)
    scopes = (address_scope(address), *more_scopes)
    noted = (kind, scopes)
    now = time.monotonic()
    if _CLEAR.get(noted, 0.0) > now:
        return None
    if over_limit(kind, scopes, limit, seconds):
        return retry_after(seconds)
    keep = settings.EVHUB_THROTTLE_CLEAR_SECONDS
    if keep > 0:
        if len(_CLEAR) >= _CLEAR_MAX:
            _CLEAR.clear()
        _CLEAR[noted] = now + keep
    return None


# (kind, scopes) -> until when (time.monotonic) this process takes them to be under their limit.
_CLEAR: dict[tuple[str, tuple[str, ...]], float] = {}
_CLEAR_MAX = 1024


def forget_clear() -> None:
    """Forget every note of an address found under its limit (the next checks read the cache)."""
    _CLEAR.clear()


def guess_failed(kind: str, address: str | None, *more_scopes: str) -> None:
    """Count a wrong `kind` credential against the client's `address` (and `more_scopes`)."""
    _, seconds = limit_of(kind)
    failing = (address_scope(address), *more_scopes)
    for noted in [noted for noted in _CLEAR if noted[0] == kind and not set(noted[1]).isdisjoint(failing)]:
        _CLEAR.pop(noted, None)
    for scope in failing:
        failure_count(kind, scope, seconds)

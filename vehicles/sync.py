"""The sync engine: which cars are due, polling them many at a time within every quota, and what follows.

- `dispatch_due` (beat): claims due cars with SELECT ... FOR UPDATE SKIP LOCKED, pushes their next_poll_at
  past a lease and tags them with a claim id, then enqueues them in chunks on their maker's queue. A
  second dispatcher skips the locked rows; a task whose worker died leaves its cars due again when the
  lease ends (and its redelivered message finds the claim gone, so nothing happens twice).
- `vehicles_sync` (a task per chunk): one event loop polls the chunk's cars concurrently, bounded per
  maker; every maker call draws from the account's and the maker's bucket; an access token rejected is
  refreshed once per account (a lock across processes, re-reading the tokens after acquiring); the
  maker's quota error cools the whole account down; results are written in a few statements at the end.
- `action_run`: sends a remote action at most once, then follows it until it ends or times out.
- `account_connect`, `reading_fetch`: the same machinery for a driver's request (link an account,
  read a reading now).

The loop never touches the ORM directly: whatever must be written before the end (refreshed tokens, an
account marked for re-login) goes through `_db`, on a thread whose connection is closed after.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from vehicles import models as m
from vehicles import services
from vehicles.providers.base import (
    AccountContext, Provider, ProviderError, Snapshot, Tokens, VehicleRef, provider_class,
)
from vehicles.quota import Buckets, QuotaExhausted, RefreshLock, in_thread, quotas_for

log = logging.getLogger(__name__)


def _conf(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(f"EVHUB_{name}")
    return float(value) if value not in (None, "") else default


def LEASE() -> float:
    return _conf("VEHICLES_LEASE_SECONDS", 300)


def CHUNK() -> int:
    # Cars per task: enough accounts in one event loop to keep the maker's concurrency busy.
    return int(_conf("VEHICLES_CHUNK", 1000))


def MAX_QUOTA_WAIT() -> float:
    # How long a poll may wait for a token of its bucket before it is put off instead.
    return _conf("VEHICLES_QUOTA_WAIT_SECONDS", 5)


def BACKOFF_BASE() -> float:
    return _conf("VEHICLES_BACKOFF_SECONDS", 30)


BACKOFF_MAX = 3600.0
DEFAULT_COOLDOWN = 60.0
REFRESH_MARGIN = timedelta(seconds=60)


def _jitter(seconds: float, spread: float = 0.1) -> timedelta:
    return timedelta(seconds=seconds * random.uniform(1 - spread, 1 + spread))


def poll_interval(cls: type[Provider], snapshot: Snapshot) -> float:
    charging = snapshot.charging_state == m.ChargingState.CHARGING
    if charging:
        return _conf("VEHICLES_POLL_CHARGING_SECONDS", cls.poll_charging_seconds)
    return _conf("VEHICLES_POLL_IDLE_SECONDS", cls.poll_idle_seconds)


_db = in_thread


def _enqueue(task: str, args: list, provider: str, countdown: float | None = None) -> None:
    from celery import current_app

    current_app.send_task(task, args=args, queue=services.queue_for(provider), countdown=countdown)


# --- one account inside the loop --------------------------------------------------------------------


class AccountRun:
    """One maker account during one run: its tokens, its quota, its refresh, its marks."""

    def __init__(self, provider: Provider, buckets: Buckets, account: m.MakerAccount, sem: asyncio.Semaphore):
        self.provider, self.buckets, self.account, self.sem = provider, buckets, account, sem
        self.account_quota, self.maker_quota = quotas_for(type(provider))
        self.ctx = AccountContext(account_id=account.pk, external_id=account.external_id,
                                  tokens=services.maker_account_tokens(account=account),
                                  options=dict(account.options or {}), spend=self.spend)
        self.blocked: ProviderError | None = None
        if account.status == m.AccountStatus.NEEDS_RELOGIN:
            self.blocked = ProviderError("the account needs a new login", permanent=True, kind="auth")
        self.quota_level: float | None = None
        self.cooldown_until: datetime | None = None
        self.relogin_marked = False
        self._refreshing = asyncio.Lock()
        self.account_sem = asyncio.Semaphore(type(provider).account_concurrency)

    async def spend(self, n: float = 1) -> None:
        if self.blocked is not None:
            raise self.blocked
        self.quota_level = await self.buckets.take(
            provider=self.provider.name, account_id=self.account.pk, account=self.account_quota,
            maker=self.maker_quota, n=n, max_wait=MAX_QUOTA_WAIT())

    async def call(self, fn: Callable[[AccountContext], Awaitable[Any]]) -> Any:
        """A maker call with fresh tokens, refreshing once if the access token is rejected."""
        if self.blocked is not None:
            raise self.blocked
        await self.ensure_fresh()
        try:
            return await fn(self.ctx)
        except ProviderError as exc:
            if exc.kind == "auth" and not exc.permanent:
                await self.refresh(failed=self.ctx.tokens.access_token)
                try:
                    return await fn(self.ctx)
                except ProviderError as again:
                    await self.consider(again)
                    raise
            await self.consider(exc)
            raise

    async def consider(self, exc: ProviderError) -> None:
        if exc.kind == "quota" and not isinstance(exc, QuotaExhausted):
            await self.cool(exc.retry_after or DEFAULT_COOLDOWN)
        elif exc.kind == "auth" and exc.permanent:
            await self.relogin(exc)

    async def ensure_fresh(self) -> None:
        expires = self.ctx.tokens.expires_at
        if expires is not None and expires - REFRESH_MARGIN <= timezone.now():
            await self.refresh(failed=self.ctx.tokens.access_token)

    async def refresh(self, *, failed: str) -> None:
        async with self._refreshing:  # the account's other cars in this loop wait for this one refresh
            if self.ctx.tokens.access_token != failed:
                return
            if self.blocked is not None:
                raise self.blocked
            async with RefreshLock(self.buckets, self.account.pk):
                stored = await _db(_tokens_load, self.account.pk)
                fresh_enough = stored.expires_at is None or stored.expires_at - REFRESH_MARGIN > timezone.now()
                if stored.access_token and stored.access_token != failed and fresh_enough:
                    self.ctx.tokens = stored  # another process refreshed while we waited
                    return
                self.ctx.tokens = stored if stored.refresh_token else self.ctx.tokens
                try:
                    tokens = await self.provider.refresh(self.ctx)
                except QuotaExhausted:
                    # No call left to refresh with now: remember the token is dead, so that the next run
                    # refreshes first instead of spending a call on it again.
                    await _db(_tokens_expired, self.account.pk, failed)
                    raise
                except ProviderError as exc:
                    await self.consider(exc)
                    raise
                if not tokens.refresh_token:
                    tokens.refresh_token = self.ctx.tokens.refresh_token
                tokens.extra = {**self.ctx.tokens.extra, **tokens.extra}
                # Saved inside the lock: the next holder reads these instead of refreshing again.
                await _db(_tokens_save, self.account.pk, tokens)
                self.ctx.tokens = tokens

    async def relogin(self, exc: ProviderError) -> None:
        self.blocked = ProviderError(f"the account needs a new login: {exc.message}", permanent=True, kind="auth")
        if not self.relogin_marked:
            self.relogin_marked = True
            await _db(_account_relogin, self.account.pk, exc.message)

    async def cool(self, seconds: float) -> None:
        await self.buckets.cooldown(provider=self.provider.name, account_id=self.account.pk, seconds=seconds)
        until = timezone.now() + timedelta(seconds=seconds)
        self.cooldown_until = max(self.cooldown_until or until, until)
        self.blocked = ProviderError("the maker's quota: the account cools down", permanent=False,
                                     retry_after=seconds, kind="quota")


def _tokens_load(account_id: int) -> Tokens:
    return services.maker_account_tokens(account=m.MakerAccount.objects.get(pk=account_id))


def _tokens_expired(account_id: int, access_token: str) -> None:
    with transaction.atomic():
        account = m.MakerAccount.objects.select_for_update().get(pk=account_id)
        tokens = services.maker_account_tokens(account=account)
        if tokens.access_token == access_token:
            tokens.expires_at = timezone.now() - REFRESH_MARGIN
            services.maker_account_tokens_save(account=account, tokens=tokens)


def _tokens_save(account_id: int, tokens: Tokens) -> None:
    services.maker_account_tokens_save(account=m.MakerAccount.objects.get(pk=account_id), tokens=tokens)


def _account_relogin(account_id: int, message: str) -> None:
    account = m.MakerAccount.objects.get(pk=account_id)
    services.maker_account_status_set(account=account, status=m.AccountStatus.NEEDS_RELOGIN,
                                      error=f"the maker refused the stored login: {message}")


# --- dispatch -------------------------------------------------------------------------------------------


def vehicles_claim(*, provider: str, now: datetime | None = None, limit: int | None = None) -> tuple[list[int], str]:
    """Claim up to `limit` due cars of a maker (rows locked by another dispatcher are skipped): their ids
    and the claim; call inside a transaction, enqueue after commit."""
    now = now or timezone.now()
    due = (m.Vehicle.objects.select_for_update(skip_locked=True, of=("self",))
           .filter(next_poll_at__lte=now, account__provider=provider)
           .exclude(poll_status=m.PollStatus.PAUSED)
           .exclude(account__status=m.AccountStatus.NEEDS_RELOGIN)
           .filter(Q(account__cooldown_until__isnull=True) | Q(account__cooldown_until__lte=now))
           .order_by("next_poll_at").values_list("id", flat=True)[:limit or CHUNK()])
    ids = list(due)
    claim = uuid.uuid4().hex
    if ids:
        m.Vehicle.objects.filter(id__in=ids).update(claim_id=claim, next_poll_at=now + timedelta(seconds=LEASE()))
    return ids, claim


def dispatch_due(*, now: datetime | None = None, limit: int = 100_000) -> int:
    """Claim the cars that are due and enqueue them, a chunk per task on their maker's queue; how many."""
    now = now or timezone.now()
    total = 0
    for provider in m.Provider.values:
        while total < limit:
            with transaction.atomic():
                ids, claim = vehicles_claim(provider=provider, now=now)
                if not ids:
                    break
                transaction.on_commit(lambda ids=ids, claim=claim, provider=provider: _enqueue(
                    "vehicles.sync_vehicles", [ids, claim], provider))
            total += len(ids)
    return total


def actions_expire(*, now: datetime | None = None) -> int:
    """PENDING actions past their deadline: the car never answered."""
    now = now or timezone.now()
    count = 0
    for action in m.RemoteAction.objects.filter(status=m.ActionStatus.PENDING, deadline_at__lt=now)[:1000]:
        services.vehicle_action_advance(action=action, status=m.ActionStatus.TIMEOUT,
                                        error="the car did not answer in time")
        count += 1
    return count


# --- polling ----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    vehicle: m.Vehicle
    snapshot: Snapshot | None = None
    error: ProviderError | None = None


@dataclass
class SyncReport:
    polled: int = 0
    ok: int = 0
    samples: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def vehicles_sync(*, vehicle_ids: list[int], claim: str) -> SyncReport:
    """Poll the cars of one claim (the others were claimed again since, or are done): idempotent."""
    vehicles = list(m.Vehicle.objects.filter(id__in=vehicle_ids, claim_id=claim).select_related("account"))
    report = SyncReport()
    by_provider: dict[str, list[m.Vehicle]] = {}
    for vehicle in vehicles:
        by_provider.setdefault(vehicle.account.provider, []).append(vehicle)
    for provider, group in by_provider.items():
        cls = provider_class(provider)
        outcomes, runs = asyncio.run(_poll(cls, group))
        _write(cls, outcomes, runs, claim, report)
    return report


async def _poll(cls: type[Provider], vehicles: list[m.Vehicle]) -> tuple[list[Outcome], list[AccountRun]]:
    async with Buckets() as buckets, cls() as provider:
        sem = asyncio.Semaphore(cls.concurrency)
        runs: dict[int, AccountRun] = {}
        for vehicle in vehicles:
            if vehicle.account_id not in runs:
                runs[vehicle.account_id] = AccountRun(provider, buckets, vehicle.account, sem)

        # The run ends well inside the claim's lease, whatever a maker does: a car not polled by then is
        # put off (a timeout), never polled by this run after another has claimed it.
        deadline = asyncio.get_running_loop().time() + LEASE() * 0.8

        async def one(vehicle: m.Vehicle) -> Outcome:
            run = runs[vehicle.account_id]
            ref = VehicleRef(vin=vehicle.vin, maker_id=vehicle.maker_id, capabilities=list(vehicle.capabilities))
            try:
                async with asyncio.timeout_at(deadline), run.account_sem, sem:
                    return Outcome(vehicle, snapshot=await run.call(lambda ctx: provider.snapshot(ctx, ref)))
            except TimeoutError:
                return Outcome(vehicle, error=ProviderError("the run's time ran out before this car's turn",
                                                            permanent=False, kind="timeout"))
            except ProviderError as exc:
                return Outcome(vehicle, error=exc)
            except Exception as exc:  # a provider's bug must not lose the other cars' results
                log.exception("poll of %s failed", vehicle.vin)
                return Outcome(vehicle, error=ProviderError(f"{type(exc).__name__}: {exc}", permanent=False,
                                                            kind="server"))

        outcomes = await asyncio.gather(*(one(v) for v in vehicles))
        for run in runs.values():
            try:
                run.quota_level = await buckets.level(provider=cls.name, account_id=run.account.pk,
                                                      account=run.account_quota)
            except Exception:  # visibility only
                log.warning("quota level of account %s unknown", run.account.pk, exc_info=True)
        return list(outcomes), list(runs.values())


def _write(cls: type[Provider], outcomes: list[Outcome], runs: list[AccountRun], claim: str,
           report: SyncReport) -> None:
    now = timezone.now()
    with transaction.atomic():
        # Only cars still ours: a car claimed again after our lease ran out is the new claim's to write.
        still = set(m.Vehicle.objects.select_for_update().filter(
            id__in=[o.vehicle.pk for o in outcomes], claim_id=claim).values_list("id", flat=True))
        outcomes = [o for o in outcomes if o.vehicle.pk in still]
        results = services.vehicle_samples_upsert(
            items=[(o.vehicle.pk, o.snapshot) for o in outcomes if o.snapshot], fetched_at=now)
        report.samples += sum(r.created for r in results)
        runs_by_account = {r.account.pk: r for r in runs}
        for o in outcomes:
            report.polled += 1
            _vehicle_after(cls, o, runs_by_account[o.vehicle.account_id], now, report)
        m.Vehicle.objects.bulk_update(
            [o.vehicle for o in outcomes],
            ["next_poll_at", "poll_status", "poll_failures", "last_polled_at", "last_success_at", "last_error",
             "claim_id", "unsupported"], batch_size=500)
        _accounts_after(cls, outcomes, runs, now)


def _vehicle_after(cls, o: Outcome, run: AccountRun, now: datetime, report: SyncReport) -> None:
    _vehicle_outcome(cls, o, run, now, report)
    if run.relogin_marked:
        # The account was marked for re-login during this run: every car of it waits for the driver,
        # whatever its own call met before that (a 500, a success).
        o.vehicle.poll_status, o.vehicle.next_poll_at = m.PollStatus.PAUSED, None


def _vehicle_outcome(cls, o: Outcome, run: AccountRun, now: datetime, report: SyncReport) -> None:
    v, exc = o.vehicle, o.error
    v.claim_id = ""
    v.last_polled_at = now
    if exc is None:
        report.ok += 1
        v.poll_status, v.poll_failures, v.last_error = m.PollStatus.OK, 0, ""
        v.last_success_at = now
        v.next_poll_at = now + _jitter(poll_interval(cls, o.snapshot))
        return
    report.errors[exc.kind] = report.errors.get(exc.kind, 0) + 1
    v.last_error = f"{exc.kind}: {exc.message}"[:500]
    if isinstance(exc, QuotaExhausted):
        # Our own bucket: not the car's failure, just later.
        v.next_poll_at = now + _jitter(max(exc.wait, 1.0), 0.2)
        v.last_error = ""
    elif exc.kind == "auth" and exc.permanent:
        v.poll_status, v.next_poll_at = m.PollStatus.PAUSED, None
    elif exc.kind in ("gone", "unsupported") and exc.permanent:
        # Asking again cannot help: the car waits for the driver (re-link) or a new discovery.
        v.poll_status, v.next_poll_at = m.PollStatus.PAUSED, None
        if exc.kind == "unsupported":
            v.unsupported = {**(v.unsupported or {}), exc.capability or "battery-status": exc.message[:200]}
    else:
        v.poll_failures = min(v.poll_failures + 1, 10_000)
        v.poll_status = m.PollStatus.BACKOFF
        wait = min(BACKOFF_MAX, BACKOFF_BASE() * 2 ** min(v.poll_failures - 1, 16))
        if exc.retry_after:
            wait = max(wait if exc.kind != "quota" else 0.0, exc.retry_after)
        v.next_poll_at = now + _jitter(wait, 0.1) + timedelta(seconds=0.5)
        if run.cooldown_until:
            # Never before the account's cool-down ends; spread after it, so its cars do not return as one.
            v.next_poll_at = max(v.next_poll_at, run.cooldown_until + timedelta(seconds=random.uniform(0.5, 5)))


def _accounts_after(cls, outcomes: list[Outcome], runs: list[AccountRun], now: datetime) -> None:
    by_account: dict[int, list[Outcome]] = {}
    for o in outcomes:
        by_account.setdefault(o.vehicle.account_id, []).append(o)
    rows = {a.pk: a for a in m.MakerAccount.objects.select_for_update().filter(pk__in=[r.account.pk for r in runs])}
    changed = []
    for run in runs:
        account = rows.get(run.account.pk)
        if account is None:
            continue
        mine = by_account.get(account.pk, [])
        if run.quota_level is not None and run.account_quota is not None:
            q = run.account_quota
            account.quota_tokens = round(max(0.0, run.quota_level), 3)
            account.quota_refill_at = now + timedelta(seconds=(q.capacity - max(0.0, run.quota_level)) / q.per_second)
        if run.cooldown_until:
            account.cooldown_until = max(account.cooldown_until or run.cooldown_until, run.cooldown_until)
        failures = [o.error for o in mine if o.error is not None and not o.error.permanent
                    and not isinstance(o.error, QuotaExhausted)]
        if account.status != m.AccountStatus.NEEDS_RELOGIN:
            if any(o.error is None for o in mine):
                account.status, account.last_error = m.AccountStatus.ACTIVE, ""
            elif mine and len(failures) == len(mine) and max(o.vehicle.poll_failures for o in mine) >= 3:
                account.status = m.AccountStatus.FAILING
                account.last_error = f"{failures[0].kind}: {failures[0].message}"[:500]
                account.last_error_at = now
        changed.append(account)
    m.MakerAccount.objects.bulk_update(changed, ["quota_tokens", "quota_refill_at", "cooldown_until", "status",
                                                 "last_error", "last_error_at"])


# --- one account on a driver's request ------------------------------------------------------------


def _account_run(account: m.MakerAccount, work: Callable[[AccountRun], Awaitable[Any]]) -> Any:
    cls = provider_class(account.provider)

    async def main():
        async with Buckets() as buckets, cls() as provider:
            run = AccountRun(provider, buckets, account, asyncio.Semaphore(cls.concurrency))
            try:
                return await work(run)
            finally:
                if run.cooldown_until:
                    await _db(m.MakerAccount.objects.filter(pk=account.pk).update, cooldown_until=run.cooldown_until)
    return asyncio.run(main())


def _as_vehicle_error(exc: ProviderError) -> services.VehicleError:
    if exc.kind == "unsupported":
        return services.VehicleError(exc.message, code="unsupported", capability=exc.capability)
    if exc.kind == "auth" and exc.permanent:
        return services.VehicleError("the car maker account needs a new login", code="relogin")
    if exc.kind == "gone":
        return services.VehicleError(f"the car maker no longer knows this car or account: {exc.message}",
                                     code="not_found")
    return services.VehicleError(f"the car maker cannot answer now ({exc.kind}): {exc.message}", code="unavailable",
                                 retry_after=exc.retry_after or 30.0)


def account_connect(*, driver, provider: str, credentials: dict[str, Any],
                    options: dict[str, Any] | None = None) -> m.MakerAccount:
    """Log in at the maker (never storing the password), link the account, discover its cars."""
    cls = provider_class(provider)
    options = dict(options or {})

    async def main():
        async with Buckets() as buckets, cls() as p:
            account_q, maker_q = quotas_for(cls)
            # The account has no id of ours yet: the login draws from the maker's bucket only.
            ctx = AccountContext(account_id=None, external_id="", tokens=Tokens(), options=options,
                                 spend=lambda n=1: buckets.take(provider=provider, account_id="login", account=None,
                                                                maker=maker_q, n=n, max_wait=MAX_QUOTA_WAIT()))
            return await p.login(ctx, credentials)
    try:
        result = asyncio.run(main())
    except ProviderError as exc:
        if exc.kind == "auth":
            raise services.VehicleError(f"the car maker refused the login: {exc.message}", code="forbidden") from None
        raise _as_vehicle_error(exc) from None
    account = services.maker_account_link(driver=driver, provider=provider, external_id=result.external_id,
                                          tokens=result.tokens, label=result.label,
                                          options={**options, **result.options})
    account_discover(account=account)
    return account


def account_discover(*, account: m.MakerAccount) -> list[m.Vehicle]:
    """The account's cars as the maker lists them now, created or updated."""
    try:
        found = _account_run(account, lambda run: run.call(lambda ctx: run.provider.discover(ctx)))
    except ProviderError as exc:
        raise _as_vehicle_error(exc) from None
    return [services.vehicle_upsert(account=account, discovered=d) for d in found]


def reading_fetch(*, vehicle: m.Vehicle, reading: str) -> dict:
    """A reading asked now (within the account's quota), kept as the car's latest of its kind."""
    from vehicles.providers.base import READINGS

    if reading not in READINGS:
        raise services.VehicleError(f"unknown reading {reading!r}", code="not_found")
    if not vehicle.supports(reading):
        raise services.VehicleError(f"this car does not support {reading}", code="unsupported", capability=reading)
    ref = VehicleRef(vin=vehicle.vin, maker_id=vehicle.maker_id, capabilities=list(vehicle.capabilities))
    try:
        data = _account_run(vehicle.account, lambda run: run.call(lambda ctx: run.provider.read(ctx, ref, reading)))
    except ProviderError as exc:
        if exc.kind == "unsupported" and exc.permanent:
            services.vehicle_capability_unsupported(vehicle=vehicle, capability=reading, reason=exc.message)
        raise _as_vehicle_error(exc) from None
    now = timezone.now()
    with transaction.atomic():
        state = m.VehicleState.objects.select_for_update().filter(vehicle=vehicle).first()
        if state is not None:
            state.readings = {**(state.readings or {}),
                              reading: {"data": data, "fetched_at": now.strftime("%Y-%m-%dT%H:%M:%SZ")}}
            state.save(update_fields=["readings"])
    return data


# --- remote actions ----------------------------------------------------------------------------------------


def ACTION_CHECK_SECONDS() -> float:
    return _conf("VEHICLES_ACTION_CHECK_SECONDS", 5)


def action_run(*, action_id: str) -> m.RemoteAction | None:
    """Send a PENDING action once, then follow it until it ends; re-enqueues itself while it waits."""
    action = m.RemoteAction.objects.select_related("vehicle__account").filter(pk=action_id).first()
    if action is None or action.status != m.ActionStatus.PENDING:
        return action
    vehicle, account = action.vehicle, action.vehicle.account
    now = timezone.now()
    if now >= action.deadline_at:
        return services.vehicle_action_advance(action=action, status=m.ActionStatus.TIMEOUT,
                                               error="the car did not answer in time")
    ref = VehicleRef(vin=vehicle.vin, maker_id=vehicle.maker_id, capabilities=list(vehicle.capabilities))
    if action.sent_at is None:
        # Marked sent before it is sent: a task run twice never sends the car the same command twice.
        if not m.RemoteAction.objects.filter(pk=action.pk, sent_at__isnull=True).update(sent_at=now):
            return action
        try:
            result = _account_run(account, lambda run: run.call(
                lambda ctx: run.provider.act(ctx, ref, action.action, action.params)))
        except ProviderError as exc:
            return _action_failed(action, account, exc, sent=exc.kind == "timeout")
    else:
        try:
            result = _account_run(account, lambda run: run.call(
                lambda ctx: run.provider.action_status(ctx, ref, action.action, action.external_id)))
        except ProviderError as exc:
            if exc.permanent:
                return services.vehicle_action_advance(action=action, status=m.ActionStatus.FAILED, error=exc.message)
            _enqueue("vehicles.action_run", [str(action.pk)], account.provider,
                     countdown=max(ACTION_CHECK_SECONDS(), exc.retry_after or 0))
            return action
    if result.status == m.ActionStatus.PENDING:
        action = services.vehicle_action_advance(action=action, status=m.ActionStatus.PENDING,
                                                 external_id=result.external_id or action.external_id)
        _enqueue("vehicles.action_run", [str(action.pk)], account.provider, countdown=ACTION_CHECK_SECONDS())
        return action
    action = services.vehicle_action_advance(action=action, status=result.status, error=result.error,
                                             external_id=result.external_id or None)
    if action.status == m.ActionStatus.COMPLETED:
        _action_effects(action)
    return action


def _action_failed(action: m.RemoteAction, account: m.MakerAccount, exc: ProviderError, *, sent: bool):
    if exc.permanent:
        if exc.kind == "unsupported":
            services.vehicle_capability_unsupported(vehicle=action.vehicle, capability=action.action,
                                                    reason=exc.message)
        return services.vehicle_action_advance(action=action, status=m.ActionStatus.FAILED, error=exc.message)
    if sent:
        # No answer: the maker may have taken it. Sending again could act twice; the deadline decides.
        return services.vehicle_action_advance(action=action, status=m.ActionStatus.FAILED,
                                               error=f"the maker did not answer: {exc.message}")
    # Refused before it was taken (quota, car asleep, 5xx): free to send again after the wait.
    m.RemoteAction.objects.filter(pk=action.pk).update(sent_at=None)
    _enqueue("vehicles.action_run", [str(action.pk)], account.provider,
             countdown=max(ACTION_CHECK_SECONDS(), exc.retry_after or 0))
    return action


def _action_effects(action: m.RemoteAction) -> None:
    now = timezone.now()
    if action.action == "charge-schedule":
        m.ChargingSchedule.objects.filter(vehicle_id=action.vehicle_id).update(deployed_at=now)
    if action.action.startswith("refresh-") or action.action == "charging-start":
        # What changed is worth a poll now rather than at the next beat.
        m.Vehicle.objects.filter(pk=action.vehicle_id, claim_id="").exclude(
            poll_status=m.PollStatus.PAUSED).update(next_poll_at=now)

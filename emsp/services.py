import time

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from emsp.models import PortalClient
from locations.tokens import token_digest, token_matches, token_new


@transaction.atomic
def portal_client_create(*, name: str) -> tuple[PortalClient, str]:
    """Issue a new client key; the key itself is returned once and only its digest is stored."""
    key = token_new()
    client = PortalClient.objects.create(name=name, key_digest=token_digest(key))
    return client, key


def portal_client_revoke(*, client: PortalClient) -> PortalClient:
    client.revoked_at = timezone.now()
    client.save(update_fields=["revoked_at"])
    return client


# A front end sends its key with every search, and looking it up was a query per request (~0.3 ms of a
# 2 ms search). Each process keeps the keys it has accepted, by digest, for CLIENT_KEY_CACHE_SECONDS
# (EVHUB_CLIENT_KEY_CACHE_SECONDS, default 10; 0: none): a revocation (or any save or delete of a client)
# takes effect at once in the process that makes it, and within that many seconds in the others. Only
# accepted keys are kept: a wrong key is looked up (and throttled) every time.
_ACCEPTED: dict[str, tuple[float, PortalClient]] = {}
_ACCEPTED_MAX = 1_000


def portal_client_authenticate(*, key: str) -> PortalClient | None:
    digest = token_digest(key)
    seconds = settings.CLIENT_KEY_CACHE_SECONDS
    if seconds > 0:
        found = _ACCEPTED.get(digest)
        if found is not None and found[0] > time.monotonic():
            return found[1]
    client = PortalClient.objects.filter(key_digest=digest, revoked_at__isnull=True).first()
    if client is None or not token_matches(key, client.key_digest):
        return None
    if seconds > 0:
        _keep([client], seconds)
    return client


def _keep(clients: list[PortalClient], seconds: int) -> None:
    """Keep these clients as accepted for `seconds` from now (by their stored digests), the whole table
    emptied first when they would not fit in it."""
    if len(_ACCEPTED) + len(clients) > _ACCEPTED_MAX:
        _ACCEPTED.clear()
    expires = time.monotonic() + seconds
    for client in clients:
        _ACCEPTED[client.key_digest] = (expires, client)


def portal_clients_accepted_preload() -> int:
    """Keep every active client (the newest _ACCEPTED_MAX) as accepted from now, as if each had just sent its
    key; how many. Read-only: a gunicorn worker calls it before its first request (config.warmup), which
    otherwise paid the key's lookup, ~0.8 ms of its CPU (100,000 locations, in-process), when it comes
    within CLIENT_KEY_CACHE_SECONDS of the worker's start, as it does when a busy server restarts. The
    same as the lookup would find, kept no longer: the digests are the stored ones."""
    seconds = settings.CLIENT_KEY_CACHE_SECONDS
    if seconds <= 0:
        return 0
    clients = list(PortalClient.objects.filter(revoked_at__isnull=True).order_by("-id")[:_ACCEPTED_MAX])
    _keep(clients, seconds)
    return len(clients)


def _forget_accepted(**_kwargs) -> None:
    _ACCEPTED.clear()


post_save.connect(_forget_accepted, sender=PortalClient, dispatch_uid="emsp.portal_client_accepted_save")
post_delete.connect(_forget_accepted, sender=PortalClient, dispatch_uid="emsp.portal_client_accepted_delete")

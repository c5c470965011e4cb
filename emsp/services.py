from django.db import transaction
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


def portal_client_authenticate(*, key: str) -> PortalClient | None:
    client = PortalClient.objects.filter(key_digest=token_digest(key), revoked_at__isnull=True).first()
    if client is None or not token_matches(key, client.key_digest):
        return None
    return client

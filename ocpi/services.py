from django.db import transaction

from locations.tokens import token_digest, token_new
from ocpi.models import Peer


@transaction.atomic
def peer_invite(*, name: str) -> tuple[Peer, str]:
    """Issue a token A for a platform that will register with us; returned once, stored as a digest."""
    token_a = token_new()
    peer = Peer.objects.create(name=name, token_a_digest=token_digest(token_a))
    return peer, token_a

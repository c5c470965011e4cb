"""`python manage.py ocpi_invite NAME`: a token A for a platform that will register with us.

Prints the token once (only its digest is stored) and our versions URL; send both to the platform in a
secure way (credentials.asciidoc: registration).
"""

from django.core.management.base import BaseCommand

from ocpi.handshake import our_versions_url
from ocpi.services import peer_invite


class Command(BaseCommand):
    help = "Invite an OCPI platform: issue a token A and print it with our versions URL."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the platform's name, as the admin will list it")

    def handle(self, *args, name: str, **options):
        peer, token_a = peer_invite(name=name)
        self.stdout.write(f"Peer {peer.pk} ({peer.name}) invited. Give the platform, securely:\n"
                          f"  versions URL: {our_versions_url()}\n"
                          f"  token A:      {token_a}\n"
                          "The token is shown only now; it works for versions and credentials until the "
                          "platform registers.")

"""`python manage.py ocpi_invite NAME [--role CPO|EMSP]`: a token A for a platform that will register with us.

Prints the token once (only its digest is stored) and our versions URL (the one the server serves:
config/public_url.py); send both to the platform in a secure way (credentials.asciidoc: registration).

`--role` matters only if the platform speaks OCPI 2.1.1, whose credentials carry no role: it is the role
the platform plays with us there (our 2.1.1 version details offer a CPO our Locations receiver, an eMSP
our sender). CPO by default, as Peer.v211_role: the 2.1.1 platforms a hub connects are mostly CPOs
bringing their locations, and a peer made anywhere else (the admin, ocpi_register) has the same default.
"""

from django.core.management.base import BaseCommand

from ocpi.handshake import our_versions_url
from ocpi.services import peer_invite


class Command(BaseCommand):
    help = "Invite an OCPI platform: issue a token A and print it with our versions URL."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the platform's name, as the admin will list it")
        parser.add_argument("--role", choices=["CPO", "EMSP"], default="CPO", type=str.upper,
                            help="the role it plays should it speak OCPI 2.1.1 (default CPO)")

    def handle(self, *args, name: str, role: str, **options):
        peer, token_a = peer_invite(name=name, v211_role=role)
        self.stdout.write(f"Peer {peer.pk} ({peer.name}) invited (OCPI 2.1.1 role {peer.v211_role}). "
                          "Give the platform, securely:\n"
                          f"  versions URL: {our_versions_url()}\n"
                          f"  token A:      {token_a}\n"
                          "The token is shown only now; it works for versions and credentials until the "
                          "platform registers.")

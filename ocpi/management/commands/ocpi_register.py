"""`python manage.py ocpi_register VERSIONS_URL TOKEN_A [--name NAME] [--role CPO|EMSP]`: register with an OCPI
platform. `--role`: the role it plays should the version be 2.1.1 (see ocpi_invite; CPO by default).

We are the Sender of the credentials exchange: read its versions with its token A, choose the highest
version both speak, POST our credentials with a new token, store the token it answers. Prints the
version and the platform's parties.
"""

from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from ocpi.services import peer_register
from ocpi.transport import OcpiError


class Command(BaseCommand):
    help = "Register with an OCPI platform from its versions URL and the token A it gave us."

    def add_arguments(self, parser):
        parser.add_argument("versions_url")
        parser.add_argument("token_a", help="the token A the platform gave us (one that begins with '-' goes "
                                             "after '--': ocpi_register URL -- -TOKEN)")
        parser.add_argument("--name", default="", help="the platform's name (default: the URL's host)")
        parser.add_argument("--role", choices=["CPO", "EMSP"], default="CPO", type=str.upper,
                            help="the role it plays should the version be OCPI 2.1.1 (default CPO)")

    def handle(self, *args, versions_url: str, token_a: str, name: str, role: str, **options):
        try:
            peer = peer_register(versions_url=versions_url, token_a=token_a,
                                 name=name or urlsplit(versions_url).hostname or versions_url, v211_role=role)
        except OcpiError as error:
            raise CommandError(f"Registration failed ({error.status_code}): {error.message}") from None
        self.stdout.write(self.style.SUCCESS(f"Registered with peer {peer.pk} ({peer.name}), OCPI {peer.version}."))
        for party in peer.parties.select_related("cpo").order_by("role", "country_code", "party_id"):
            tenant = f" -> catalogue {party.cpo}" if party.cpo_id else ""
            self.stdout.write(f"  {party.role:5} {party.country_code}*{party.party_id}{tenant}")

"""`python manage.py ocpi_peers`: the OCPI platforms we know, their state, version, parties and endpoints."""

from django.core.management.base import BaseCommand

from ocpi.models import Peer


class Command(BaseCommand):
    help = "List the OCPI peers: state, version, parties and endpoints (never tokens)."

    def handle(self, *args, **options):
        peers = Peer.objects.prefetch_related("parties").order_by("pk")
        if not peers:
            self.stdout.write("No OCPI peers yet (ocpi_invite, ocpi_register).")
        for peer in peers:
            self.stdout.write(f"{peer.pk} {peer.name}: {peer.state} {peer.version or '-'} {peer.versions_url or ''}")
            parties = ", ".join(f"{p.role} {p.country_code}*{p.party_id}" for p in peer.parties.all())
            self.stdout.write(f"  parties:   {parties or '-'}")
            for identifier, urls in sorted(peer.endpoints.items()):
                for role, url in sorted(urls.items()):
                    self.stdout.write(f"  {identifier} {role}: {url}")

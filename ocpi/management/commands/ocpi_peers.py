"""`python manage.py ocpi_peers`: the OCPI platforms we know, their state, version, parties and endpoints, and
their outbox: how many entries wait, and the ones parked (refused for good by the peer) with the reason."""

from django.core.management.base import BaseCommand
from django.db.models import Count, Q

from ocpi.models import OutboxEntry, Peer

PARKED_SHOWN = 20


class Command(BaseCommand):
    help = ("List the OCPI peers: state, version, parties and endpoints (never tokens), pending outbox entries "
            "and parked ones with their reason.")

    def handle(self, *args, **options):
        peers = Peer.objects.prefetch_related("parties").order_by("pk").annotate(
            pending=Count("outbox", filter=Q(outbox__delivered_at__isnull=True, outbox__parked_at__isnull=True)),
            parked=Count("outbox", filter=Q(outbox__delivered_at__isnull=True, outbox__parked_at__isnull=False)))
        if not peers:
            self.stdout.write("No OCPI peers yet (ocpi_invite, ocpi_register).")
        for peer in peers:
            self.stdout.write(f"{peer.pk} {peer.name}: {peer.state} {peer.version or '-'} {peer.versions_url or ''}")
            parties = ", ".join(f"{p.role} {p.country_code}*{p.party_id}" for p in peer.parties.all())
            self.stdout.write(f"  parties:   {parties or '-'}")
            for identifier, urls in sorted(peer.endpoints.items()):
                for role, url in sorted(urls.items()):
                    self.stdout.write(f"  {identifier} {role}: {url}")
            self.stdout.write(f"  outbox:    {peer.pending} pending, {peer.parked} parked")
            self._parked(peer)

    def _parked(self, peer: Peer) -> None:
        if not peer.parked:
            return
        entries = OutboxEntry.objects.filter(peer=peer, delivered_at__isnull=True, parked_at__isnull=False).order_by(
            "-parked_at", "-id").values_list("module", "country_code", "party_id", "object_id", "parked_at",
                                             "last_error")[:PARKED_SHOWN]
        for module, country_code, party_id, object_id, parked_at, last_error in entries:
            self.stdout.write(f"  parked {module} {country_code}*{party_id} {object_id} "
                              f"({parked_at:%Y-%m-%d %H:%M:%S}Z): {last_error}")
        if peer.parked > PARKED_SHOWN:
            self.stdout.write(f"  ... and {peer.parked - PARKED_SHOWN} more parked (admin: outbox entries)")

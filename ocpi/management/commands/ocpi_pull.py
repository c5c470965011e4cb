"""`python manage.py ocpi_pull PEER [--full]`: pull a connected CPO's locations now, with a progress bar.

PEER is the peer's id or name. Without --full, only what changed since the last complete pull is asked
(date_from); the first pull of a peer is always full. Prints the summary; exits 1 when incomplete.
"""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ocpi.models import Peer
from ocpi.pull import PullError, peer_pull


class Command(BaseCommand):
    help = "Pull a connected OCPI peer's locations (GET of its locations sender, every page)."

    def add_arguments(self, parser):
        parser.add_argument("peer", help="the peer's id or name")
        parser.add_argument("--full", action="store_true", help="everything, not only what changed since the last pull")

    def handle(self, *args, peer: str, full: bool, **options):
        found = Peer.objects.filter(pk=int(peer)).first() if peer.isdigit() else None
        found = found or Peer.objects.filter(name=peer).order_by("-pk").first()
        if found is None:
            raise CommandError(f"No peer {peer!r}: give its id or name (see the admin's OCPI peers)")
        bar = tqdm(desc=f"Pull {found.name}", unit=" locations", disable=None)

        def progress(total, received):
            if total is not None and bar.total != total:
                bar.total = total
            bar.update(received - bar.n)

        try:
            summary = peer_pull(peer=found, full=full, progress=progress)
        except PullError as exc:
            bar.close()
            summary = getattr(exc, "summary", None)
            if summary is not None:
                self._report(summary)
            raise CommandError(f"Pull of {found.name} did not complete: {exc}") from None
        bar.close()
        self._report(summary)

    def _report(self, summary) -> None:
        kind = "full" if summary.full else f"since {summary.date_from:%Y-%m-%dT%H:%M:%SZ}"
        lines = [f"Pull of {summary.peer} ({kind}): {summary.pages} pages, {summary.received} received "
                 f"(X-Total-Count {summary.total}), {summary.created} created, {summary.updated} updated, "
                 f"{summary.unchanged} unchanged, {summary.rejected} rejected"]
        lines += [f"  {count:6d} x {reason}" for reason, count in summary.top_reasons()]
        style = self.style.SUCCESS if summary.completed else self.style.ERROR
        self.stdout.write(style(lines[0]))
        for line in lines[1:]:
            self.stdout.write(line)

"""`python manage.py portal_client create|revoke|list`: the hub operators' client keys (Basic auth)."""

from django.core.management.base import BaseCommand, CommandError

from emsp.models import PortalClient
from emsp.services import portal_client_create, portal_client_revoke


class Command(BaseCommand):
    help = "Issue, revoke or list the client keys that front ends send as 'Authorization: Basic <key>'."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("create", help="issue a key (printed once)").add_argument("name")
        sub.add_parser("revoke", help="revoke a client's key").add_argument("name")
        sub.add_parser("list", help="list the clients")

    def handle(self, *args, action: str, name: str | None = None, **options):
        if action == "create":
            if PortalClient.objects.filter(name=name).exists():
                raise CommandError(f"a client named {name!r} exists already (keys are never reissued under a used name): choose another name")
            _, key = portal_client_create(name=name)
            self.stdout.write(f"Client key for {name} (shown once, keep it secret):\n{key}")
        elif action == "revoke":
            client = PortalClient.objects.filter(name=name, revoked_at__isnull=True).first()
            if client is None:
                raise CommandError(f"no active client named {name!r}")
            portal_client_revoke(client=client)
            self.stdout.write(f"Revoked the key of {name}.")
        else:
            for client in PortalClient.objects.order_by("name"):
                state = f"revoked {client.revoked_at:%Y-%m-%d}" if client.revoked_at else "active"
                self.stdout.write(f"{client.name}\t{state}\tissued {client.date_created:%Y-%m-%d}")

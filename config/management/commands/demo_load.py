"""`python manage.py demo_load`: the demo data `make run` starts with, and its credentials file.

Safe to run again: users, tenants and locations are upserted, and credentials that still work are kept.
"""

import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from tqdm import tqdm

from emsp.models import Driver, PortalClient
from emsp.services import portal_client_authenticate, portal_client_create
from locations import services
from locations.models import Cpo
from locations.registers import register_location
from locations.registers.bnetza import iter_bnetza_locations
from locations.tokens import token_matches
from ocpi.handshake import our_versions_url
from ocpi.models import Peer
from ocpi.services import peer_invite
from vehicles.services import demo_car_link

SAMPLE = Path(settings.BASE_DIR) / "locations" / "fixtures" / "bnetza-2019-sample.csv"
# The export's date: rows without a commissioning date are as new as the register itself.
SAMPLE_DATE = "2019-07-19T00:00:00Z"
DEMO_CPO = {"country_code": "DE", "party_id": "DMO", "owner_name": "Demo Charging GmbH",
            "contact_name": "Dana Demo", "contact_number": "+49 30 1234567", "contact_email": "cpo@demo.evhub.invalid"}


class Command(BaseCommand):
    help = "Load the demo data (a real charge-point register, a demo CPO, a hub admin) and write var/demo-credentials.json."

    def add_arguments(self, parser):
        parser.add_argument("--output", default=str(settings.VAR_DIR / "demo-credentials.json"))

    def handle(self, *args, output: str, **options):
        path = Path(output)
        previous = json.loads(path.read_text()) if path.exists() else {}
        with transaction.atomic():
            credentials = {
                "base_url": settings.PUBLIC_BASE_URL,
                "admin": self._admin(previous.get("admin", {})),
                "portal_client": self._portal_client(previous.get("portal_client", {})),
                "cpo": self._cpo(previous.get("cpo", {})),
                "ocpi_peer": self._ocpi_peer(previous.get("ocpi_peer", {})),
                "driver": self._driver(previous.get("driver", {})),
            }
        cpo = Cpo.objects.get(country_code=DEMO_CPO["country_code"], party_id=DEMO_CPO["party_id"])
        accepted, rejected = self._locations(cpo)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps({**previous, **credentials}, indent=2) + "\n")
        # The demo driver's simulated car, served by the Procfile's `simulator` (after the driver above, if any).
        _, cars = demo_car_link(username="demo-driver")
        self.stdout.write(f"Demo driver's simulated car: {', '.join(c.vin for c in cars)}")
        self.stdout.write(self.style.SUCCESS(
            f"Demo data ready: {accepted} locations of the BNetzA register ({rejected} rows skipped).\n"
            f"Demo credentials (admin login, portal client key, CPO login and token C, OCPI token A, driver login): "
            f"{path}"
        ))

    def _admin(self, previous: dict) -> dict:
        User = get_user_model()
        username = "admin"
        password = previous.get("password") or secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=username, defaults={"email": "admin@demo.evhub.invalid"})
        if not user.check_password(password):
            user.set_password(password)
        user.is_staff = user.is_superuser = True
        user.save()
        return {"username": username, "password": password}

    def _portal_client(self, previous: dict) -> dict:
        key = previous.get("basic_token")
        if key and portal_client_authenticate(key=key):
            return {"basic_token": key}
        PortalClient.objects.filter(name="demo portal").delete()
        _, key = portal_client_create(name="demo portal")
        return {"basic_token": key}

    def _cpo(self, previous: dict) -> dict:
        User = get_user_model()
        username = "demo-cpo"
        password = previous.get("password") or secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=username, defaults={"email": DEMO_CPO["contact_email"]})
        if not user.check_password(password):
            user.set_password(password)
            user.save()
        cpo = Cpo.objects.filter(country_code=DEMO_CPO["country_code"], party_id=DEMO_CPO["party_id"]).first()
        token_c = previous.get("token_c")
        if cpo is None:
            cpo, token_c = services.cpo_create(**DEMO_CPO, ocpp_ready=True, auto_publish=True, owner=user)
        elif not (token_c and token_matches(token_c, cpo.token_c_digest)):
            token_c = services.cpo_token_c_rotate(cpo=cpo)
        return {"country_code": cpo.country_code, "party_id": cpo.party_id, "username": username,
                "password": password, "token_c": token_c}

    def _driver(self, previous: dict) -> dict:
        """The demo driver, who logs in at /api/auth/v1/login (its simulated car is the vehicles app's)."""
        User = get_user_model()
        username = "demo-driver"
        password = previous.get("password") or secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=username, defaults={"email": "driver@demo.evhub.invalid",
                                                                          "first_name": "Dana", "last_name": "Driver"})
        if not user.check_password(password):
            user.set_password(password)
            user.save()
        Driver.objects.get_or_create(user=user)
        return {"username": username, "password": password}

    def _ocpi_peer(self, previous: dict) -> dict:
        token_a = previous.get("token_a")
        # Only an invitation is replaced: a platform that registered with the demo token keeps its connection.
        invited = Peer.objects.filter(name="demo peer", state=Peer.State.INVITED)
        peer = invited.first()
        if not (peer and token_a and token_matches(token_a, peer.token_a_digest)):
            invited.delete()
            _, token_a = peer_invite(name="demo peer")
        return {"token_a": token_a, "versions_url": our_versions_url()}

    def _locations(self, cpo: Cpo) -> tuple[int, int]:
        accepted = rejected = 0
        with SAMPLE.open(newline="", encoding="utf-8") as lines:
            rows = tqdm(iter_bnetza_locations(lines), desc="Demo locations", unit=" rows", disable=None)
            for row in rows:
                if not row.ok:
                    rejected += 1
                    continue
                data = register_location(row.location, country_code=cpo.country_code, party_id=cpo.party_id,
                                         last_updated=SAMPLE_DATE)
                try:
                    services.location_upsert(cpo=cpo, data=data)
                except services.InvalidPayload:
                    rejected += 1
                else:
                    accepted += 1
        return accepted, rejected

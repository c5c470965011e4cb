"""`manage.py demo_load`, which `make run` calls: demo data and its credentials file, safe to repeat."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from emsp.services import portal_client_authenticate
from locations.enums import Moderation
from locations.models import Cpo, Location
from locations.tokens import token_matches
from ocpi.models import Peer

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def test_demo_load_writes_working_credentials_and_is_safe_to_repeat(tmp_path):
    output = tmp_path / "demo-credentials.json"
    call_command("demo_load", output=str(output))
    first = json.loads(output.read_text())
    assert set(first) >= {"base_url", "admin", "portal_client", "cpo", "ocpi_peer"}
    assert first["base_url"].startswith("http://127.0.0.1:")
    assert oct(output.stat().st_mode & 0o777) == "0o600"

    admin = get_user_model().objects.get(username=first["admin"]["username"])
    assert admin.is_superuser and admin.check_password(first["admin"]["password"])
    assert portal_client_authenticate(key=first["portal_client"]["basic_token"]) is not None
    cpo = Cpo.objects.get(country_code=first["cpo"]["country_code"], party_id=first["cpo"]["party_id"])
    assert cpo.owner.username == first["cpo"]["username"] and cpo.owner.check_password(first["cpo"]["password"])
    assert token_matches(first["cpo"]["token_c"], cpo.token_c_digest)
    peer = Peer.objects.get(name="demo peer")
    assert token_matches(first["ocpi_peer"]["token_a"], peer.token_a_digest)
    assert first["ocpi_peer"]["versions_url"].endswith("/ocpi/versions")

    locations = Location.objects.filter(cpo=cpo)
    count = locations.count()
    assert count > 300
    assert locations.filter(moderation=Moderation.PUBLISHED).count() == count
    assert locations.filter(province="Berlin").exists()

    call_command("demo_load", output=str(output))
    assert json.loads(output.read_text()) == first
    assert Location.objects.filter(cpo=cpo).count() == count
    assert get_user_model().objects.filter(username="admin").count() == 1

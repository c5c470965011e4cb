"""OCPI 2.1.1 in both roles: the role a 2.1.1 peer plays is chosen on our side (Peer.v211_role, set by
`ocpi_invite --role` / `ocpi_register --role` and the admin), and decides which `locations` endpoint our
2.1.1 version details offer it; 2.1.1's Location.id and EVSE.uid are string(39)."""

import io
import re

import pytest
from django.core.management import call_command

from locations import services
from locations.models import Evse, Location
from locations.validation import InvalidPayload, clean_location
from ocpi.models import Peer
from ocpi.modules.locations.paths import object_id
from ocpi.transport import OcpiError
from tests.ocpi.conftest import V211, V221, ocpi_get, ocpi_post, ocpi_put
from tests.ocpi.test_locations_receiver import location_211

pytestmark = pytest.mark.django_db

ID_39 = "LOC-" + "9" * 35
UID_39 = "EVSE-" + "7" * 34


def invite(role: str | None) -> tuple[Peer, str]:
    out = io.StringIO()
    call_command("ocpi_invite", "Old platform", *(["--role", role] if role else []), stdout=out)
    text = out.getvalue()
    peer = Peer.objects.get(pk=int(re.search(r"Peer (\d+)", text).group(1)))
    return peer, re.search(r"token A:\s+(\S+)", text).group(1)


def locations_endpoint(client, token: str) -> str:
    """What our 2.1.1 version details list as `locations`, found as a 2.1.1 client finds it."""
    versions = ocpi_get(client, "/ocpi/versions", token, version=V211).json()["data"]
    details_url = next(v["url"] for v in versions if v["version"] == V211)
    details = ocpi_get(client, details_url, token, version=V211).json()["data"]
    assert all("role" not in endpoint for endpoint in details["endpoints"])  # 2.1.1 has none
    urls = [endpoint["url"] for endpoint in details["endpoints"] if endpoint["identifier"] == "locations"]
    assert len(urls) == 1
    return urls[0]


def register(client, fake_platform, token_a: str) -> str:
    fake_platform.serve_versions((V211,), token="their-token-B")
    body = {"token": "their-token-B", "url": f"{fake_platform.url}/versions", "party_id": "exo",
            "country_code": "be", "business_details": {"name": "Old Operator"}}
    response = ocpi_post(client, "/ocpi/2.1.1/credentials", token_a, body, version=V211)
    assert (response.status_code, response.json()["status_code"]) == (200, 1000), response.json()
    return response.json()["data"]["token"]


def test_a_211_cpo_is_offered_our_receiver_and_pushes_a_39_character_id(client, fake_platform, settings):
    peer, token_a = invite("CPO")
    assert peer.v211_role == "CPO"
    receiver = f"{settings.PUBLIC_BASE_URL}/ocpi/2.1.1/emsp/locations"
    assert locations_endpoint(client, token_a) == receiver  # before it registers, with its token A
    token_c = register(client, fake_platform, token_a)
    peer.refresh_from_db()
    assert [(party.role, party.country_code, party.party_id) for party in peer.parties.all()] == [("CPO", "BE", "EXO")]
    assert locations_endpoint(client, token_c) == receiver

    location = location_211(ID_39)
    location["evses"][0]["uid"] = UID_39
    url = f"{receiver.removeprefix(settings.PUBLIC_BASE_URL)}/BE/EXO/{ID_39}"
    response = ocpi_put(client, url, token_c, location, version=V211)
    assert (response.status_code, response.json()["status_code"]) == (201, 1000), response.json()
    stored = Location.objects.get(cpo__country_code="BE", cpo__party_id="EXO", ocpi_id=ID_39)
    assert Evse.objects.get(location=stored).uid == UID_39
    evse = ocpi_get(client, f"{url}/{UID_39}", token_c, version=V211).json()
    assert evse["status_code"] == 1000 and evse["data"]["uid"] == UID_39

    too_long = location_211(ID_39 + "X")
    response = ocpi_put(client, f"{url}X", token_c, too_long, version=V211)
    assert (response.status_code, response.json()["status_code"]) == (400, 2001)
    assert "39" in response.json()["status_message"]


def test_a_211_emsp_is_offered_our_sender(client, fake_platform, settings):
    peer, token_a = invite("emsp")
    assert peer.v211_role == "EMSP"
    sender = f"{settings.PUBLIC_BASE_URL}/ocpi/2.1.1/cpo/locations"
    assert locations_endpoint(client, token_a) == sender
    token_c = register(client, fake_platform, token_a)
    peer.refresh_from_db()
    # An eMSP party: no catalogue tenant, nothing it may write.
    assert [(party.role, party.cpo_id) for party in peer.parties.all()] == [("EMSP", None)]
    assert locations_endpoint(client, token_c) == sender
    listed = ocpi_get(client, sender.removeprefix(settings.PUBLIC_BASE_URL), token_c, version=V211)
    assert listed.status_code == 200 and listed.json()["status_code"] == 1000
    refused = ocpi_put(client, f"/ocpi/2.1.1/emsp/locations/BE/EXO/{ID_39}", token_c, location_211(ID_39),
                       version=V211)
    assert (refused.status_code, refused.json()["status_code"]) == (404, 2000)


def test_ocpi_invite_role_defaults_to_cpo():
    peer, _ = invite(None)
    assert peer.v211_role == "CPO"


def test_221_ids_stay_cistring_36(alpha):
    for name in ("location_id", "evse_uid"):
        assert object_id("x" * 39, name, version=V211) == "x" * 39
        with pytest.raises(OcpiError) as error:
            object_id("x" * 37, name, version=V221)
        assert error.value.status_code == 2001
    with pytest.raises(OcpiError):
        object_id("x" * 37, "connector_id", version=V211)  # string(36) in 2.1.1 too
    with pytest.raises(InvalidPayload) as invalid:
        services.location_upsert(cpo=alpha, data={**location_211("x" * 37), "country_code": "DE", "party_id": "ALP"},
                                 version=V221)
    assert "id" in invalid.value.errors


def test_the_ingestion_path_takes_39_characters_from_211_only():
    location = location_211(ID_39)
    location["evses"][0]["uid"] = UID_39
    cleaned = clean_location(location, version=V211)
    assert (cleaned["ocpi_id"], cleaned["evses"][0]["uid"]) == (ID_39, UID_39)
    longer = location_211(ID_39 + "X")
    longer["evses"][0]["uid"] = UID_39 + "X"
    with pytest.raises(InvalidPayload) as invalid:
        clean_location(longer, version=V211)
    assert {"id", "evses[0].uid"} <= set(invalid.value.errors)
    as_221 = {**location, "country_code": "DE", "party_id": "ALP", "publish": True, "time_zone": "Europe/Berlin"}
    with pytest.raises(InvalidPayload) as invalid:
        clean_location(as_221, version=V221)
    assert {"id", "evses[0].uid"} <= set(invalid.value.errors)


def test_ocpi_register_role_makes_the_211_platform_an_emsp(fake_platform):
    their = {"token": "their-C", "url": f"{fake_platform.url}/versions", "party_id": "OLD", "country_code": "NL",
             "business_details": {"name": "Old eMSP"}}
    fake_platform.serve_versions((V211,), credentials_answer=their)
    out = io.StringIO()
    call_command("ocpi_register", f"{fake_platform.url}/versions", "token-A", "--name", "Old eMSP", "--role", "EMSP",
                 stdout=out)
    peer = Peer.objects.get(name="Old eMSP")
    assert (peer.version, peer.v211_role) == (V211, "EMSP")
    assert [(party.role, party.party_id, party.cpo_id) for party in peer.parties.all()] == [("EMSP", "OLD", None)]
    assert "EMSP  NL*OLD" in out.getvalue()


def test_the_admin_shows_and_edits_the_211_role(client, invited_peer):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_superuser(username="op", password="pw", email="op@x.org"))
    page = client.get(f"/admin/ocpi/peer/{invited_peer.pk}/change/").content.decode()
    assert re.search(r'<select name="v211_role"[^>]*>', page)
    assert re.search(r'<option value="CPO" selected>', page)
    assert "v211_role" in client.get("/admin/ocpi/peer/").content.decode()  # a column of the list

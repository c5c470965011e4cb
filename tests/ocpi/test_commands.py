"""The operator's commands: ocpi_invite, ocpi_register, ocpi_peers."""

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from locations.tokens import token_matches, token_new
from ocpi.models import Peer
from tests.ocpi.conftest import V211, V221

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.smoke
def test_ocpi_invite_prints_token_a_once_and_our_versions_url(settings):
    output = run("ocpi_invite", "Example eMSP")
    peer = Peer.objects.get(name="Example eMSP")
    assert peer.state == Peer.State.INVITED
    token_a = re.search(r"token A:\s+(\S+)", output).group(1)
    assert token_matches(token_a, peer.token_a_digest)
    assert f"versions URL: {settings.PUBLIC_BASE_URL}/ocpi/versions" in output


def test_ocpi_register_prints_the_version_and_the_parties(fake_platform):
    answer = {"token": "their-C", "url": f"{fake_platform.url}/versions",
              "roles": [{"role": role, "country_code": "NL", "party_id": "FAK", "business_details": {"name": "Fake"}}
                        for role in ("CPO", "EMSP")]}
    fake_platform.serve_versions((V211, V221), token="token-A", credentials_answer=answer)
    output = run("ocpi_register", f"{fake_platform.url}/versions", "token-A", "--name", "Fake Platform")
    assert "OCPI 2.2.1" in output
    assert re.search(r"CPO\s+NL\*FAK -> catalogue NL\*FAK", output) and re.search(r"EMSP\s+NL\*FAK\n", output)
    assert Peer.objects.get(name="Fake Platform").state == Peer.State.CONNECTED


def test_a_token_a_beginning_with_a_dash_goes_after_double_dash(fake_platform):
    answer = {"token": "their-C", "url": f"{fake_platform.url}/versions",
              "roles": [{"role": "CPO", "country_code": "NL", "party_id": "DSH", "business_details": {"name": "Dash"}}]}
    fake_platform.serve_versions((V221,), token="-dash-token-A", credentials_answer=answer)
    run("ocpi_register", "--name", "Dash Platform", "--", f"{fake_platform.url}/versions", "-dash-token-A")
    assert Peer.objects.get(name="Dash Platform").state == Peer.State.CONNECTED


@pytest.mark.smoke
def test_tokens_we_issue_never_begin_with_a_dash():
    # 1 in 64 would otherwise: such a token read as an option on the command line (ocpi_register).
    assert not [token for token in (token_new() for _ in range(2000)) if token.startswith("-")]


def test_ocpi_register_failure_is_a_command_error(fake_platform):
    fake_platform.answer("GET", "/versions", [{"version": "2.0", "url": f"{fake_platform.url}/2.0"}])
    with pytest.raises(CommandError, match=r"\(3002\).*No common OCPI version"):
        run("ocpi_register", f"{fake_platform.url}/versions", "token-A")
    assert not Peer.objects.exists()


def test_ocpi_peers_lists_state_version_parties_endpoints_and_no_token(connected_peer, invited_peer):
    connected_peer.endpoints = {"locations": {"SENDER": "https://peer.example.com/ocpi/2.2.1/locations"}}
    connected_peer.save()
    output = run("ocpi_peers")
    assert "Peer Alpha: CONNECTED 2.2.1" in output and "Invited Platform: INVITED" in output
    assert "CPO DE*ALP" in output and "locations SENDER: https://peer.example.com/ocpi/2.2.1/locations" in output
    assert connected_peer.token not in output and invited_peer.token_a not in output

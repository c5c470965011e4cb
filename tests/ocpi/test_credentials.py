"""The credentials module both ways (credentials.asciidoc): registration, update/rotation, unregistration.

The other platform is real: either `fake_platform` (an HTTP server on loopback answering recorded JSON)
or this same app served by `live_server`, which then registers with itself.
"""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from locations.models import Cpo
from locations.tokens import secret_decrypt, token_matches
from ocpi.client import OcpiClient
from ocpi.models import Peer, PeerParty
from ocpi.transport import OcpiError
from ocpi.services import peer_credentials_rotate, peer_invite, peer_register, peer_unregister
from tests.ocpi.conftest import V211, V221, ocpi_auth, ocpi_delete, ocpi_get, ocpi_post, ocpi_put

URL_221, URL_211 = "/ocpi/2.2.1/credentials", "/ocpi/2.1.1/credentials"


def roles(*parties) -> list:
    return [{"role": role, "country_code": cc, "party_id": pid, "business_details": {"name": f"{pid} {role}"}}
            for role, cc, pid in parties]


def credentials_221(platform, token="their-token-B", parties=(("CPO", "NL", "EXA"), ("EMSP", "NL", "EXA"))) -> dict:
    return {"token": token, "url": f"{platform.url}/versions", "roles": roles(*parties)}


def credentials_211(platform, token="their-token-B") -> dict:
    return {"token": token, "url": f"{platform.url}/versions", "party_id": "exo", "country_code": "be",
            "business_details": {"name": "Old Operator"}}


def status(response) -> tuple[int, int]:
    return response.status_code, response.json()["status_code"]


# --- inbound: a platform registers with us ---------------------------------------------------------------

@pytest.mark.django_db
class TestRegistrationWithUs:
    def test_get_with_token_a_answers_our_credentials_as_a_hub(self, client, invited_peer, settings):
        body = ocpi_get(client, URL_221, invited_peer.token_a).json()
        assert body["status_code"] == 1000
        data = body["data"]
        assert data["token"] == invited_peer.token_a
        assert data["url"] == f"{settings.PUBLIC_BASE_URL}/ocpi/versions"
        # credentials.asciidoc: a Hub SHALL only report itself as role HUB
        assert data["roles"] == [
            {"role": "HUB", "party_id": settings.EVHUB_PARTY_ID, "country_code": settings.EVHUB_COUNTRY_CODE,
             "business_details": {"name": settings.EVHUB_BUSINESS_NAME}}]

    def test_a_plain_platform_answers_roles_cpo_and_emsp(self, client, invited_peer, settings):
        settings.EVHUB_OCPI_HUB = False
        data = ocpi_get(client, URL_221, invited_peer.token_a).json()["data"]
        assert data["roles"] == [
            {"role": role, "party_id": settings.EVHUB_PARTY_ID, "country_code": settings.EVHUB_COUNTRY_CODE,
             "business_details": {"name": settings.EVHUB_BUSINESS_NAME}} for role in ("CPO", "EMSP")]

    def test_get_211_is_the_flat_object(self, client, invited_peer, settings):
        data = ocpi_get(client, URL_211, invited_peer.token_a, version=V211).json()["data"]
        assert data == {"token": invited_peer.token_a, "url": f"{settings.PUBLIC_BASE_URL}/ocpi/versions",
                        "business_details": {"name": settings.EVHUB_BUSINESS_NAME},
                        "party_id": settings.EVHUB_PARTY_ID, "country_code": settings.EVHUB_COUNTRY_CODE}

    def test_post_registers_and_token_a_is_forgotten(self, client, invited_peer, fake_platform):
        fake_platform.serve_versions((V211, V221), token="their-token-B")
        response = ocpi_post(client, URL_221, invited_peer.token_a, credentials_221(fake_platform))
        assert status(response) == (200, 1000)
        token_c = response.json()["data"]["token"]
        assert token_c != invited_peer.token_a and response.json()["data"]["roles"][0]["role"] == "HUB"

        peer = Peer.objects.get(pk=invited_peer.pk)
        assert peer.state == Peer.State.CONNECTED and peer.version == V221
        assert peer.token_a_digest == "" and token_matches(token_c, peer.token_in_digest)
        assert secret_decrypt(peer.token_out) == "their-token-B" and "their-token-B" not in peer.token_out
        assert peer.versions_url == f"{fake_platform.url}/versions"
        assert peer.endpoint("locations", "SENDER") == f"{fake_platform.url}/2.2.1/locations"
        assert peer.endpoint("credentials", "SENDER") == f"{fake_platform.url}/2.2.1/credentials"
        parties = {(p.role, p.country_code, p.party_id): p.cpo for p in peer.parties.all()}
        assert set(parties) == {("CPO", "NL", "EXA"), ("EMSP", "NL", "EXA")}
        assert parties[("CPO", "NL", "EXA")] == Cpo.objects.get(country_code="NL", party_id="EXA")
        assert parties[("EMSP", "NL", "EXA")] is None
        # we called their versions with the token they gave us, base64 for 2.2.1
        assert fake_platform.requests("GET", "/versions")[0].headers["Authorization"] == ocpi_auth("their-token-B")

        assert ocpi_get(client, URL_221, invited_peer.token_a).status_code == 401
        assert status(ocpi_get(client, URL_221, token_c)) == (200, 1000)
        assert ocpi_get(client, URL_221, token_c).json()["data"]["token"] == token_c

    def test_post_again_is_405(self, client, invited_peer, fake_platform):
        fake_platform.serve_versions()
        token_c = ocpi_post(client, URL_221, invited_peer.token_a, credentials_221(fake_platform)).json()["data"]["token"]
        assert status(ocpi_post(client, URL_221, token_c, credentials_221(fake_platform))) == (405, 2000)

    def test_put_and_delete_before_registering_are_405(self, client, invited_peer, fake_platform):
        fake_platform.serve_versions()
        assert status(ocpi_put(client, URL_221, invited_peer.token_a, credentials_221(fake_platform))) == (405, 2000)
        assert status(ocpi_delete(client, URL_221, invited_peer.token_a)) == (405, 2000)
        assert Peer.objects.get(pk=invited_peer.pk).state == Peer.State.INVITED

    def test_a_cpo_token_of_the_portal_cannot_register_or_update(self, client, alpha, fake_platform):
        fake_platform.serve_versions()
        assert status(ocpi_post(client, URL_221, alpha.token_c, credentials_221(fake_platform))) == (405, 2000)
        assert status(ocpi_put(client, URL_221, alpha.token_c, credentials_221(fake_platform))) == (405, 2000)
        assert status(ocpi_delete(client, URL_221, alpha.token_c)) == (405, 2000)

    def test_put_rotates_our_token_and_reads_their_endpoints_again(self, client, invited_peer, fake_platform):
        fake_platform.serve_versions()
        old = ocpi_post(client, URL_221, invited_peer.token_a, credentials_221(fake_platform)).json()["data"]["token"]
        fake_platform.serve_versions(token="their-token-B2")
        fake_platform.answer("GET", "/2.2.1", {"version": "2.2.1", "endpoints": [
            {"identifier": "credentials", "role": "SENDER", "url": f"{fake_platform.url}/new/credentials"}]})
        response = ocpi_put(client, URL_221, old, credentials_221(fake_platform, token="their-token-B2",
                                                                   parties=[("CPO", "NL", "EXA")]))
        assert status(response) == (200, 1000)
        new = response.json()["data"]["token"]
        assert new != old
        assert ocpi_get(client, URL_221, old).status_code == 401
        assert ocpi_get(client, URL_221, new).status_code == 200
        peer = Peer.objects.get(pk=invited_peer.pk)
        assert secret_decrypt(peer.token_out) == "their-token-B2"
        assert peer.endpoints == {"credentials": {"SENDER": f"{fake_platform.url}/new/credentials"}}
        assert [(p.role, p.party_id) for p in peer.parties.all()] == [("CPO", "EXA")]

    def test_delete_unregisters(self, client, invited_peer, fake_platform):
        fake_platform.serve_versions()
        token_c = ocpi_post(client, URL_221, invited_peer.token_a, credentials_221(fake_platform)).json()["data"]["token"]
        assert status(ocpi_delete(client, URL_221, token_c)) == (200, 1000)
        peer = Peer.objects.get(pk=invited_peer.pk)
        assert peer.state == Peer.State.SUSPENDED and peer.token_out == "" and peer.token_in_digest == ""
        assert ocpi_get(client, URL_221, token_c).status_code == 401
        assert peer.parties.filter(cpo__isnull=False).exists()  # its catalogue stays where it is

    def test_registration_at_211(self, client, invited_peer, fake_platform):
        fake_platform.serve_versions((V211,), token="their-token-B")
        response = ocpi_post(client, URL_211, invited_peer.token_a, credentials_211(fake_platform), version=V211)
        assert status(response) == (200, 1000)
        data = response.json()["data"]
        assert set(data) == {"token", "url", "business_details", "party_id", "country_code"}
        peer = Peer.objects.get(pk=invited_peer.pk)
        assert peer.version == V211
        assert peer.endpoints["locations"] == {"ANY": f"{fake_platform.url}/2.1.1/locations"}
        assert peer.roles == [{"role": "CPO", "country_code": "BE", "party_id": "EXO",
                               "business_details": {"name": "Old Operator"}}]
        assert peer.parties.get().cpo == Cpo.objects.get(country_code="BE", party_id="EXO")
        # 2.1.1 sends the token as it is
        assert fake_platform.requests("GET", "/versions")[0].headers["Authorization"] == "Token their-token-B"
        assert ocpi_get(client, URL_211, data["token"], version=V211).status_code == 200

    def test_registration_at_221_with_a_211_only_platform_is_3002(self, client, invited_peer, fake_platform):
        fake_platform.serve_versions((V211,))
        response = ocpi_post(client, URL_221, invited_peer.token_a, credentials_221(fake_platform))
        assert status(response) == (200, 3002)
        assert "2.1.1" in response.json()["status_message"]
        assert Peer.objects.get(pk=invited_peer.pk).state == Peer.State.INVITED

    def test_unreachable_versions_is_3001_and_token_a_still_works(self, client, invited_peer, loopback):
        body = credentials_221(type("P", (), {"url": "http://127.0.0.1:9"})())  # discard port: nothing listens
        response = ocpi_post(client, URL_221, invited_peer.token_a, body)
        assert status(response) == (200, 3001)
        assert "127.0.0.1:9" in response.json()["status_message"]
        assert ocpi_get(client, URL_221, invited_peer.token_a).status_code == 200

    @pytest.mark.parametrize("answer", [
        (200, b"<html>not json</html>"),
        (401, {"status_code": 2000, "status_message": "Unauthorized"}),
        (200, {"status_code": 1000, "data": {"not": "a list"}}),
    ], ids=["not-json", "refused", "not-a-list"])
    def test_unusable_versions_are_3001(self, client, invited_peer, fake_platform, answer):
        fake_platform.routes[("GET", "/versions")] = answer
        assert status(ocpi_post(client, URL_221, invited_peer.token_a, credentials_221(fake_platform))) == (200, 3001)

    def test_private_versions_url_is_3001_when_loopback_is_not_allowed(self, client, invited_peer, fake_platform,
                                                                       settings):
        fake_platform.serve_versions()
        settings.OCPI_ALLOWED_NETWORKS = []
        response = ocpi_post(client, URL_221, invited_peer.token_a, credentials_221(fake_platform))
        assert status(response) == (200, 3001) and "refused" in response.json()["status_message"]
        assert fake_platform.seen == []

    def test_version_details_without_credentials_endpoint_is_3003(self, client, invited_peer, fake_platform):
        fake_platform.serve_versions()
        fake_platform.answer("GET", "/2.2.1", {"version": "2.2.1", "endpoints": [
            {"identifier": "locations", "role": "SENDER", "url": f"{fake_platform.url}/locations"}]})
        assert status(ocpi_post(client, URL_221, invited_peer.token_a, credentials_221(fake_platform))) == (200, 3003)

    @pytest.mark.parametrize("change, field", [
        ({"token": None}, "'token'"),
        ({"token": "has space"}, "'token'"),
        ({"token": "x" * 65}, "'token'"),
        ({"url": "ftp://example.com/versions"}, "'url'"),
        ({"url": None}, "'url'"),
        ({"roles": []}, "'roles'"),
        ({"roles": [{"role": "KING", "country_code": "NL", "party_id": "EXA", "business_details": {"name": "x"}}]},
         "'roles[0].role'"),
        ({"roles": roles(("CPO", "NL", "EXAMPLE"))}, "'roles[0].party_id'"),
        ({"roles": roles(("CPO", "NLD", "EXA"))}, "'roles[0].country_code'"),
        ({"roles": [{"role": "CPO", "country_code": "NL", "party_id": "EXA"}]}, "'roles[0].business_details'"),
        ({"roles": roles(("CPO", "NL", "EXA"), ("CPO", "nl", "exa"))}, "'roles'"),
    ])
    def test_invalid_credentials_objects_are_2001_naming_the_field(self, client, invited_peer, fake_platform,
                                                                  change, field):
        fake_platform.serve_versions()
        body = {**credentials_221(fake_platform), **change}
        response = ocpi_post(client, URL_221, invited_peer.token_a, body)
        assert status(response) == (400, 2001)
        assert field in response.json()["status_message"]
        assert fake_platform.seen == []

    @pytest.mark.parametrize("body", ["[]", "not json", '"token"'])
    def test_a_body_that_is_no_object_is_2001(self, client, invited_peer, body):
        assert status(ocpi_post(client, URL_221, invited_peer.token_a, body)) == (400, 2001)

    def test_211_missing_party_fields_are_2001(self, client, invited_peer, fake_platform):
        body = credentials_211(fake_platform)
        del body["party_id"]
        response = ocpi_post(client, URL_211, invited_peer.token_a, body, version=V211)
        assert status(response) == (400, 2001) and "'party_id'" in response.json()["status_message"]


# --- party takeover ---------------------------------------------------------------------------------------

@pytest.mark.django_db
class TestPartiesAreNeverHandedOver:
    def test_a_party_owned_by_a_portal_account_is_refused(self, client, invited_peer, fake_platform, alpha):
        alpha.owner = get_user_model().objects.create_user(username="alpha-owner")
        alpha.save()
        fake_platform.serve_versions()
        body = credentials_221(fake_platform, parties=[("CPO", "de", "alp")])
        response = ocpi_post(client, URL_221, invited_peer.token_a, body)
        assert status(response) == (400, 2001)
        assert "DE*ALP" in response.json()["status_message"]
        assert not PeerParty.objects.filter(cpo=alpha).exists()
        assert Peer.objects.get(pk=invited_peer.pk).state == Peer.State.INVITED

    def test_a_party_of_another_peer_is_refused(self, client, invited_peer, fake_platform, connected_peer, alpha):
        fake_platform.serve_versions()
        response = ocpi_post(client, URL_221, invited_peer.token_a,
                             credentials_221(fake_platform, parties=[("CPO", "DE", "ALP")]))
        assert status(response) == (400, 2001) and "DE*ALP" in response.json()["status_message"]
        assert list(PeerParty.objects.filter(cpo=alpha).values_list("peer", flat=True)) == [connected_peer.pk]

    def test_an_unowned_party_of_the_catalogue_is_refused_too(self, client, invited_peer, fake_platform, bravo):
        fake_platform.serve_versions()
        response = ocpi_post(client, URL_221, invited_peer.token_a,
                             credentials_221(fake_platform, parties=[("CPO", "DE", "BRV")]))
        assert status(response) == (400, 2001) and "DE*BRV" in response.json()["status_message"]

    def test_a_party_the_operator_linked_to_the_invited_peer_is_taken(self, client, invited_peer, fake_platform, alpha):
        PeerParty.objects.create(peer=invited_peer, role="CPO", country_code="DE", party_id="ALP", cpo=alpha)
        fake_platform.serve_versions()
        response = ocpi_post(client, URL_221, invited_peer.token_a,
                             credentials_221(fake_platform, parties=[("CPO", "DE", "ALP"), ("EMSP", "DE", "ALP")]))
        assert status(response) == (200, 1000)
        assert invited_peer.parties.get(role="CPO").cpo == alpha

    def test_our_own_party_is_never_a_peers_tenant(self, client, invited_peer, fake_platform, settings):
        fake_platform.serve_versions()
        ours = ("CPO", settings.EVHUB_COUNTRY_CODE, settings.EVHUB_PARTY_ID)
        response = ocpi_post(client, URL_221, invited_peer.token_a, credentials_221(fake_platform, parties=[ours]))
        assert status(response) == (200, 1000)
        assert invited_peer.parties.get().cpo is None
        assert not Cpo.objects.filter(country_code=ours[1], party_id=ours[2]).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_new_party_created_by_a_concurrent_exchange_is_refused_not_a_500(client, invited_peer, fake_platform,
                                                                           monkeypatch):
    """Two peers register the same new CPO party at once: the one that commits second gets 2001, not 500."""
    from ocpi import services

    create = services.cpo_create

    def racing(**kwargs):
        def other_exchange():  # commits the party on its own connection, just before ours inserts it
            try:
                create(**kwargs)
            finally:
                connection.close()

        thread = threading.Thread(target=other_exchange)
        thread.start()
        thread.join()
        return create(**kwargs)

    monkeypatch.setattr(services, "cpo_create", racing)
    fake_platform.serve_versions()
    response = ocpi_post(client, URL_221, invited_peer.token_a, credentials_221(fake_platform))
    assert status(response) == (400, 2001)
    assert "NL*EXA" in response.json()["status_message"]
    assert Cpo.objects.filter(country_code="NL", party_id="EXA").count() == 1
    assert not PeerParty.objects.filter(peer=invited_peer).exists()
    assert Peer.objects.get(pk=invited_peer.pk).state == Peer.State.INVITED


# --- outbound: we register with a platform ---------------------------------------------------------------

@pytest.mark.django_db
class TestWeRegister:
    def test_highest_common_version_is_chosen(self, fake_platform):
        their = {"token": "their-C", "url": f"{fake_platform.url}/versions", "roles": roles(("CPO", "NL", "FAK"))}
        fake_platform.serve_versions((V211, V221), token="token-A", credentials_answer=their)
        peer = peer_register(versions_url=f"{fake_platform.url}/versions", token_a="token-A", name="Fake")
        assert peer.version == V221
        posted = fake_platform.requests("POST", "/2.2.1/credentials")[0]
        assert posted.headers["Authorization"] == ocpi_auth("token-A")
        assert set(posted.body) == {"token", "url", "roles"}
        assert token_matches(posted.body["token"], peer.token_in_digest) and peer.token_a_digest == ""
        assert secret_decrypt(peer.token_out) == "their-C"
        assert peer.parties.get().cpo == Cpo.objects.get(country_code="NL", party_id="FAK")

    def test_a_211_only_platform_gets_211_with_the_plain_token(self, fake_platform):
        their = {"token": "their-C", "url": f"{fake_platform.url}/versions", "party_id": "OLD", "country_code": "NL",
                 "business_details": {"name": "Old"}}
        fake_platform.serve_versions((V211,), credentials_answer=their)
        fake_platform.token = None
        peer = peer_register(versions_url=f"{fake_platform.url}/versions", token_a="token-A", name="Old")
        assert peer.version == V211 and peer.endpoints["credentials"] == {"ANY": f"{fake_platform.url}/2.1.1/credentials"}
        posted = fake_platform.requests("POST", "/2.1.1/credentials")[0]
        assert posted.headers["Authorization"] == "Token token-A"
        assert set(posted.body) == {"token", "url", "business_details", "party_id", "country_code"}

    def test_a_211_platform_that_refuses_base64_gets_the_plain_token(self, fake_platform):
        fake_platform.serve_versions((V211,), credentials_answer=credentials_211(fake_platform, token="their-C"))
        plain = "Token token-A"
        for path, route in list(fake_platform.routes.items()):
            fake_platform.routes[path] = (lambda route: lambda seen: route if seen.headers.get("Authorization") == plain
                                          else (401, {"status_code": 2000}))(route)
        peer = peer_register(versions_url=f"{fake_platform.url}/versions", token_a="token-A", name="Old")
        assert peer.version == V211 and peer.state == Peer.State.CONNECTED

    def test_no_common_version_is_3002_and_nothing_is_stored(self, fake_platform):
        fake_platform.answer("GET", "/versions", [{"version": "2.0", "url": f"{fake_platform.url}/2.0"}])
        with pytest.raises(OcpiError) as error:
            peer_register(versions_url=f"{fake_platform.url}/versions", token_a="token-A", name="Ancient")
        assert error.value.status_code == 3002 and "2.0" in error.value.message
        assert not Peer.objects.exists()

    def test_unreachable_is_3001(self, loopback):
        with pytest.raises(OcpiError) as error:
            peer_register(versions_url="http://127.0.0.1:9/versions", token_a="token-A", name="Gone")
        assert error.value.status_code == 3001
        assert not Peer.objects.exists()

    def test_a_refused_post_is_3001_and_nothing_is_stored(self, fake_platform):
        fake_platform.serve_versions()
        fake_platform.answer("POST", "/2.2.1/credentials", status_code=3001, http_status=200)
        with pytest.raises(OcpiError) as error:
            peer_register(versions_url=f"{fake_platform.url}/versions", token_a="token-A", name="Picky")
        assert error.value.status_code == 3001
        assert not Peer.objects.exists()

    def test_a_platform_claiming_someone_elses_party_is_dropped_again(self, fake_platform, alpha, connected_peer):
        fake_platform.serve_versions(credentials_answer=credentials_221(fake_platform, "their-C", [("CPO", "DE", "ALP")]))
        with pytest.raises(OcpiError) as error:
            peer_register(versions_url=f"{fake_platform.url}/versions", token_a="token-A", name="Greedy")
        assert error.value.status_code == 2001 and "DE*ALP" in error.value.message
        assert list(Peer.objects.all()) == [connected_peer]
        assert fake_platform.requests("DELETE", "/2.2.1/credentials")  # it was told we are gone


# --- both sides real: the app registers with itself ---------------------------------------------------------

@pytest.fixture
def itself(live_server, loopback):
    loopback.PUBLIC_BASE_URL = live_server.url
    return f"{live_server.url}/ocpi/versions"


def _credentials_get(peer: Peer, url: str):
    """GET the other side's credentials with the token we hold for `peer`."""
    return OcpiClient(token=secret_decrypt(peer.token_out), version=peer.version).get(url, routed=False)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_handshake_with_itself_rotation_and_unregistration(itself, live_server):
    invited, token_a = peer_invite(name="Them (registered with us)")
    us = peer_register(versions_url=itself, token_a=token_a, name="Them (we registered)")
    them = Peer.objects.get(pk=invited.pk)
    assert us.state == them.state == Peer.State.CONNECTED and us.version == them.version == V221
    assert them.token_a_digest == "" and us.token_a_digest == ""
    credentials_url = f"{live_server.url}/ocpi/2.2.1/credentials"
    # each side calls the other with the token it was given, and is recognised as that peer
    assert _credentials_get(us, credentials_url).ok and _credentials_get(them, credentials_url).ok
    assert token_matches(secret_decrypt(us.token_out), them.token_in_digest)
    assert token_matches(secret_decrypt(them.token_out), us.token_in_digest)
    assert ({(p.role, p.cpo_id) for p in us.parties.all()} == {(p.role, p.cpo_id) for p in them.parties.all()}
            == {("HUB", None)})  # a hub reports itself only; our own party is never a peer's tenant

    old_us, old_them = Peer.objects.get(pk=us.pk), Peer.objects.get(pk=them.pk)
    us = peer_credentials_rotate(peer=us)
    them = Peer.objects.get(pk=them.pk)
    assert _credentials_get(us, credentials_url).ok and _credentials_get(them, credentials_url).ok
    assert _credentials_get(old_us, credentials_url).http_status == 401
    assert _credentials_get(old_them, credentials_url).http_status == 401

    peer_unregister(peer=us)
    assert {p.state for p in Peer.objects.all()} == {Peer.State.SUSPENDED}
    assert _credentials_get(them, credentials_url).http_status == 401


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_registering_twice_with_the_same_platform_is_refused(itself):
    _, token_a = peer_invite(name="Them")
    peer_register(versions_url=itself, token_a=token_a, name="Us")
    _, token_a = peer_invite(name="Them again")
    with pytest.raises(OcpiError) as error:
        peer_register(versions_url=itself, token_a=token_a, name="Us again")
    assert "Already connected" in error.value.message



@pytest.mark.django_db
@pytest.mark.parametrize("hub", [False, True], ids=["plain", "hub"])
def test_our_credentials_name_every_party_whose_locations_we_send(client, invited_peer, alpha, bravo, settings, hub):
    """A plain platform names every CPO it sends; a hub none but itself (HubClientInfo reports them), even
    once a party of another connected peer is published."""
    from locations.models import Location
    from locations.services import cpo_create, location_upsert

    from tests.conftest import location_payload

    settings.EVHUB_OCPI_HUB = hub
    location_upsert(cpo=alpha, data=location_payload(alpha))
    Location.objects.filter(cpo=alpha).update(moderation="PUBLISHED")
    location_upsert(cpo=bravo, data=location_payload(bravo))  # pending: not sent, so not named
    other = Peer.objects.create(name="Another CPO platform", state=Peer.State.CONNECTED)
    foreign = cpo_create(country_code="NL", party_id="IOC", owner_name="NL IOC")[0]
    PeerParty.objects.create(peer=other, role="CPO", country_code="NL", party_id="IOC", cpo=foreign)
    location_upsert(cpo=foreign, data=location_payload(foreign, "IOC-1"))
    Location.objects.filter(cpo=foreign).update(moderation="PUBLISHED")
    response = ocpi_get(client, URL_221, invited_peer.token_a)
    parties = {(role["role"], role["country_code"], role["party_id"]) for role in response.json()["data"]["roles"]}
    ours = (settings.EVHUB_COUNTRY_CODE, settings.EVHUB_PARTY_ID)
    if hub:
        assert parties == {("HUB", *ours)}
    else:
        assert parties == {("CPO", *ours), ("EMSP", *ours), ("CPO", "DE", "ALP"), ("CPO", "NL", "IOC")}

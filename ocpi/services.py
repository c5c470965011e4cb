"""Writes of the OCPI adapter: invitations and the credentials handshake, both ways (credentials.asciidoc).

Inbound (a platform registers with us at ocpi.credentials): peer_credentials_register / _update / _delete.
Outbound (we register with a platform): peer_register, peer_credentials_rotate, peer_unregister.
The peer's versions are read before anything is written, so that no transaction waits on the network.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from locations.models import Cpo
from locations.services import cpo_create
from locations.tokens import secret_decrypt, secret_encrypt, token_digest, token_new
from ocpi.client import OcpiClient, PeerError
from ocpi.handshake import (
    Credentials, Discovery, Party, credentials_read, credentials_url, is_our_party, our_credentials, peer_discover,
)
from ocpi.hub import client_status, peer_status_record
from ocpi.models import OutboxEntry, Peer, PeerParty
from ocpi.transport import CLIENT_API_ERROR, CLIENT_ERROR, INVALID_PARAMETERS, OcpiError

logger = logging.getLogger(__name__)


@transaction.atomic
def peer_invite(*, name: str, v211_role: str = "CPO") -> tuple[Peer, str]:
    """Issue a token A for a platform that will register with us; returned once, stored as a digest.
    `v211_role`: the role it plays should it speak 2.1.1 (whose credentials carry none)."""
    token_a = token_new()
    peer = Peer.objects.create(name=name[:100], token_a_digest=token_digest(token_a), v211_role=v211_role)
    return peer, token_a


# --- inbound: a platform registers with us ---------------------------------------------------------------

def _not_allowed(message: str) -> OcpiError:
    return OcpiError(message, http_status=405)


def peer_credentials_register(*, peer: Peer, version: str, data) -> tuple[Peer, str]:
    """POST with token A: read the platform's versions with the token it gave us, store its endpoints,
    roles and token, and return the token (C) it will call us with; token A is forgotten."""
    if peer.state != Peer.State.INVITED:
        raise _not_allowed("Already registered: PUT updates your credentials")
    peer, token_c = _credentials_take(peer=peer, version=version, data=data)
    logger.info("OCPI peer %s (%s) registered with us, version %s", peer.pk, peer.name, peer.version)
    return peer, token_c


def peer_credentials_update(*, peer: Peer, version: str, data) -> tuple[Peer, str]:
    """PUT by a registered platform: switch to this version, read its endpoints again, new tokens both ways."""
    if peer.state != Peer.State.CONNECTED:
        raise _not_allowed("Not registered yet: POST registers")
    peer, token_c = _credentials_take(peer=peer, version=version, data=data)
    logger.info("OCPI peer %s (%s) updated its credentials, version %s", peer.pk, peer.name, peer.version)
    return peer, token_c


def _credentials_take(*, peer: Peer, version: str, data) -> tuple[Peer, str]:
    """Read the platform's credentials object and endpoints, then store them with a new token for it."""
    credentials = credentials_read(version=version, data=data, peer=peer)
    discovery = peer_discover(versions_url=credentials.url, token=credentials.token, version=version)
    token_c = token_new()
    peer = _peer_connect(peer_id=peer.pk, state=peer.state, credentials=credentials, discovery=discovery,
                         token_in=token_c)
    return peer, token_c


@transaction.atomic
def peer_credentials_delete(*, peer: Peer) -> Peer:
    """DELETE by a registered platform: its tokens stop working, nothing more is sent to it."""
    peer = Peer.objects.select_for_update().get(pk=peer.pk)
    if peer.state != Peer.State.CONNECTED:
        raise _not_allowed("Not registered")
    logger.info("OCPI peer %s (%s) unregistered", peer.pk, peer.name)
    return _peer_suspend(peer)


# --- outbound: we register with a platform ----------------------------------------------------------------

def peer_register(*, versions_url: str, token_a: str, name: str, v211_role: str = "CPO") -> Peer:
    """Register with a platform that gave us its versions URL and a token A (we are the Sender).

    Not atomic as a whole: the platform reads our versions with token B while it answers our POST, so
    B is committed first, as a registration-only token (token_a_digest), and becomes the peer's token
    (token_in_digest) once the platform has answered with its own.
    """
    if Peer.objects.filter(versions_url=versions_url, state=Peer.State.CONNECTED).exists():
        raise OcpiError(f"Already connected to {versions_url}: rotate its credentials instead", status_code=CLIENT_ERROR)
    discovery = peer_discover(versions_url=versions_url, token=token_a)
    token_b = token_new()
    peer = Peer.objects.create(name=name[:100], versions_url=versions_url, token_a_digest=token_digest(token_b),
                               v211_role=v211_role)
    try:
        credentials = _credentials_send(method="POST", discovery=discovery, token=token_a, token_ours=token_b,
                                        peer=peer)
    except OcpiError:
        peer.delete()
        raise
    try:
        peer = _peer_connect(peer_id=peer.pk, state=Peer.State.INVITED, credentials=credentials,
                             discovery=discovery, token_in=token_b)
    except OcpiError:
        # It registered us, we cannot take it (a party of someone else's): tell it we are gone.
        _credentials_delete(url=credentials_url(discovery.endpoints), token=credentials.token,
                            version=discovery.version)
        peer.delete()
        raise
    logger.info("Registered with OCPI peer %s (%s), version %s", peer.pk, peer.name, peer.version)
    return peer


def peer_credentials_rotate(*, peer: Peer) -> Peer:
    """PUT new credentials to a connected platform: it gets a new token B and answers with a new token
    C; both old tokens stop working. Also moves to the highest common version and reads its endpoints."""
    if peer.state != Peer.State.CONNECTED or not peer.token_out:
        raise OcpiError(f"Peer {peer.name} is not connected", status_code=CLIENT_ERROR)
    discovery = peer_discover(versions_url=peer.versions_url, token=secret_decrypt(peer.token_out))
    token_b = token_new()
    Peer.objects.filter(pk=peer.pk).update(token_a_digest=token_digest(token_b))  # good for our versions meanwhile
    try:
        credentials = _credentials_send(method="PUT", discovery=discovery, token=secret_decrypt(peer.token_out),
                                        token_ours=token_b, peer=peer)
    except OcpiError:
        Peer.objects.filter(pk=peer.pk, token_a_digest=token_digest(token_b)).update(token_a_digest="")
        raise
    try:
        peer = _peer_connect(peer_id=peer.pk, state=Peer.State.CONNECTED, credentials=credentials,
                             discovery=discovery, token_in=token_b)
    except OcpiError:
        # The platform has switched to the new tokens already: keep them, whatever else is refused.
        Peer.objects.filter(pk=peer.pk).update(token_a_digest="", token_in_digest=token_digest(token_b),
                                               token_out=secret_encrypt(credentials.token))
        raise
    logger.info("Rotated the credentials of OCPI peer %s (%s), version %s", peer.pk, peer.name, peer.version)
    return peer


def peer_unregister(*, peer: Peer) -> Peer:
    """DELETE our credentials at the platform (best effort), then stop calling it and accepting its token."""
    if peer.token_out:
        _credentials_delete(url=credentials_url(peer.endpoints), token=secret_decrypt(peer.token_out),
                            version=peer.version)
    with transaction.atomic():
        peer = Peer.objects.select_for_update().get(pk=peer.pk)
        logger.info("Unregistered from OCPI peer %s (%s)", peer.pk, peer.name)
        return _peer_suspend(peer)


def _credentials_send(*, method: str, discovery: Discovery, token: str, token_ours: str,
                      peer: Peer | None = None) -> Credentials:
    url = credentials_url(discovery.endpoints)
    body = our_credentials(version=discovery.version, token=token_ours, peer=peer)
    try:
        reply = OcpiClient(token=token, version=discovery.version).request(method, url, json=body, routed=False)
    except PeerError as exc:
        raise OcpiError(f"{method} of our credentials to {url[:200]} failed: {exc}",
                        status_code=CLIENT_API_ERROR) from None
    if not reply.ok:
        raise OcpiError(f"{method} of our credentials to {url[:200]} was refused: HTTP {reply.http_status}, "
                        f"status_code {reply.status_code}: {reply.status_message[:300]}", status_code=CLIENT_API_ERROR)
    try:
        return credentials_read(version=discovery.version, data=reply.data, peer=peer)
    except OcpiError as exc:
        raise OcpiError(f"The credentials {url[:200]} answered: {exc.message}", status_code=CLIENT_API_ERROR) from None


def _credentials_delete(*, url: str | None, token: str, version: str) -> None:
    if not url:
        return
    try:
        reply = OcpiClient(token=token, version=version).delete(url, routed=False)
    except PeerError as exc:
        logger.warning("DELETE of our credentials at %s failed: %s", url, exc)
        return
    if not reply.ok:
        logger.warning("DELETE of our credentials at %s answered HTTP %s, status_code %s",
                       url, reply.http_status, reply.status_code)


# --- the writes both directions share ------------------------------------------------------------------

@transaction.atomic
def _peer_connect(*, peer_id: int, state: str, credentials: Credentials, discovery: Discovery,
                  token_in: str) -> Peer:
    """Store a finished exchange: the peer's token (encrypted), endpoints, roles and parties, and the
    digest of the token it calls us with; the registration token is forgotten."""
    peer = Peer.objects.select_for_update().get(pk=peer_id)
    if peer.state != state:  # a concurrent exchange finished first
        raise _not_allowed("Already registered" if peer.state == Peer.State.CONNECTED else "Not registered")
    before = client_status(peer)
    _parties_sync(peer=peer, parties=credentials.parties)
    peer.state = Peer.State.CONNECTED
    peer.token_a_digest = ""
    peer.token_in_digest = token_digest(token_in)
    peer.token_out = secret_encrypt(credentials.token)
    peer.version, peer.versions_url, peer.endpoints = discovery.version, credentials.url, discovery.endpoints
    peer.roles = [party.as_role() for party in credentials.parties]
    peer.offline_since = None  # it has just answered us
    peer.save()
    peer_status_record(peer=peer, before=before)
    return peer


def _peer_suspend(peer: Peer) -> Peer:
    before = client_status(peer)
    peer.state = Peer.State.SUSPENDED
    peer.token_a_digest = peer.token_in_digest = peer.token_out = ""
    peer.save()
    OutboxEntry.objects.filter(peer=peer, delivered_at__isnull=True).delete()
    peer_status_record(peer=peer, before=before)
    return peer


def _parties_sync(*, peer: Peer, parties: tuple[Party, ...]) -> None:
    kept = []
    for party in parties:
        row, _ = PeerParty.objects.update_or_create(
            peer=peer, role=party.role, country_code=party.country_code, party_id=party.party_id,
            defaults={"cpo": _party_cpo(peer=peer, party=party), "via_hub": False},
        )
        kept.append(row.pk)
    # Parties behind a hub are reported by its HubClientInfo, not by its credentials: they stay.
    peer.parties.exclude(pk__in=kept).filter(via_hub=False).delete()


def peer_party_behind_hub(*, peer: Peer, role: str, country_code: str, party_id: str, status: str = "",
                          last_updated=None) -> tuple[PeerParty, bool]:
    """A party behind a hub peer, as its HubClientInfo reports it or as it first writes for it (a hub
    names only itself in its credentials): (the PeerParty, whether it was created). A CPO party gets its
    catalogue tenant by the rules of a credentials exchange (`_party_cpo`): one that is ours, or
    another peer's or a portal CPO's, is refused with 2001. A report older than the stored one changes nothing."""
    country_code, party_id, role = country_code.upper(), party_id.upper(), role.upper()
    row = PeerParty.objects.select_related("cpo").filter(peer=peer, role=role, country_code=country_code,
                                                         party_id=party_id).first()
    created = row is None
    if created:
        party = Party(role=role, country_code=country_code, party_id=party_id, name=f"{country_code}*{party_id}")
        if role == "CPO" and is_our_party(party):
            raise OcpiError(f"Party {country_code}*{party_id} is this platform's own", status_code=INVALID_PARAMETERS)
        try:
            with transaction.atomic():  # a tenant made for it goes with the row, or not at all
                cpo = _party_cpo(peer=peer, party=party)
                row = PeerParty.objects.create(peer=peer, role=role, country_code=country_code, party_id=party_id,
                                               cpo=cpo, via_hub=True, status=status, last_updated=last_updated)
        except IntegrityError:  # the same report arrived twice at once
            return PeerParty.objects.select_related("cpo").get(
                peer=peer, role=role, country_code=country_code, party_id=party_id), False
        return row, True
    if status and (last_updated is None or row.last_updated is None or last_updated >= row.last_updated):
        row.status, row.last_updated = status, last_updated or row.last_updated
        row.save(update_fields=["status", "last_updated"])
    return row, False


def hub_party_cpo(peer: Peer, country_code: str, party_id: str) -> Cpo | None:
    """The tenant a hub peer writes CPO `country_code`/`party_id` in (peer_party_behind_hub), None when it
    may not."""
    try:
        return peer_party_behind_hub(peer=peer, role="CPO", country_code=country_code, party_id=party_id)[0].cpo
    except OcpiError:
        return None


def _party_cpo(*, peer: Peer, party: Party) -> Cpo | None:
    """The catalogue tenant of a CPO party: created when unknown, kept when this peer has it already
    (an earlier exchange, or an operator's link in the admin); anyone else's is never handed over."""
    if party.role != "CPO" or is_our_party(party):
        return None  # our own party is ours: no peer writes to it
    linked = PeerParty.objects.filter(peer=peer, role="CPO", country_code=party.country_code,
                                      party_id=party.party_id, cpo__isnull=False).select_related("cpo").first()
    if linked is not None:
        return linked.cpo
    cpo = Cpo.objects.filter(country_code=party.country_code, party_id=party.party_id).first()
    if cpo is None:
        try:
            with transaction.atomic():
                return cpo_create(country_code=party.country_code, party_id=party.party_id,
                                  owner_name=party.name)[0]
        except (IntegrityError, ValidationError) as exc:
            # Another exchange created the party meanwhile (the unique constraint caught it): it is theirs.
            cpo = Cpo.objects.filter(country_code=party.country_code, party_id=party.party_id).first()
            if cpo is None:
                raise OcpiError(f"Party {party.country_code}*{party.party_id} (role CPO) cannot be added to the "
                                f"catalogue: {exc}"[:500], status_code=INVALID_PARAMETERS) from None
    if cpo.ocpi_parties.filter(peer=peer).exists():
        return cpo
    raise OcpiError(
        f"Party {party.country_code}*{party.party_id} (role CPO) already exists in this hub's catalogue and "
        "belongs to another account; a credentials exchange does not hand it over. Ask the hub's operator to "
        "link it to your connection, then register again.", status_code=INVALID_PARAMETERS,
    )

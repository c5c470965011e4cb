"""Celery tasks of the OCPI adapter: thin, each loads by id and calls ocpi.outbox / ocpi.pull."""

import logging

from celery import shared_task

from ocpi import outbox, pull
from ocpi.models import Peer

logger = logging.getLogger(__name__)


@shared_task(name="ocpi.push_peer", ignore_result=True)
def push_peer(peer_id: int) -> None:
    outbox.push_kick_taken(peer_id=peer_id)
    peer = Peer.objects.filter(pk=peer_id).first()
    if peer is not None:
        outbox.peer_push(peer=peer)


@shared_task(name="ocpi.push_due", ignore_result=True)
def push_due() -> None:
    outbox.push_due()


@shared_task(name="ocpi.pull_peer", ignore_result=True)
def pull_peer(peer_id: int, full: bool = False) -> dict | None:
    peer = Peer.objects.filter(pk=peer_id).first()
    if peer is None:
        return None
    try:
        summary = pull.peer_pull(peer=peer, full=full)
    except pull.PullError as exc:
        logger.warning("OCPI pull of %s did not complete: %s", peer.name, exc)
        return None
    logger.info("OCPI pull of %s: %s", peer.name, summary.as_dict())
    return summary.as_dict()


@shared_task(name="ocpi.pull_due", ignore_result=True)
def pull_due() -> None:
    for peer_id in pull.pull_due():
        pull_peer.delay(peer_id)


@shared_task(name="ocpi.peers_check", ignore_result=True)
def peers_check() -> None:
    from ocpi.liveness import peers_check as check

    check()

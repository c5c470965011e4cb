"""Field test: every location of every real OCPI feed in ../shared/data/ocpi-feeds/ PUT to our receiver.

The same corpus as tests/field/test_ocpi_feeds.py (which calls `location_upsert` directly), but over HTTP
through the OCPI Locations receiver with the Django test client: each feed's CPO party is a connected peer
that PUTs its locations to /ocpi/{2.2.1|2.1.1}/emsp/locations/{country_code}/{party_id}/{id}. Reasons are
read back from the 2001 answers' status messages. The test prints accepted/rejected per feed with the top
reasons and fails, as the direct field test does, when

* the corpus is not the 17 files of 3849 locations it was surveyed as,
* an answer is not the OCPI envelope, or is anything but 201/200 (accepted) or 400/2001 (rejected) with
  its reasons named (`Invalid Location: <path>: <reason>; ...`),
* a feed the survey found clean loses a location,
* a rejection is not a genuine OCPI violation (the same allow-list), or
* an obvious violation is accepted.

Without ../shared/data everything skips.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from urllib.parse import quote

import pytest
from django.test import Client

from ocpi.models import Peer, PeerParty
from tests.field.test_ocpi_feeds import (
    CLEAN_FEEDS,
    EXPECTED_FILES,
    EXPECTED_LOCATIONS,
    V211,
    CpoCache,
    FeedResult,
    _top,
    load_feeds,
    normalise_path,
    normalise_reason,
    obvious_violations,
    violation_category,
)
from locations.tokens import token_digest

pytestmark = [pytest.mark.field, pytest.mark.django_db]

# "Invalid Location: a.b: reason; evses[0].uid: reason" -> the (path, reason) pairs.
_MESSAGE = re.compile(r"^Invalid Location: ")
_SPLIT = re.compile(r"; (?=[\w.\[\]*]+: |\.\.\. and )")


class Parties:
    """One connected peer per CPO party the feeds name, with the token it PUTs with."""

    def __init__(self) -> None:
        self.cpos = CpoCache()
        self.tokens: dict[int, str] = {}

    def caller(self, feed, location) -> tuple[object, dict]:
        cpo = self.cpos.for_location(feed, location)
        if cpo.pk not in self.tokens:
            token = f"field-{cpo.country_code}-{cpo.party_id}"
            peer = Peer.objects.create(name=f"{feed.name} back end", state=Peer.State.CONNECTED,
                                       token_in_digest=token_digest(token), version=feed.version)
            PeerParty.objects.create(peer=peer, role="CPO", country_code=cpo.country_code, party_id=cpo.party_id,
                                     cpo=cpo)
            self.tokens[cpo.pk] = token
        token = self.tokens[cpo.pk]
        sent = token if feed.version == V211 else base64.b64encode(token.encode()).decode()
        return cpo, {"HTTP_AUTHORIZATION": f"Token {sent}"}


def reasons_of(message: str) -> list[tuple[str, str]]:
    pairs = []
    for part in _SPLIT.split(_MESSAGE.sub("", message)):
        if part.startswith("... and "):  # the message names as many reasons as fit
            break
        path, _, reason = part.partition(": ")
        pairs.append((path, reason))
    return pairs


def put_feed(client: Client, feed, parties: Parties) -> FeedResult:
    result = FeedResult(feed)
    for location in feed.locations:
        cpo, headers = parties.caller(feed, location)
        location_id = location.get("id") if isinstance(location, dict) else None
        url = (f"/ocpi/{feed.version}/emsp/locations/{cpo.country_code}/{cpo.party_id}/"
               f"{quote(str(location_id or '-'), safe='')}")
        response = client.put(url, location, content_type="application/json", **headers)
        try:
            body = response.json()
        except ValueError:
            result.crashes.append((location_id, f"HTTP {response.status_code}, not JSON: {response.content[:200]!r}"))
            continue
        outcome = (response.status_code, body.get("status_code"))
        if outcome in ((200, 1000), (201, 1000)):
            result.accepted += 1
            result.created += response.status_code == 201
            obvious = obvious_violations(feed.version, location)
            if obvious:
                result.obvious_accepted.append((location_id, obvious))
        elif outcome == (400, 2001):
            pairs = reasons_of(body["status_message"])
            if not _MESSAGE.match(body["status_message"]) or not pairs or not all(path and reason
                                                                                  for path, reason in pairs):
                # A peer cannot mend what the answer does not name.
                result.crashes.append((location_id, f"refused without its reasons: {body['status_message'][:200]!r}"))
                continue
            for path, reason in pairs:
                key = (normalise_path(path), normalise_reason(reason))
                result.reasons[key] += 1
                result.examples.setdefault(key, (location_id, reason))
        else:
            result.crashes.append((location_id, f"HTTP {outcome}: {body.get('status_message', '')[:200]}"))
    return result


@pytest.fixture
def _quiet_requests():
    """1,700 answers of 400 would each log a warning line."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def test_every_feed_through_the_ocpi_receiver(shared_data, capsys, _quiet_requests):
    started = time.perf_counter()
    client, parties = Client(), Parties()
    results = [put_feed(client, feed, parties) for feed in load_feeds(shared_data)]
    elapsed = time.perf_counter() - started
    total = sum(result.total for result in results)
    with capsys.disabled():
        print(f"\n\nOCPI feeds PUT to the Locations receiver ({elapsed:.1f} s)")
        print(f"{'feed':<42} {'version':<7} {'total':>5} {'accepted':>8} {'rejected':>8}  top reasons")
        for r in results:
            top = _top(r) or ["-"]
            print(f"{r.feed.path.stem:<42} {r.feed.version:<7} {r.total:>5} {r.accepted:>8} {r.rejected:>8}  {top[0]}")
            for line in top[1:]:
                print(f"{'':<42} {'':<7} {'':>5} {'':>8} {'':>8}  {line}")
        accepted = sum(r.accepted for r in results)
        print(f"{'TOTAL':<42} {'':<7} {total:>5} {accepted:>8} {total - accepted:>8}  ({accepted / total:.1%} accepted)\n")

    failures = []
    if (len(results), total) != (EXPECTED_FILES, EXPECTED_LOCATIONS):
        failures.append(f"the corpus changed: {len(results)} files with {total} locations, surveyed as "
                        f"{EXPECTED_FILES} with {EXPECTED_LOCATIONS}")
    by_name = {result.feed.name: result for result in results}
    for name in CLEAN_FEEDS:
        result = by_name[name]
        if result.accepted != result.total:
            failures.append(f"{name} is clean but only {result.accepted}/{result.total} were accepted: {_top(result, 5)}")
    for result in results:
        failures += [f"{result.feed.name} {location_id!r}: {crash}" for location_id, crash in result.crashes]
        for (path, reason), count in result.reasons.most_common():
            if violation_category(result.feed.version, path, reason) is None:
                location_id, example = result.examples[(path, reason)]
                failures.append(f"{result.feed.name} ({result.feed.version}): {count}x rejected for {path}: "
                                f"{reason!r} -- no genuine OCPI violation (e.g. {location_id!r}: {example!r})")
        if result.obvious_accepted:
            failures.append(f"{result.feed.name}: {len(result.obvious_accepted)} locations with obvious violations "
                            f"accepted, e.g. {result.obvious_accepted[:3]}")
    assert not failures, "\n".join(["", *failures])

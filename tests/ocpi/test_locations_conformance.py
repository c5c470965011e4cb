"""Every Locations example of the OCPI 2.2.1 specification, through our receiver and back out of our sender.

Each example is pushed (PUT/PATCH) to the receiver by the CPO party it names, then read back from the
sender by an unrelated eMSP (and from the receiver by the CPO itself): what comes back must EQUAL what
was sent. What the comparison normalises, and only that, because the specification lets it differ:

- DateTimes are compared as instants: `Z` may be absent (UTC) and fractional seconds may be present
  (types.asciidoc, DateTime);
- an optional field that is absent, null or an empty list is the same (transport_and_format: "Fields
  that are not specified may be considered as null values"; `*` lists may be empty);
- key order of JSON objects (RFC 8259).

Whole locations come back whole. Fragments (energy mixes, opening hours) are put into the first example
location. PATCH examples are applied to the first example location (the spec's URLs name a location
1012 of NL/TNM that no example defines), and the patched object's ancestors must carry the patch's
`last_updated` (mod_locations: "the Receiver SHALL also set the new last_updated value on the parent").
`location_put_example_add_evse.json` breaks the spec's own EVSE/Connector definitions (no power_type,
max_voltage, max_amperage or last_updated in its connector, `floor` for `floor_level`, a number for the
string `physical_reference`): as printed it must be refused with 2001 naming the missing fields; completed
with them it must be accepted and come back equal.

Skips where ../shared/ocpi-spec is absent.
"""

from __future__ import annotations

import copy
import json
from datetime import timezone
from pathlib import Path

import pytest
from django.test import Client

from locations import services
from locations.models import Cpo
from locations.validation import timestamp
from tests.ocpi.locations_fixtures import Caller, connected_peer, emsp_peer, ok, refused  # noqa: F401

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "ocpi-spec" / "2.2.1" / "examples"
RECEIVER = "/ocpi/2.2.1/emsp/locations"
SENDER = "/ocpi/2.2.1/cpo/locations"

WHOLE = sorted(path.name for path in EXAMPLES.glob("location_example*.json")) if EXAMPLES.is_dir() else []
FRAGMENTS = sorted(path.name for path in EXAMPLES.glob("location_*.json")
                   if path.name.startswith(("location_energymix_", "location_hours_", "location_regularhours_"))) \
    if EXAMPLES.is_dir() else []
# PATCH example -> what it patches in location_example.json (location, EVSE uid, connector id).
PATCHES = {
    "location_patch_example_location.json": (),
    "location_patch_example_status.json": ("3256",),
    "location_patch_example_remove_evse.json": ("3257",),
    "location_patch_example_tariff.json": ("3256", "2"),
}


@pytest.fixture(autouse=True)
def _spec():
    if not EXAMPLES.is_dir():
        pytest.skip("../shared/ocpi-spec is absent")


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def normalised(value):
    if isinstance(value, dict):
        return {key: normalised(item) for key, item in value.items() if item not in (None, [], {})}
    if isinstance(value, list):
        return [normalised(item) for item in value]
    if isinstance(value, str) and len(value) >= 19 and value[4:5] == "-" and value[10:11] == "T":
        try:
            return timestamp(value).astimezone(timezone.utc).isoformat()
        except ValueError:
            return value
    return value


def cpo_caller(location: dict) -> Caller:
    """The CPO back end of the example's party (made on first use; trusted, so the hub publishes at once)."""
    country_code, party_id = location["country_code"], location["party_id"]
    cpo = Cpo.objects.filter(country_code=country_code, party_id=party_id).first()
    if cpo is None:
        cpo, _ = services.cpo_create(country_code=country_code, party_id=party_id, owner_name=party_id,
                                     auto_publish=True)
    token = f"cpo-token-{country_code}-{party_id}"
    if not cpo.ocpi_parties.exists():
        connected_peer(f"{party_id} back end", token, cpos=[cpo])
    return Caller(Client(), token)


def url_of(location: dict, *tail: str) -> str:
    return "/".join([RECEIVER, location["country_code"], location["party_id"], location["id"], *tail])


def pushed(location: dict) -> Caller:
    cpo = cpo_caller(location)
    ok(cpo.put(url_of(location), location), 201)
    return cpo


def read_back(location: dict, cpo: Caller, emsp: Caller, *tail: str) -> tuple[dict, dict]:
    """(what the sender gives an eMSP, what the receiver gives the CPO) of the object at `tail`."""
    sent = ok(emsp.get("/".join([SENDER, location["id"], *tail])))["data"]
    stored = ok(cpo.get(url_of(location, *tail)))["data"]
    return sent, stored


# --- whole locations -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", WHOLE)
def test_whole_location_example_comes_back_equal(name, emsp_peer):
    location = example(name)
    cpo = pushed(location)
    sent, stored = read_back(location, cpo, emsp_peer)
    assert normalised(sent) == normalised(location)
    assert normalised(stored) == normalised(location)
    listed = ok(emsp_peer.get(SENDER))["data"]
    assert [normalised(item) for item in listed] == [normalised(location)]
    ok(cpo.put(url_of(location), location), 200)  # the same again: replaced (unchanged), not created


# --- fragments of a location -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FRAGMENTS)
def test_fragment_example_in_a_location_comes_back_equal(name, emsp_peer):
    fragment = example(name)
    if "twentyfourseven" in fragment:  # an Hours object itself
        fragment = {"opening_times": fragment}
    location = {**example("location_example.json"), **fragment}
    cpo = pushed(location)
    sent, _ = read_back(location, cpo, emsp_peer)
    for key, value in fragment.items():
        assert normalised(sent[key]) == normalised(value)
    assert normalised(sent) == normalised(location)


# --- PATCH examples ------------------------------------------------------------------------------------------

def _child(location: dict, uid: str, connector_id: str | None = None) -> dict:
    evse = next(evse for evse in location["evses"] if evse["uid"] == uid)
    return evse if connector_id is None else next(c for c in evse["connectors"] if c["id"] == connector_id)


@pytest.mark.parametrize("name", sorted(PATCHES))
def test_patch_example_is_applied(name, emsp_peer):
    base = example("location_example.json")
    cpo = pushed(base)
    patch = example(name)
    tail = PATCHES[name]
    ok(cpo.patch(url_of(base, *tail), patch), 200)

    expected = copy.deepcopy(base)
    target = expected
    ancestors = [expected]
    if tail:
        target = _child(expected, tail[0])
        if len(tail) == 2:
            ancestors.append(target)
            target = _child(expected, *tail)
    target.update(patch)
    for ancestor in ancestors:
        ancestor["last_updated"] = patch["last_updated"]
    sent, stored = read_back(base, cpo, emsp_peer)
    assert normalised(sent) == normalised(expected)
    assert normalised(stored) == normalised(expected)
    sent_object, _ = read_back(base, cpo, emsp_peer, *tail)
    assert normalised(sent_object) == normalised(target)


# --- the PUT example --------------------------------------------------------------------------------------

def test_put_add_evse_example_refused_as_printed_and_accepted_completed(emsp_peer):
    base = example("location_example.json")
    cpo = pushed(base)
    evse = example("location_put_example_add_evse.json")
    url = url_of(base, evse["uid"])
    message = refused(cpo.put(url, evse), 400, 2001)["status_message"]
    for field in ("power_type", "max_voltage", "max_amperage", "last_updated"):
        assert f"connectors[0].{field}: is required" in message

    completed = copy.deepcopy(evse)
    completed["connectors"][0].update(power_type="AC_3_PHASE", max_voltage=230, max_amperage=16,
                                      last_updated=evse["last_updated"])
    ok(cpo.put(url, completed), 200)  # EVSE 3256 exists in the example location: replaced
    expected = {key: value for key, value in completed.items() if key != "floor"}  # not an OCPI field
    expected["physical_reference"] = str(expected["physical_reference"])
    sent, stored = read_back(base, cpo, emsp_peer, evse["uid"])
    assert normalised(sent) == normalised(expected)
    assert normalised(stored) == normalised(expected)
    # ... and the location's last_updated follows its new EVSE (mod_locations, PUT).
    location, _ = read_back(base, cpo, emsp_peer)
    assert normalised(location["last_updated"]) == normalised(evse["last_updated"])

    new = {**completed, "uid": "3258", "evse_id": "BE*BEC*E041503003"}
    ok(cpo.put(url_of(base, "3258"), new), 201)

"""The fixed cast of every test: CPO `alpha`, its neighbour `bravo`, and an anonymous caller."""

from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache

from emsp import throttle
from locations import services

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real field data beside the project; tests that need it skip cleanly where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (a user's clone has none)")
    return SHARED_DATA


# The hashers of config.settings, as a server hashes passwords.
PRODUCTION_PASSWORD_HASHERS = list(django_settings.PASSWORD_HASHERS)


@pytest.fixture(autouse=True)
def _fast_passwords(request, settings):
    """Passwords set or checked in the tests' process are hashed with MD5: PBKDF2's million rounds cost 0.3-0.5 s
    per user made or login on 2 cores, most of the set-up of every test with a user (and the fuzzer sends
    hundreds). Production's hashers stay listed, so a hash made by a server or command of the real settings
    still verifies. A test marked `production_hashers` keeps the real ones."""
    if request.node.get_closest_marker("production_hashers") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PRODUCTION_PASSWORD_HASHERS]


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def _no_failures_counted_yet():
    """Wrong credentials are counted per client address in the cache (the test's own Redis database, or
    the embedded file cache), and every test calls from the same address: each starts with none, and with no
    note of this process that an address was under its limit."""
    cache.clear()
    throttle.forget_clear()


@pytest.fixture
def alpha(db):
    cpo, token_c = services.cpo_create(country_code="DE", party_id="ALP", owner_name="Alpha Charging GmbH")
    cpo.token_c = token_c
    return cpo


@pytest.fixture
def bravo(db):
    cpo, token_c = services.cpo_create(country_code="DE", party_id="BRV", owner_name="Bravo Energie AG")
    cpo.token_c = token_c
    return cpo


@pytest.fixture
def anonymous(client):
    """A caller with no credentials at all."""
    return client


def location_payload(cpo, ocpi_id: str = "LOC1", **overrides) -> dict:
    """A valid OCPI 2.2.1 Location of `cpo` with one EVSE and two connectors."""
    payload = {
        "country_code": cpo.country_code,
        "party_id": cpo.party_id,
        "id": ocpi_id,
        "publish": True,
        "name": "Marktplatz",
        "address": "Marktplatz 1",
        "city": "Mannheim",
        "postal_code": "68159",
        "country": "DEU",
        "coordinates": {"latitude": "49.494409", "longitude": "8.468098"},
        "time_zone": "Europe/Berlin",
        "evses": [
            {
                "uid": f"{ocpi_id}-E1",
                "evse_id": f"{cpo.country_code}*{cpo.party_id}*E{ocpi_id}1",
                "status": "AVAILABLE",
                "connectors": [
                    {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                     "max_voltage": 230, "max_amperage": 32, "max_electric_power": 22000,
                     "last_updated": "2024-05-01T10:00:00Z"},
                    {"id": "2", "standard": "IEC_62196_T2_COMBO", "format": "CABLE", "power_type": "DC",
                     "max_voltage": 920, "max_amperage": 400, "max_electric_power": 150000,
                     "last_updated": "2024-05-01T10:00:00Z"},
                ],
                "last_updated": "2024-05-01T10:00:00Z",
            }
        ],
        "last_updated": "2024-05-01T10:00:00Z",
    }
    payload.update(overrides)
    return payload


_TRANSACTIONAL_FIXTURES = frozenset({"transactional_db", "live_server"})


def pytest_collection_modifyitems(items):
    """Every transactional test restores the serialized database (`serialized_rollback`). One that does not
    ends with a flush that makes the content types anew, with other ids, and the next test that restores the
    serialized database meets them again: a duplicate key, and every transactional test after it fails."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        kwargs = dict(marker.kwargs) if marker is not None else {}
        transactional = kwargs.get("transaction") or bool(_TRANSACTIONAL_FIXTURES & set(item.fixturenames))
        if transactional and not kwargs.get("serialized_rollback"):
            item.add_marker(pytest.mark.django_db(*(marker.args if marker else ()),
                                                  **{**kwargs, "transaction": True, "serialized_rollback": True}))

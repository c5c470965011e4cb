"""One rule for a location's time zone from its country, whichever way the location came in or goes out."""

import pytest

from locations.timezones import country_time_zone, country_time_zones
from ocpi.modules.locations import objects
from ocpi.webhooks import location_ocpi_of_webhook


@pytest.mark.parametrize("country, zone", [
    ("DE", "Europe/Berlin"), ("DEU", "Europe/Berlin"), ("deu", "Europe/Berlin"),  # Busingen keeps Berlin's clock
    ("FRA", "Europe/Paris"), ("PH", "Asia/Manila"),
    ("USA", None), ("ESP", None),  # zones with different clocks: the location must say
    ("XXX", None), ("", None), (None, None), (49, None), ("DEUTSCHLAND", None),
])
def test_country_time_zone(country, zone):
    assert country_time_zone(country) == zone


def test_the_ocpi_sender_and_the_webhook_use_the_same_rule(alpha):
    assert objects.country_time_zone is country_time_zone
    assert location_ocpi_of_webhook({"name": "x", "address": "a, Mannheim", "lat": "49.4", "lng": "8.4"},
                                    cpo=alpha)["time_zone"] == "Europe/Berlin"
    assert len(country_time_zones("USA")) > 10

"""Routes of the Locations module, in both versions; included by ocpi/urls.py.

Every route is also answered with a trailing slash (the spec's own examples write `.../locations/?offset=50`).
"""

from django.urls import path

from ocpi.modules.locations.receiver import LocationsReceiverRootView, LocationsReceiverView
from ocpi.modules.locations.sender import LocationsSenderView
from ocpi.transport import V211, V221

OBJECT_TAILS = ("/<str:location_id>", "/<str:location_id>/<str:evse_uid>",
                "/<str:location_id>/<str:evse_uid>/<str:connector_id>")
PARTY = "/<str:country_code>/<str:party_id>"


def _routes(version: str) -> list:
    short = version.replace(".", "")
    sender = LocationsSenderView.as_view(version=version)
    receiver = LocationsReceiverView.as_view(version=version)
    root = LocationsReceiverRootView.as_view(version=version)
    cpo, emsp = f"ocpi/{version}/cpo/locations", f"ocpi/{version}/emsp/locations"
    routes = [(cpo, sender, f"ocpi-{short}-cpo-locations"), (emsp, root, f"ocpi-{short}-emsp-locations")]
    routes += [(cpo + tail, sender, None) for tail in OBJECT_TAILS]
    # A URL naming no object (the module URL itself, or only a party): answered in the envelope.
    routes += [(emsp + "/<str:country_code>", root, None), (emsp + PARTY, root, None)]
    routes += [(emsp + PARTY + tail, receiver, None) for tail in OBJECT_TAILS]
    return [path(route, view, name=name) for route, view, name in routes] + \
           [path(route + "/", view) for route, view, _ in routes]


urlpatterns = _routes(V221) + _routes(V211)

"""Versions (version_information_endpoint.asciidoc): which OCPI versions we speak, and our endpoints in each."""

from django.conf import settings
from django.urls import reverse

from ocpi.transport import V211, V221, VERSIONS, OcpiError, OcpiView, envelope, public_url

# (module, role, url name). We are a hub: the CPO role sends our catalogue, the eMSP role receives CPOs'.
# 2.1.1's version details have no role, so a module is listed once there: locations is our sender, or
# our receiver to a peer that plays CPO in 2.1.1 (version_details); we also pull those (ocpi_pull).
ENDPOINTS = {
    V221: [
        ("credentials", "SENDER", "ocpi-221-credentials"),
        ("locations", "SENDER", "ocpi-221-cpo-locations"),
        ("locations", "RECEIVER", "ocpi-221-emsp-locations"),
        # One URL, both roles (ocpi/modules/hubclientinfo/views.py); the SENDER as a hub only.
        ("hubclientinfo", "SENDER", "ocpi-221-hubclientinfo"),
        ("hubclientinfo", "RECEIVER", "ocpi-221-hubclientinfo"),
    ],
    V211: [
        ("credentials", None, "ocpi-211-credentials"),
        ("locations", None, "ocpi-211-cpo-locations"),
    ],
}


def version_details(version: str, *, v211_role: str | None = None) -> dict:
    """`v211_role`: the role the caller's peer plays in 2.1.1 (Peer.v211_role), where 2.1.1 lists one
    `locations` per platform: to a CPO our receiver (it PUTs its locations there), to an eMSP (and to
    callers that are no peer) our sender."""
    endpoints = []
    for identifier, role, name in ENDPOINTS[version]:
        if version == V211 and identifier == "locations" and v211_role == "CPO":
            name = "ocpi-211-emsp-locations"
        if (identifier, role) == ("hubclientinfo", "SENDER") and not settings.EVHUB_OCPI_HUB:
            continue
        endpoint = {"identifier": identifier, "url": public_url(reverse(name))}
        if role is not None:
            endpoint["role"] = role
        endpoints.append(endpoint)
    return {"version": version, "endpoints": endpoints}


class VersionsView(OcpiView):
    routed = False
    allow_token_a = True

    def get(self, request):
        return envelope([{"version": version, "url": public_url(reverse(f"ocpi-{version}"))}
                         for version in VERSIONS])


class VersionDetailsView(OcpiView):
    routed = False
    allow_token_a = True

    def get(self, request):
        if self.version not in ENDPOINTS:
            raise OcpiError(f"Unsupported version {self.version}", status_code=3002, http_status=404)
        peer = self.caller.peer  # token A too: an invited peer carries its 2.1.1 role before it registers
        return envelope(version_details(self.version, v211_role=peer.v211_role if peer is not None else None))

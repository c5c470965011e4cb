"""OCPI routes: /ocpi/versions, then one tree per version. Each module adds its routes here."""

from django.urls import path

from ocpi import credentials, versions
from ocpi import webhooks
from ocpi.modules.hubclientinfo.routes import urlpatterns as hubclientinfo_urlpatterns
from ocpi.modules.locations.routes import urlpatterns as locations_urlpatterns
from ocpi.transport import V211, V221

urlpatterns = [
    path("ocpi/versions", versions.VersionsView.as_view(), name="ocpi-versions"),
    path("ocpi/2.2.1", versions.VersionDetailsView.as_view(version=V221), name=f"ocpi-{V221}"),
    path("ocpi/2.1.1", versions.VersionDetailsView.as_view(version=V211), name=f"ocpi-{V211}"),
    # credentials (ocpi/credentials.py)
    path("ocpi/2.2.1/credentials", credentials.CredentialsView.as_view(version=V221), name="ocpi-221-credentials"),
    path("ocpi/2.1.1/credentials", credentials.CredentialsView.as_view(version=V211), name="ocpi-211-credentials"),
    # locations (ocpi/modules/locations/)
    *locations_urlpatterns,
    # hubclientinfo (ocpi/modules/hubclientinfo/)
    *hubclientinfo_urlpatterns,
    # webhooks (ocpi/webhooks.py)
    path("ocpi/cpo/api/v1/webhook/locations/<str:country_code>/<str:party_id>",
         webhooks.LocationsWebhookView.as_view(), name="webhook-locations"),
    path("ocpi/cpo/api/v1/webhook/evse/<str:country_code>/<str:party_id>",
         webhooks.EvseWebhookView.as_view(), name="webhook-evse"),
]

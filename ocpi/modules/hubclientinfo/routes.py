"""Routes of the HubClientInfo module (2.2.1 only); included by ocpi/urls.py. Also answered with a trailing
slash (the spec's examples write `.../hubclientinfo/?offset=50`)."""

from django.urls import path

from ocpi.modules.hubclientinfo.views import HubClientInfoView
from ocpi.transport import V221

_view = HubClientInfoView.as_view(version=V221)
_ROOT = "ocpi/2.2.1/hubclientinfo"

urlpatterns = [
    path(_ROOT, _view, name="ocpi-221-hubclientinfo"),
    path(_ROOT + "/", _view),
    path(_ROOT + "/<str:country_code>/<str:party_id>", _view),
    path(_ROOT + "/<str:country_code>/<str:party_id>/", _view),
]

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.errors import json_not_found, json_server_error
from config.graphql import graphql_view
from config.health import health
from config.map import map_page, map_places, map_search

urlpatterns = [
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("graphql", graphql_view, name="graphql"),
    path("graphql/", graphql_view),
    path("map/", map_page, name="map"),
    path("map/places", map_places, name="map-places"),
    path("map/search", map_search, name="map-search"),
    path("", include("ocpi.urls")),
    path("", include("emsp.urls")),
    path("", include("emsp.drivers.urls")),
]

handler404 = json_not_found
handler500 = json_server_error

if not settings.AWS_STORAGE_BUCKET_NAME:
    # Local files are served by the app itself in the embedded install; S3 serves its own.
    urlpatterns.append(path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}))

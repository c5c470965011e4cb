"""Errors outside any view: API paths answer in the portal envelope, never with an HTML page or a trace."""

from django.http import JsonResponse
from django.views.defaults import page_not_found, server_error

from ocpi.transport import CLIENT_ERROR, SERVER_ERROR, envelope

API_PREFIXES = ("/ocpi/", "/api/", "/graphql")
# The OCPI protocol's own paths (as opposed to the portal's /ocpi/cpo/...) answer in OCPI's envelope.
OCPI_PREFIXES = ("/ocpi/versions", "/ocpi/2.")


def _envelope(status: int, message: str) -> JsonResponse:
    return JsonResponse({"status": status, "data": [], "message": message}, status=status)


def json_not_found(request, exception=None):
    if request.path.startswith(OCPI_PREFIXES):
        return envelope(status_code=CLIENT_ERROR, message=f"No OCPI endpoint at {request.path}", http_status=404)
    if request.path.startswith(API_PREFIXES):
        return _envelope(404, f"Not Found: no endpoint at {request.path}")
    return page_not_found(request, exception)


def json_server_error(request):
    if request.path.startswith(OCPI_PREFIXES):
        return envelope(status_code=SERVER_ERROR, message="Internal server error", http_status=500)
    if request.path.startswith(API_PREFIXES):
        return _envelope(500, "Internal Server Error")
    return server_error(request)

"""An app's `POST /graphql`, answered at the WSGI level (config/wsgi.py wraps Django's handler with `api_lane`).

A driver's app asks one thing most of the time: a search, answered by one prepared statement
(locations.graphql_compiled). Django's handler and the middleware a browser needs cost it CPU for nothing:
1.18-1.30 ms of CPU per search in process through the whole handler, 0.96-1.06 ms through this lane
(1,000,000 locations; two runs of 2,500 searches each way, in turn, in one process). So such a request
takes the lane, which does what the handler and the middleware do for it, with Django's and django-guid's
own functions:

- the request signals (`request_started`, and `request_finished` when the server closes the response:
  the database connections' age and health, the caches, the request id cleared);
- the request id (django-guid: the caller's valid `X-Request-ID` or a new one, on the response too);
- the Host against ALLOWED_HOSTS, the security headers (SecurityMiddleware), `X-Frame-Options`,
  `Content-Length`; an exception becomes Django's 500 (or 400) response, and a response of 400 or more is
  logged as the handler logs it;
- the view (config.graphql.graphql_view: authentication, the body's checks, the compiled search or
  graphene).

It skips what does nothing for this request: static files, sessions, CSRF (the view is exempt), the session
user, messages, and URL resolution (both paths are graphql_view). Anything else goes to Django's
handler, untouched: another path or method, a query string, a browser's `Accept: text/html`, another
content type, a Host not allowed (Django answers 400 and logs it), a request SECURE_SSL_REDIRECT sends
to https, and every request while DISALLOWED_USER_AGENTS or PREPEND_WWW are set.
`tests/graphql/test_api_lane.py` sends requests both ways and compares status, headers and body.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_script_name
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import set_script_prefix
from django.utils.log import log_response
from django_guid.middleware import process_incoming_request, process_outgoing_request

API_PATHS = ("/graphql", "/graphql/")  # config.urls: both are graphql_view


def api_lane(django_application):
    """The WSGI application: an app's POST /graphql on the lane, everything else to `django_application`."""
    from config.graphql import graphql_view, is_api_post

    def unused(_request):  # the middleware below is used for its process_* methods only
        raise AssertionError

    security, common, xframe = SecurityMiddleware(unused), CommonMiddleware(unused), XFrameOptionsMiddleware(unused)
    view = convert_exception_to_response(graphql_view)

    @convert_exception_to_response
    def respond(request):
        process_incoming_request(request)
        response = view(request)
        response = xframe.process_response(request, common.process_response(request, response))
        response = security.process_response(request, response)
        process_outgoing_request(response, request)
        return response

    def application(environ, start_response):
        # A query string, whatever it holds, is Django's to read (too many fields: its 400).
        if (environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") not in API_PATHS
                or environ.get("QUERY_STRING") or settings.DISALLOWED_USER_AGENTS or settings.PREPEND_WWW):
            return django_application(environ, start_response)
        request = WSGIRequest(environ)  # reads nothing of the body yet: Django's handler can still take it
        if not is_api_post(request) or not _host_allowed(request) or (security.redirect and not request.is_secure()):
            return django_application(environ, start_response)
        set_script_prefix(get_script_name(environ))
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        response = respond(request)
        response._handler_class = WSGIHandler  # its close() sends request_finished, as the handler's
        response._resource_closers.append(request.close)
        if response.status_code >= 400:
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        start_response(f"{response.status_code} {response.reason_phrase}",
                       [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())])
        return response

    return application


def _host_allowed(request) -> bool:
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return True

"""An app's `POST /graphql` past the middleware only a browser needs (`ApiLaneHandler`: config/wsgi.py).

A driver's app asks one thing most of the time: a search, answered by one prepared statement
(locations.graphql_compiled). Django's handler and the middleware a browser needs cost it CPU for nothing:
1.18-1.30 ms of CPU per search in process through the whole handler, 0.96-1.06 ms through this lane
(1,000,000 locations; two runs of 2,500 searches each way, in turn, in one process). So such a request
takes the lane: Django's own WSGI handler (the request signals, the request object, the response's headers,
its log line for a 4xx/5xx) whose middleware chain, for this request only, is the lane's, made of Django's
and django-guid's own functions:

- the request id (django-guid: the caller's valid `X-Request-ID` or a new one, on the response too);
- the Host against ALLOWED_HOSTS, the security headers (SecurityMiddleware), `X-Frame-Options`,
  `Content-Length`; an exception becomes Django's 500 (or 400) response;
- the view (config.graphql.graphql_view: authentication, the body's checks, the compiled search or
  graphene).

It skips what does nothing for this request: static files, sessions, CSRF (the view is exempt), the session
user, messages, and URL resolution (both paths are graphql_view). Anything else takes the whole chain of
settings.MIDDLEWARE, as in Django's own handler: another path or method, a query string, a browser's
`Accept: text/html`, another content type, a Host not allowed (Django answers 400 and logs it), a request
SECURE_SSL_REDIRECT sends to https, and every request while DISALLOWED_USER_AGENTS or PREPEND_WWW are set.
`tests/graphql/test_api_lane.py` sends requests to it and to Django's handler and compares status, headers
and body.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django_guid.middleware import process_incoming_request, process_outgoing_request

API_PATHS = ("/graphql", "/graphql/")  # config.urls: both are graphql_view


class ApiLaneHandler(WSGIHandler):
    """Django's WSGI handler; an app's POST /graphql takes the lane's chain, every other request the chain of
    settings.MIDDLEWARE (`whole_chain`)."""

    def load_middleware(self, is_async=False):
        from config.graphql import graphql_view

        super().load_middleware(is_async)
        self.whole_chain = self._middleware_chain

        def unused(_request):  # the middleware below is used for its process_* methods only
            raise AssertionError

        self.security = SecurityMiddleware(unused)
        common, xframe = CommonMiddleware(unused), XFrameOptionsMiddleware(unused)
        view = convert_exception_to_response(graphql_view)

        @convert_exception_to_response
        def lane(request):
            process_incoming_request(request)
            response = view(request)
            response = xframe.process_response(request, common.process_response(request, response))
            response = self.security.process_response(request, response)
            process_outgoing_request(response, request)
            return response

        self._middleware_chain = lambda request: (lane if self.takes(request) else self.whole_chain)(request)

    def takes(self, request) -> bool:
        """Whether the request takes the lane: an app's POST /graphql that no middleware it skips would answer."""
        from config.graphql import is_api_post

        # A query string, whatever it holds, is the whole chain's to read (too many fields: its 400).
        return (request.path_info in API_PATHS and not request.META.get("QUERY_STRING") and is_api_post(request)
                and not settings.DISALLOWED_USER_AGENTS and not settings.PREPEND_WWW and _host_allowed(request)
                and not (self.security.redirect and not request.is_secure()))


def _host_allowed(request) -> bool:
    try:
        request.get_host()
    except DisallowedHost:
        return False
    return True

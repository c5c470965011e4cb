import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)  # as django.core.wsgi.get_wsgi_application does

from config.api_lane import ApiLaneHandler  # noqa: E402  (after Django's set-up)

# Django's handler, with an app's POST /graphql past the middleware only a browser needs (config/api_lane.py).
application = ApiLaneHandler()

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

from config.api_lane import api_lane  # noqa: E402  (after Django's set-up)

# An app's POST /graphql past the middleware only a browser needs (config/api_lane.py); the rest to Django.
application = api_lane(django_application)

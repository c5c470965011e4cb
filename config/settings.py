"""The one settings module of evhub, driven by environment variables.

With nothing set it runs embedded: SQLite, files and a file-system Celery broker under `var/`,
so `make run` needs no server. `DATABASE_URL`, `REDIS_URL` and the `AWS_*` storage variables switch
to PostgreSQL, Redis and S3 (see README, "Configuration").
"""

from datetime import timedelta
from pathlib import Path

import environ

from config.public_url import public_base_url

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.path("EVHUB_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The embedded default gets a key of its own, kept in var/ so sessions survive restarts;
# production sets DJANGO_SECRET_KEY.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    from config.secret_key import local_secret_key

    SECRET_KEY = local_secret_key(VAR_DIR / "secret_key")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
PUBLIC_BASE_URL = public_base_url(environ=env.ENVIRON, var_dir=VAR_DIR)  # config/public_url.py says how

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_guid",
    "graphene_django",
    "locations",
    "vehicles",
    "emsp",
    "ocpi",
    "config",  # hosts the commands that span apps (demo data)
]

MIDDLEWARE = [
    # Outermost: OCPI echoes the peer's own X-Request-ID / X-Correlation-ID, which django-guid would replace.
    "ocpi.transport.ocpi_headers_middleware",
    "django_guid.middleware.guid_middleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The OCPI sender's covering index (INCLUDE) is a PostgreSQL feature; SQLite builds it without the extra column.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
# An empty DATABASE_URL (as in `DATABASE_URL= make test-smoke`) means unset: the embedded SQLite.
DATABASES = {"default": env.db_url_config(env.str("DATABASE_URL", default="")
                                          or f"sqlite:///{VAR_DIR / 'evhub.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker writes; the busy timeout rides out short locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
else:
    # A process keeps its connection 10 minutes (health-checked before each request's first query): a new
    # PostgreSQL backend starts with empty catalogue caches and no prepared statements, and its first search
    # cost ~30 ms of SQL where a warm one costs ~1 (config/warmup.py), once a minute per worker at 60 s.
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=600))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend whose health check asks the socket before it sends SELECT 1 (config/postgresql).
        DATABASES["default"]["ENGINE"] = "config.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, cache, locks ----------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # Django's Redis backend, keeping one redis client per connection pool (config/cache.py: 0.1 ms a call)
    CACHES = {"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    # A file cache is shared by web, worker and beat processes, which the heartbeat needs.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery --------------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "config.tasks.heartbeat", "schedule": timedelta(minutes=1)},
    # OCPI push retries (ocpi/outbox.py) and pulls of connected CPOs (ocpi/pull.py).
    "ocpi.push_due": {"task": "ocpi.push_due", "schedule": timedelta(minutes=1)},
    # Cars due for a poll (vehicles/sync.py); each car's own next_poll_at decides, this only looks.
    "vehicles.dispatch_due": {"task": "vehicles.dispatch_due",
                              "schedule": timedelta(seconds=env.float("EVHUB_VEHICLES_DISPATCH_SECONDS", default=10))},
}
CELERY_TIMEZONE = "UTC"
HEARTBEAT_MAX_AGE = timedelta(minutes=2)

# --- Storage ---------------------------------------------------------------------------------------
MEDIA_ROOT = env.path("EVHUB_MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "/media/"
STATIC_ROOT = env.path("EVHUB_STATIC_ROOT", default=str(VAR_DIR / "static"))
STATIC_URL = "/static/"
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default=None)
    AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default=None)
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = env.bool("AWS_QUERYSTRING_AUTH", default=True)
    AWS_S3_FILE_OVERWRITE = False
    default_storage = {"BACKEND": "storages.backends.s3.S3Storage"}
else:
    default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
UPLOAD_MAX_BYTES = env.int("EVHUB_UPLOAD_MAX_BYTES", default=5 * 1024 * 1024)
# The national register of Germany as CSV is about 55 MB (2026): it fits, as a CPO would expect.
EVHUB_CSV_MAX_BYTES = env.int("EVHUB_CSV_MAX_BYTES", default=100 * 1024 * 1024)
# CSV uploads up to this size are imported in their request; larger ones, and any still running after
# EVHUB_CSV_SYNC_SECONDS, by a Celery worker (locations.csv_import.jobs), within EVHUB_CSV_JOB_SECONDS.
EVHUB_CSV_SYNC_MAX_BYTES = env.int("EVHUB_CSV_SYNC_MAX_BYTES", default=1024 * 1024)
EVHUB_CSV_SYNC_SECONDS = env.float("EVHUB_CSV_SYNC_SECONDS", default=10.0)
EVHUB_CSV_JOB_SECONDS = env.int("EVHUB_CSV_JOB_SECONDS", default=1800)
# Uploads above this size go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Auth ---------------------------------------------------------------------------------------------
# Portal sessions: a short-lived access token, a rotating refresh token (a used one stops working).
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("EVHUB_ACCESS_TOKEN_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("EVHUB_REFRESH_TOKEN_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}
# Failed logins allowed per window, per username and per client address, before a 429.
LOGIN_FAILURES_PER_USERNAME = env.int("EVHUB_LOGIN_FAILURES_PER_USERNAME", default=5)
LOGIN_FAILURES_PER_ADDRESS = env.int("EVHUB_LOGIN_FAILURES_PER_ADDRESS", default=20)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("EVHUB_LOGIN_FAILURE_WINDOW_SECONDS", default=900)


def _failures_per_window(name: str, default: str) -> tuple[int, int]:
    """`"<failures>/<seconds>"`, e.g. `20/300`."""
    value = env.str(name, default=default)
    failures, _, seconds = value.partition("/")
    try:
        parsed = int(failures), int(seconds)
    except ValueError:
        parsed = (0, 0)
    if parsed[0] < 1 or parsed[1] < 1:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"{name} must be '<failures>/<seconds>', both at least 1, not {value!r}")
    return parsed


# Wrong credentials of each kind allowed per client address in a window (emsp.throttle), before a 429.
# Machine tokens are long random strings: their limit is against floods, and its window short, so that a
# peer that sent a stale token is soon let in again. Old passwords are counted per user too.
CREDENTIAL_FAILURE_LIMITS = {
    "client_key": _failures_per_window("EVHUB_FAILED_CLIENT_KEYS", "20/300"),
    "access_token": _failures_per_window("EVHUB_FAILED_ACCESS_TOKENS", "20/300"),
    "token_c": _failures_per_window("EVHUB_FAILED_TOKENS_C", "20/300"),
    "ocpi_token": _failures_per_window("EVHUB_FAILED_OCPI_TOKENS", "20/300"),
    "old_password": _failures_per_window("EVHUB_FAILED_OLD_PASSWORDS", "5/900"),
}
# How long a process takes an address found under its limit to stay so, unless it fails meanwhile (emsp.throttle;
# 0: read the cache for every credential).
EVHUB_THROTTLE_CLEAR_SECONDS = env.float("EVHUB_THROTTLE_CLEAR_SECONDS", default=1.0)
# Reverse proxies in front of the hub that append to X-Forwarded-For: 0 trusts the header not at all
# (the client is REMOTE_ADDR); N takes its Nth address from the right. Too high, and clients choose their
# own address; too low, and every client has the proxy's (and shares its limits).
EVHUB_TRUSTED_PROXY_HOPS = env.int("EVHUB_TRUSTED_PROXY_HOPS", default=0)
# Set-password links sent at registration stay valid this long.
PASSWORD_RESET_TIMEOUT = env.int("EVHUB_PASSWORD_LINK_SECONDS", default=3 * 24 * 3600)

# Mail: SMTP from EMAIL_URL (e.g. smtp+tls://user:pass@host:587); the embedded default writes files to var/mail.
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="evhub <no-reply@evhub.invalid>")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Hub ----------------------------------------------------------------------------------------------
# Country of the hub's own party and the default for CPOs that register without one.
EVHUB_COUNTRY_CODE = env.str("EVHUB_COUNTRY_CODE", default="DE")
EVHUB_PARTY_ID = env.str("EVHUB_PARTY_ID", default="EVH")
EVHUB_BUSINESS_NAME = env.str("EVHUB_BUSINESS_NAME", default="evhub")
# Keys that encrypt stored secrets we must send (peers' OCPI tokens, car makers' tokens); the first
# encrypts, all decrypt, so a key can be rotated by putting a new one first. Default: SECRET_KEY.
EVHUB_ENCRYPTION_KEYS = env.list("EVHUB_ENCRYPTION_KEYS", default=[])

# --- OCPI (ocpi/) --------------------------------------------------------------------------------------
# Page size of our OCPI sender lists (X-Limit): a client may ask for less, never more.
# A list's page when the peer asks for no limit, and the largest it may ask for (X-Limit): a pull of a
# whole catalogue goes faster in pages of 1,000 (fewer requests and counts), an app's GET stays small.
OCPI_PAGE_SIZE = env.int("EVHUB_OCPI_PAGE_SIZE", default=100)
OCPI_PAGE_LIMIT = env.int("EVHUB_OCPI_PAGE_LIMIT", default=1000)
# Outbound calls to URLs that peers gave us: timeouts (seconds), retries of idempotent calls, and the
# networks they may reach besides public addresses (none by default; tests and the demo allow loopback).
OCPI_CONNECT_TIMEOUT = env.float("EVHUB_OCPI_CONNECT_TIMEOUT", default=5.0)
OCPI_READ_TIMEOUT = env.float("EVHUB_OCPI_READ_TIMEOUT", default=30.0)
OCPI_RETRIES = env.int("EVHUB_OCPI_RETRIES", default=2)
OCPI_ALLOWED_NETWORKS = env.list("EVHUB_OCPI_ALLOWED_NETWORKS", default=[])
# Pulls of connected CPOs' locations (by date_from after the first full pull), every N minutes; 0 = off.
OCPI_PULL_MINUTES = env.int("EVHUB_OCPI_PULL_MINUTES", default=15)
if OCPI_PULL_MINUTES > 0:
    CELERY_BEAT_SCHEDULE["ocpi.pull_due"] = {"task": "ocpi.pull_due", "schedule": timedelta(minutes=OCPI_PULL_MINUTES)}
# The platform's OCPI role: a hub (credentials report role HUB only; the parties connected to it are
# told about each other through HubClientInfo), or a plain CPO/eMSP platform (roles CPO and EMSP of our
# party, and a CPO role for every party whose locations we send).
EVHUB_OCPI_HUB = env.bool("EVHUB_OCPI_HUB", default=True)
# Still-alive check of connected peers (mod_hub_client_info: GET of their versions), every N seconds; 0 = off.
EVHUB_OCPI_PEER_CHECK_SECONDS = env.int("EVHUB_OCPI_PEER_CHECK_SECONDS", default=300)
if EVHUB_OCPI_PEER_CHECK_SECONDS > 0:
    CELERY_BEAT_SCHEDULE["ocpi.peers_check"] = {"task": "ocpi.peers_check",
                                                "schedule": timedelta(seconds=EVHUB_OCPI_PEER_CHECK_SECONDS)}

# --- API and docs -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": ["emsp.parsers.StrictJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "evhub API",
    "DESCRIPTION": "OCPI-compliant hub for electric-vehicle charging: CPO portal, webhooks and OCPI.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies documented apart from responses: a multipart file is `format: binary` (a file part),
    # not the URI a FileField reads back as, so that clients and Swagger's "Try it out" send a file.
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from the package, so the docs work on a machine without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# GraphQL (config.graphql): the schema, and whether clients may introspect it (GraphiQL needs it).
GRAPHENE = {"SCHEMA": "config.schema.schema", "ATOMIC_MUTATIONS": False}
# The schema is public in the docs; introspection serves GraphiQL. Off unless asked (or DEBUG): `make run`
# asks for it, so that the demo's GraphiQL completes queries.
GRAPHQL_INTROSPECTION = env.bool("EVHUB_GRAPHQL_INTROSPECTION", default=DEBUG)
# Seconds a process keeps a front end's accepted client key before looking it up again (emsp.services):
# a key revoked elsewhere stops working within this time.
CLIENT_KEY_CACHE_SECONDS = env.int("EVHUB_CLIENT_KEY_CACHE_SECONDS", default=10)

# --- Logging: one line per event, each with the request id ----------------------------------------
from django_guid.integrations import CeleryIntegration  # noqa: E402

DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,
    # The request id travels with the tasks it enqueues, so a worker's log lines name it too.
    "INTEGRATIONS": [CeleryIntegration(use_django_logging=True, log_parent=True)],
}
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.logging.RequestIdFilter"}},
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "line", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django_guid": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}

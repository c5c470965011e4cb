"""`/health/`: is every part of the hub working, and when did the worker last beat."""

import uuid
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app as celery_app
from config.tasks import HEARTBEAT_CACHE_KEY


def _failure(exc: Exception) -> dict:
    # The class name tells an operator what broke without leaking connection strings or secrets.
    return {"status": "error", "error": exc.__class__.__name__}


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure is a failed check
        return _failure(exc)
    return {"status": "ok", "vendor": connection.vendor}


def check_broker() -> dict:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
    except Exception as exc:  # noqa: BLE001
        return _failure(exc)
    return {"status": "ok", "transport": str(transport)}


def check_storage() -> dict:
    name = f"health/{uuid.uuid4().hex}.txt"
    try:
        saved = default_storage.save(name, ContentFile(b"ok"))
        default_storage.delete(saved)
    except Exception as exc:  # noqa: BLE001
        return _failure(exc)
    return {"status": "ok", "backend": default_storage.__class__.__name__}


def check_heartbeat() -> dict:
    try:
        raw = cache.get(HEARTBEAT_CACHE_KEY)
    except Exception as exc:  # noqa: BLE001
        return _failure(exc)
    if raw is None:
        return {"status": "error", "error": "no heartbeat yet: is the worker and beat running?", "last_run": None}
    last_run = datetime.fromisoformat(raw)
    age = timezone.now() - last_run
    status = "ok" if age <= settings.HEARTBEAT_MAX_AGE else "error"
    result = {"status": status, "last_run": raw, "age_seconds": round(age.total_seconds(), 1)}
    if status != "ok":
        result["error"] = "heartbeat is stale: the worker or beat has stopped"
    return result


CHECKS = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
    "heartbeat": check_heartbeat,
}


@never_cache
@require_GET
def health(request):
    checks = {name: check() for name, check in CHECKS.items()}
    healthy = all(c["status"] == "ok" for c in checks.values())
    body = {"status": "ok" if healthy else "error", "checks": checks, "time": timezone.now().isoformat()}
    return JsonResponse(body, status=200 if healthy else 503)

"""`/health/`: every part checked, and the heartbeat that a real worker writes."""

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from config.tasks import HEARTBEAT_CACHE_KEY, heartbeat

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


@pytest.fixture(autouse=True)
def _no_heartbeat_yet():
    cache.delete(HEARTBEAT_CACHE_KEY)
    yield
    cache.delete(HEARTBEAT_CACHE_KEY)


def test_health_reports_every_part_and_fails_without_a_heartbeat(anonymous):
    response = anonymous.get("/health/")
    body = response.json()
    assert response.status_code == 503
    assert set(body["checks"]) == {"database", "broker", "storage", "heartbeat"}
    for part in ("database", "broker", "storage"):
        assert body["checks"][part]["status"] == "ok", body["checks"][part]
    assert body["checks"]["heartbeat"]["status"] == "error"
    assert "worker" in body["checks"]["heartbeat"]["error"]


def test_a_stale_heartbeat_is_an_error(anonymous):
    cache.set(HEARTBEAT_CACHE_KEY, (timezone.now() - timedelta(minutes=5)).isoformat(), timeout=None)
    check = anonymous.get("/health/").json()["checks"]["heartbeat"]
    assert check["status"] == "error" and "stale" in check["error"]
    assert check["age_seconds"] >= 300


def test_a_real_worker_beats_on_start_and_health_turns_ok(anonymous):
    # A worker process of its own, as `make run` starts it: it sends a heartbeat as soon as it is ready.
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "WARNING"],
        cwd=settings.BASE_DIR, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while cache.get(HEARTBEAT_CACHE_KEY) is None and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    response = anonymous.get("/health/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["heartbeat"]["age_seconds"] < 120


def test_beat_schedules_the_heartbeat_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["heartbeat"]
    assert entry["task"] == heartbeat.name
    assert entry["schedule"] == timedelta(minutes=1)


def test_a_failing_part_is_reported_without_leaking_details(anonymous, settings, monkeypatch):
    from django.core.files.storage import default_storage

    def broken(*args, **kwargs):
        raise PermissionError("/secret/path is not writable")

    monkeypatch.setattr(default_storage, "save", broken)
    body = anonymous.get("/health/").json()
    assert body["checks"]["storage"] == {"status": "error", "error": "PermissionError"}
    assert "/secret/path" not in str(body)


def test_health_only_answers_get(anonymous):
    assert anonymous.post("/health/").status_code == 405

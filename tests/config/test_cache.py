"""The production cache backend (config/cache.py) on the real Redis: Django's, keeping one client per pool."""

import os

import pytest
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from config.cache import RedisCache

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the Redis backend needs REDIS_URL")


def test_the_configured_cache_is_ours_and_reuses_its_client():
    backend = cache._cache.__class__.__module__
    assert backend == "config.cache"
    client = cache._cache.get_client("a")
    assert cache._cache.get_client("b") is client
    assert cache._cache.get_client("c", write=True) is client  # one server: reads and writes share a pool


def test_it_answers_as_django_s_backend_does():
    ours, django_s = RedisCache(os.environ["REDIS_URL"], {}), DjangoRedisCache(os.environ["REDIS_URL"], {})
    prefix = f"test-config-cache-{os.getpid()}"
    try:
        for backend, name in ((ours, "ours"), (django_s, "django")):
            key = f"{prefix}-{name}"
            assert backend.add(key, 1, 30) is True
            assert backend.add(key, 5, 30) is False
            assert backend.incr(key) == 2
            backend.set(f"{key}-obj", {"a": [1, 2]}, 30)
        for key in ("", "-obj"):
            assert ours.get_many([f"{prefix}-ours{key}"]) == {f"{prefix}-ours{key}": django_s.get(f"{prefix}-django{key}")}
        assert ours.get(f"{prefix}-django") == 2  # the same keys and values in Redis
    finally:
        ours.delete_many([f"{prefix}-{name}{key}" for name in ("ours", "django") for key in ("", "-obj")])

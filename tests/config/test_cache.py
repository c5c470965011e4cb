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


def test_get_many_reads_on_its_own_connection_and_makes_it_again_when_lost():
    import redis

    ours = RedisCache(os.environ["REDIS_URL"], {})
    prefix = f"test-config-cache-many-{os.getpid()}"
    other = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        ours.set(f"{prefix}-a", 3, 30)
        ours.set(f"{prefix}-b", {"x": 1}, 30)
        keys = [f"{prefix}-a", f"{prefix}-missing", f"{prefix}-b"]
        assert ours.get_many(keys) == {f"{prefix}-a": 3, f"{prefix}-b": {"x": 1}}
        assert ours.get_many([]) == {} == DjangoRedisCache(os.environ["REDIS_URL"], {}).get_many([])
        reader = ours._cache._reader()
        assert ours._cache._reader() is reader
        reader.send_command("CLIENT", "ID")
        assert other.client_kill_filter(_id=reader.read_response()) == 1  # as a Redis restart would
        assert ours.get_many(keys) == {f"{prefix}-a": 3, f"{prefix}-b": {"x": 1}}
        pid = os.fork()
        if pid == 0:  # a forked worker makes a connection of its own, and reads on it
            os._exit(0 if ours._cache._reader() is not reader and ours.get_many(keys)[f"{prefix}-a"] == 3 else 1)
        assert os.waitpid(pid, 0)[1] == 0
        assert ours.get_many(keys)[f"{prefix}-a"] == 3  # the parent's connection still answers its own reads
    finally:
        ours.delete_many([f"{prefix}-a", f"{prefix}-b"])
        other.close()


def test_get_many_raises_when_redis_is_unreachable():
    import redis

    ours = RedisCache("redis://127.0.0.1:9/0", {})  # the discard port: nothing listens
    with pytest.raises(redis.exceptions.ConnectionError):
        ours.get_many(["a", "b"])

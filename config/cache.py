"""The Redis cache backend of production (REDIS_URL), with one redis client per connection pool.

Django's RedisCacheClient makes a new `redis.Redis` for every cache call, and redis-py's __init__ builds
its table of about 170 response callbacks each time: 60 µs of CPU, and a cache.get_many of the credential
throttle that every authenticated request asks took 130 µs instead of 41 (measured on the 2-core bench
machine; a location PUT costs about 3 ms of CPU in all). The backend instance is per thread
(django.core.cache makes one per thread), so keeping one client per pool changes nothing else. Reads of
several keys (`get_many`) take a connection of the client's own (see there); the rest, the pool's, which
checks the process id after a fork, as `_reader` does.
"""

from __future__ import annotations

import os

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _ReusedClient(RedisCacheClient):
    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        clients = self.__dict__.setdefault("_clients", {})
        client = clients.get(index)
        if client is None:
            client = clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client

    def get_many(self, keys):
        """MGET on a connection of this client's own, past redis-py's command path (the pool's checkout and
        release, the retry wrapper, the response callbacks): the credential throttle's read, which every
        authenticated request makes, 150 -> 80 µs of wall time and 110 -> 45 µs of CPU (bench machine).
        A connection lost since the last read (Redis restarted) is made again once, as redis-py's retry
        would; any other failure is raised as redis-py raises it (the throttle then lets the request by)."""
        from redis.exceptions import ConnectionError, TimeoutError

        keys = list(keys)
        if not keys:
            return {}
        for retry in (False, True):
            connection = self._reader()
            try:
                connection.send_command("MGET", *keys)
                values = connection.read_response()
                break
            except (ConnectionError, TimeoutError):
                connection.disconnect()
                if retry:
                    raise
            except BaseException:
                connection.disconnect()  # a half-read reply must not be the next command's
                raise
        return {key: self._serializer.loads(value) for key, value in zip(keys, values) if value is not None}

    def _reader(self):
        """This client's read connection, made in this process (a forked worker makes its own)."""
        found = self.__dict__.get("_reader_of")
        if found is None or found[0] != os.getpid():
            pool = self._get_connection_pool(write=False)
            found = self.__dict__["_reader_of"] = (os.getpid(), pool.connection_class(**pool.connection_kwargs))
        return found[1]


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedClient

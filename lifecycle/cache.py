"""The cache: one Redis connection pool per process, and expiring counters.

Django keeps a cache object per request context, and its RedisCache builds a connection
pool per object: under ASGI that is a new Redis connection for every request. Here every
object of a process shares one client (redis-py's pools are thread-safe and fork-aware).
"""

from __future__ import annotations

import threading

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

_clients: dict = {}
_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            if key not in _clients:
                _clients[key] = self._class(self._servers, **self._options)
            return _clients[key]

    def count(self, key: str, timeout: int) -> int:
        key = self.make_and_validate_key(key)
        client = self._cache.get_client(key, write=True)
        # A script, not a pipeline: one round trip either way, but redis-py builds a
        # pipeline object (and copies its callback table) on every call.
        return int(_counter(client)(keys=[key], args=[timeout], client=client))


COUNTER = """
local total = redis.call('INCR', KEYS[1])
if total == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return total
"""
_scripts: dict = {}


def _counter(client):
    """The counting script, registered once per client (it then runs by its SHA)."""
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(COUNTER)
    return script


def count(key: str, timeout: int) -> int:
    """Add one to a counter that lives `timeout` seconds from its first count; the new
    total. One round trip on Redis; elsewhere add-then-incr, which races only harmlessly
    (a count lost, never an error)."""
    cache = caches["default"]
    if isinstance(cache, SharedRedisCache):
        return cache.count(key, timeout)
    if cache.add(key, 1, timeout=timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1

"""Expiring counters: the rate limits' and the login guard's (Redis in the services tier)."""

import pytest
from django.core.cache import cache, caches

from lifecycle.cache import SharedRedisCache, count


def test_count_adds_one_and_reads_back_through_the_cache():
    cache.delete("test-count")
    assert [count("test-count", 60) for _ in range(3)] == [1, 2, 3]
    assert cache.get("test-count") == 3
    cache.delete("test-count")
    assert count("test-count", 60) == 1


@pytest.mark.services  # the fast tier's cache is not Redis
def test_every_redis_cache_object_shares_one_client(settings):
    assert isinstance(caches["default"], SharedRedisCache)
    other = SharedRedisCache(settings.CACHES["default"]["LOCATION"], {})
    assert other._cache is caches["default"]._cache


@pytest.mark.services
def test_a_redis_counter_expires_from_its_first_count():
    redis_cache = caches["default"]
    key = redis_cache.make_and_validate_key("test-ttl")
    client = redis_cache._cache.get_client(key, write=True)
    client.delete(key)
    assert [count("test-ttl", 30) for _ in range(2)] == [1, 2]
    assert 0 < client.ttl(key) <= 30
    client.expire(key, 100)  # a later count must not push the expiry back out
    count("test-ttl", 30)
    assert client.ttl(key) > 30
    client.delete(key)

"""Shared fixtures for every tier."""

import pytest
from django.core.cache import cache

from tests.factories import make_world


@pytest.fixture(autouse=True)
def _clear_cache():
    # Login counters and operation progress live in the cache; no test inherits another's.
    cache.clear()
    yield


@pytest.fixture
def world(db):
    return make_world()


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on-commit work (enqueued tasks) as the transaction would have on commit."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run

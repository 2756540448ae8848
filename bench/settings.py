"""The app's own settings plus two routes the benchmarks compare against (never deployed)."""

from lifecycle.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

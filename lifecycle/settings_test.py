"""Settings for the test suite: the production settings, plus what makes tests fast.

Fast tier (no DATABASE_URL/REDIS_URL): SQLite in memory, tasks run in-process, a local
memory cache. Services tier: DATABASE_URL and REDIS_URL point at real servers, and the
tests start a real worker and a real ASGI server with these same settings.
"""

import atexit
import os
import shutil
import tempfile

if "LIFECYCLE_VAR_DIR" not in os.environ:
    # Made only by the process that needs one (its workers and servers inherit it), and
    # removed when that process ends: a run used to leave a folder per test process in /tmp.
    os.environ["LIFECYCLE_VAR_DIR"] = _var = tempfile.mkdtemp(prefix="lifecycle-test-")
    atexit.register(shutil.rmtree, _var, ignore_errors=True)
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
os.environ.setdefault("LIFECYCLE_OUTBOUND_ALLOWED_HOSTS", "127.0.0.1,localhost")
# Tasks run in-process here, so a sampled live answer would be scored inside the request
# and change its statement count; the tests of the live safety sample turn it on.
os.environ.setdefault("SAFETY_LIVE_SAMPLE_RATE", "0")

from .settings import *  # noqa: F403
from .settings import REDIS_URL

# Password hashing makes the suite many times slower; tests do not need its cost.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if not REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    # Transactional tests are flushed with TRUNCATE; the audit log's trigger allows that
    # only on a test_ database and a connection that says so (migration 0004).
    DATABASES["default"]["OPTIONS"]["options"] = "-c lifecycle.test_allow_audit_truncate=on"  # noqa: F405

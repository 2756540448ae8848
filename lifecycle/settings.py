"""Settings, all from environment variables (12-factor).

The defaults are the embedded setup that `make run` uses: SQLite under var/, Celery on
kombu's filesystem transport, an in-memory channel layer. Production sets DATABASE_URL,
REDIS_URL, SECRET_KEY, DEBUG=0 and friends (see README, "Configuration").
"""

import base64
import hashlib
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


VAR_DIR = Path(env("LIFECYCLE_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
_DEV_SECRET_KEY = "dev-only-insecure-key-change-me-in-production-0123456789abcdef"
SECRET_KEY = env("SECRET_KEY", _DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# A CSRF failure is a denial: audited when the path names an org, the envelope under /api/.
CSRF_FAILURE_VIEW = "lifecycle.denials.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_htmx",
    "channels",
    "lifecycle",
    "accounts",
    "agents",
    "rollouts",
    "webhooks",
    "approvals",
    "monitoring",
]

# The innermost middleware is sync-only on purpose: Django then runs the whole chain and
# the (sync) view on one thread per request. With an async-capable one innermost, under
# ASGI every middleware above hops between the event loop and a thread, twice, per request
# (measured with bench/gateway.py's bare view: 213 req/s that way, 290 this way).
# test_meta keeps it so.
MIDDLEWARE = [
    "lifecycle.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "lifecycle.middleware.ApiBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "lifecycle.middleware.QueryStringGuardMiddleware",
]

ROOT_URLCONF = "lifecycle.urls"
WSGI_APPLICATION = "lifecycle.wsgi.application"
ASGI_APPLICATION = "lifecycle.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "lifecycle.ui.context_processor",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lifecycle.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside a writer, and
    # IMMEDIATE transactions take the write lock up front instead of failing mid-way.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    # Under ASGI each request runs its sync code on a thread of its own, so persistent
    # per-thread connections pile up until PostgreSQL refuses more ("too many clients").
    # A pool bounds them per process; Django hands each back when a request ends.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # the pool checks each on checkout
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": env_int("DB_POOL_MIN", 2),
            "max_size": env_int("DB_POOL_MAX", 20),
            "timeout": env_int("DB_POOL_TIMEOUT", 10),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, Celery, Channels, cache ---------------------------------------------------
REDIS_URL = env("REDIS_URL")

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    # A SIGKILLed worker's task comes back after the visibility timeout, found by the
    # restore sweep. Keep the timeout above the longest task (see README, Deployment).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
        "unacked_restore_interval": env_int("CELERY_RESTORE_INTERVAL", 10),
        "unacked_restore_throttle": 1,
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # channels-redis waits on Redis up to 5 s at a time for each socket's messages;
            # redis-py's own default socket timeout is also 5 s, and the race closes idle
            # consoles with a TimeoutError. The read timeout must sit above that wait.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "lifecycle.cache.SharedRedisCache",
            # A separate Redis database for the cache is optional; the prefix keeps it apart.
            "LOCATION": env("CACHE_URL", REDIS_URL),
            "KEY_PREFIX": "lifecycle",
        }
    }
else:
    _queue_dir = VAR_DIR / "celery" / "queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery" / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        # kombu's default is ./control, which would litter the working directory.
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
        "polling_interval": 0.5,
    }
    CELERY_RESULT_BACKEND = None
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # Web, worker and beat are separate processes: the file cache is shared by all of
    # them, so login counters and operation progress are seen everywhere.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# A task SIGKILLed this many times (a poison message) is failed instead of retried.
OPERATION_MAX_ATTEMPTS = env_int("OPERATION_MAX_ATTEMPTS", 5)
# The delivery running an operation holds a lease this long, renewed by its progress
# reports and heartbeats. A redelivery (the broker's visibility timeout, a worker lost)
# while the lease is live leaves the work alone; once it lapses, it takes over.
OPERATION_LEASE_SECONDS = env_int("OPERATION_LEASE_SECONDS", 60)

# The share of live answers scored by the offline safety detectors (0 turns it off, 1 scores
# every answer). The sample is picked by a hash of the conversation and turn, not at random.
SAFETY_LIVE_SAMPLE_RATE = min(1.0, max(0.0, env_float("SAFETY_LIVE_SAMPLE_RATE", 0.1)))

CELERY_BEAT_SCHEDULE = {
    "purge-idempotency-keys": {
        "task": "lifecycle.purge_idempotency_keys",
        "schedule": 3600.0,
    },
    # Webhook deliveries whose message never left (a crash between commit and enqueue)
    # or was lost: the outbox's "no event lost" guarantee.
    "webhooks-sweep": {
        "task": "webhooks.sweep",
        "schedule": float(env_int("WEBHOOK_SWEEP_SECONDS", 30)),
    },
    "sweep-action-approvals": {
        "task": "agents.sweep_action_approvals",
        "schedule": float(env_int("ACTION_APPROVAL_SWEEP_SECONDS", 15)),
    },
    # Approval requests past their expiry end, and their operations are cancelled.
    "approvals-expire-due": {
        "task": "approvals.expire_due",
        "schedule": float(env_int("APPROVALS_EXPIRY_SWEEP_SECONDS", 60)),
    },
    # Progressing releases due for analysis; each release's own interval (5 s at least)
    # decides when it is due, so this tick bounds how late an analysis can be.
    "releases-tick": {
        "task": "rollouts.releases_tick",
        "schedule": float(env_int("RELEASE_TICK_SECONDS", 5)),
    },
    # Metric rollups and stage thresholds (monitoring.watch): each agent is read when due.
    "monitoring-tick": {
        "task": "monitoring.tick",
        "schedule": float(env_int("MONITORING_TICK_SECONDS", 30)),
    },
    # Spend alerts follow spend that grows in open conversations, and end with the month.
    "spend-tick": {
        "task": "rollouts.spend_tick",
        "schedule": float(env_int("SPEND_SWEEP_SECONDS", 300)),
    },
}
# How often a console waiting for an action approval looks at its row.
ACTION_APPROVAL_POLL_SECONDS = float(os.environ.get("ACTION_APPROVAL_POLL_SECONDS", "0.5"))

# --- Webhooks -------------------------------------------------------------------------
# Failed attempt n is retried after BASE * 2**(n-1) seconds, up to MAX_ATTEMPTS attempts.
WEBHOOK_RETRY_BASE_SECONDS = float(env("WEBHOOK_RETRY_BASE_SECONDS", "5"))
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 6)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
# The sweep re-sends a pending delivery this long past its due time.
WEBHOOK_SWEEP_GRACE_SECONDS = env_int("WEBHOOK_SWEEP_GRACE_SECONDS", 60)
# Events (and their delivery logs) are kept this long; notifications show the last 30 days.
WEBHOOK_OUTBOX_KEEP_DAYS = env_int("WEBHOOK_OUTBOX_KEEP_DAYS", 90)
# Where people reach this site: links in Slack messages are built on it.
PUBLIC_URL = env("LIFECYCLE_PUBLIC_URL", "http://localhost:8000")

# --- Auth -----------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
GUARDIAN_GET_INIT_ANONYMOUS_USER = "accounts.models.anonymous_user_defaults"
GUARDIAN_RAISE_403 = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Failed logins allowed per email (and, more loosely, per client IP) in the window.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_FAILURE_IP_LIMIT = env_int("LOGIN_FAILURE_IP_LIMIT", 30)
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", 300)
API_TOKEN_DEFAULT_DAYS = env_int("API_TOKEN_DEFAULT_DAYS", 90)
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365)

# --- Secrets --------------------------------------------------------------------------
# Fernet keys, newest first. Secrets are written with the first and read with any, so a
# new key goes in front and `manage.py rotate_secrets` re-encrypts under it.
ENCRYPTION_KEYS = env_list("LIFECYCLE_ENCRYPTION_KEYS")
# The key for content hashes (HMAC). Separate from the encryption keys: rotating those
# must not change every component's hash.
HASH_KEY = env("LIFECYCLE_HASH_KEY")
if not ENCRYPTION_KEYS or not HASH_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "LIFECYCLE_ENCRYPTION_KEYS and LIFECYCLE_HASH_KEY must be set when DEBUG is off."
        )
    _seed = hashlib.sha256(f"lifecycle-dev:{SECRET_KEY}".encode()).digest()
    ENCRYPTION_KEYS = ENCRYPTION_KEYS or [base64.urlsafe_b64encode(_seed).decode()]
    HASH_KEY = HASH_KEY or hashlib.sha256(b"hash:" + _seed).hexdigest()

# --- Outbound HTTP --------------------------------------------------------------------
# Hosts that user-set URLs may reach even though they are loopback or private, such as
# local test servers. Empty in production.
OUTBOUND_ALLOWED_HOSTS = env_list("LIFECYCLE_OUTBOUND_ALLOWED_HOSTS")

# --- API ------------------------------------------------------------------------------
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 4 * 1024 * 1024)
API_IMPORT_MAX_BODY_BYTES = env_int("API_IMPORT_MAX_BODY_BYTES", 32 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_IMPORT_MAX_BODY_BYTES
IDEMPOTENCY_TTL_HOURS = 24
# The console's own frame limit, and the ASGI server's, which must sit above it so an
# oversized frame gets the app's `error` frame instead of a 1009 close.
WS_MAX_FRAME_BYTES = env_int("WS_MAX_FRAME_BYTES", 64 * 1024)
WS_SERVER_MAX_BYTES = env_int("WS_SERVER_MAX_BYTES", 1024 * 1024)
WS_PING_SECONDS = env_int("WS_PING_SECONDS", 20)
# Pause between streamed words of engines that answer whole (builtin): 0 is fastest;
# a few milliseconds make the console's streaming (and interrupting it) visible.
CONSOLE_STREAM_DELAY_MS = env_int("CONSOLE_STREAM_DELAY_MS", 15)
# Requests per minute per stage API key through the gateway.
GATEWAY_RATE_PER_MINUTE = env_int("GATEWAY_RATE_PER_MINUTE", 6000)
# How long a stage's month-to-date spend is trusted before it is summed again: starting a
# conversation reads it from the cache, so a budget may be overrun by what this many
# seconds of traffic cost. A policy change clears it at once.
SPEND_CACHE_SECONDS = env_int("SPEND_CACHE_SECONDS", 30)
# Monitoring (README "Monitoring"): turns younger than the settle time wait for the next
# rollup; thresholds read the last ALERT_WINDOW of these sources' traffic, every
# EVALUATE_SECONDS, or every WATCH_SECONDS within WATCH_HOURS of a release.
MONITORING_ROLLUP_SETTLE_SECONDS = env_int("MONITORING_ROLLUP_SETTLE_SECONDS", 5)
MONITORING_ROLLUP_BATCH = env_int("MONITORING_ROLLUP_BATCH", 50000)
MONITORING_ALERT_SOURCES = os.environ.get("MONITORING_ALERT_SOURCES", "live")
MONITORING_ALERT_WINDOW_SECONDS = env_int("MONITORING_ALERT_WINDOW_SECONDS", 900)
MONITORING_EVALUATE_SECONDS = env_int("MONITORING_EVALUATE_SECONDS", 300)
MONITORING_WATCH_SECONDS = env_int("MONITORING_WATCH_SECONDS", 60)
MONITORING_WATCH_HOURS = env_int("MONITORING_WATCH_HOURS", 24)
MONITORING_MIN_SAMPLES = env_int("MONITORING_MIN_SAMPLES", 20)
MONITORING_MIN_RATINGS = env_int("MONITORING_MIN_RATINGS", 5)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["lifecycle.parsers.SafeJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "lifecycle.pagination.OrderedCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "lifecycle.schema.EnvelopeAutoSchema",
    "EXCEPTION_HANDLER": "lifecycle.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"user": env("API_USER_RATE", "6000/min")},
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "URL_FORMAT_OVERRIDE": None,
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Lifecycle API",
    "DESCRIPTION": "Take conversational AI agents from Development to Production.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        # Test runs, red-team runs and soak tests share one status set: one name for it.
        "EvaluationStatusEnum": "rollouts.models.EvaluationStatus",
    },
}

# --- Internationalisation, static -----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "lifecycle" / "static"]
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security (production values come from env; `check --deploy` passes with them) ----
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Number of reverse proxies in front of the app whose X-Forwarded-For entries are
# trusted for the client IP recorded in the audit log.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# Addresses whose X-Forwarded-For / X-Forwarded-Proto the ASGI server (uvicorn) believes:
# only the reverse proxy's. `*` would let anyone who reaches the port pick their own
# address for rate limits and the audit log. uvicorn reads this variable itself too.
FORWARDED_ALLOW_IPS = env("FORWARDED_ALLOW_IPS", "127.0.0.1")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# uvicorn's own loggers are configured here too (as uvicorn configures them, plus the
# filter): `?token=` in a logged path (the access log, WebSocket handshakes) is redacted.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_query_secrets": {"()": "lifecycle.logfilters.RedactQuerySecrets"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "uvicorn": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"},
        "uvicorn_access": {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_query_secrets"],
        },
        "uvicorn": {
            "class": "logging.StreamHandler",
            "formatter": "uvicorn",
            "stream": "ext://sys.stderr",
            "filters": ["redact_query_secrets"],
        },
        "uvicorn_access": {
            "class": "logging.StreamHandler",
            "formatter": "uvicorn_access",
            "stream": "ext://sys.stdout",
            "filters": ["redact_query_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "celery": {"level": "INFO"},
        # No levels: uvicorn's own (its --log-level) stay as they are.
        "uvicorn": {"handlers": ["uvicorn"], "propagate": False},
        "uvicorn.access": {"handlers": ["uvicorn_access"], "propagate": False},
    },
}

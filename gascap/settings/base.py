"""Settings shared by every setup. Every knob comes from the environment (or `.env`) with a
safe development default; `.env.example` documents each variable.

With no variable set, gascap runs embedded: SQLite under `var/` and a Celery broker that needs
no server (kombu's filesystem transport under `var/`). `DATABASE_URL` and `REDIS_URL` switch to
PostgreSQL and Redis.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from gascap.pge.config import pge_endpoints

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")


def _writable_var_dir(path: Path) -> Path:
    """Create `path` if needed and prove a file can be written there, or stop start-up naming
    it: a read-only state directory would otherwise fail later, in the middle of a request."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".gascap-write-check-"):
            pass
    except OSError as exc:
        raise ImproperlyConfigured(
            f"GASCAP_VAR_DIR {path} cannot be written ({exc.strerror or exc}). Make it writable "
            f"by this user, or set GASCAP_VAR_DIR to a directory that is (empty or unset: "
            f"{BASE_DIR / 'var'})."
        ) from None
    return path


# Local state (SQLite, filesystem broker, beat heartbeat, static files). Empty means the default,
# as `.env.example` ships it: an empty value must not turn into the working directory.
VAR_DIR = _writable_var_dir(Path(env.str("GASCAP_VAR_DIR", default="") or BASE_DIR / "var"))

# --- Django core -------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key-do-not-use-in-production")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "gascap",
    "customers",
    "ingest",
    # The company's app API (api/): django-ninja serves its OpenAPI document and docs page
    # with the Swagger UI files it ships (no CDN), found through STATICFILES_DIRS below and
    # api/swagger.html. Not "ninja" here: its app entry loaded ninja into every process.
    "api",
    "ops",
    "webhooks",
]

MIDDLEWARE = [
    "gascap.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Every error under /api/ is an RFC 9457 problem document, whoever produced it.
    "api.problems.ProblemDocumentMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "gascap.middleware.AdminLocalTimeAndSecurityHeadersMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "gascap.urls"
WSGI_APPLICATION = "gascap.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "gascap" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite under var/ unless DATABASE_URL names another database (PostgreSQL in production).
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'gascap.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Fail fast when PostgreSQL is down, so the webhook answers 503 quickly (docs/reliability.md
    # test 4).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("GASCAP_DB_CONNECT_TIMEOUT", default=2)
    )
    # A fresh connection per request by default: connect_timeout bounds only the connect, and
    # psycopg has no client-side read timeout, so a persistent connection to a frozen server
    # (SIGSTOP, VM pause) hung the webhook's first query until gunicorn killed the worker at
    # 30 s instead of a 503 (docs/reliability.md test 4, tests/reliability/test_db_down.py). A
    # loopback/LAN connect costs a few ms; raise it only behind a pooler that fails fast.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("GASCAP_DB_CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    # SQLite: wait for the writer lock instead of failing at once (web, worker and beat share it).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("timeout", 20)
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
# PG&E's days are Pacific days: local time only for display and daily grouping.
GASCAP_LOCAL_TIME_ZONE = env.str("GASCAP_LOCAL_TIME_ZONE", default="America/Los_Angeles")

STATIC_URL = "static/"
# django-ninja's Swagger UI files (`ninja/…`), without importing ninja (or its app) here.
STATICFILES_DIRS = [
    Path(next(iter(importlib.util.find_spec("ninja").submodule_search_locations))) / "static"
]
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Operators' admin lives under a configurable path (not /admin/ in production).
GASCAP_ADMIN_PATH = env.str("GASCAP_ADMIN_PATH", default="admin/").strip("/") + "/"

# Security headers that hold in every setup (production adds HTTPS-only ones).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# --- Celery ------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_FILESYSTEM_BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
else:
    # A broker that needs no server: kombu's filesystem transport (embedded default).
    CELERY_BROKER_URL = "filesystem://"
# Redis redelivers an unacked message after this many seconds; every time limit stays below it
# so a running task is never handed to a second worker (docs/reliability.md test 32).
CELERY_VISIBILITY_TIMEOUT = env.int("GASCAP_CELERY_VISIBILITY_TIMEOUT", default=7200)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("GASCAP_CELERY_SOFT_TIME_LIMIT", default=1500)
CELERY_TASK_TIME_LIMIT = env.int("GASCAP_CELERY_TIME_LIMIT", default=1800)
# Worker liveness (gascap/worker_heartbeat.py, README "Worker failures"): each process that runs
# tasks refreshes its heartbeat every INTERVAL seconds; one silent for STALE seconds is dead and
# the sweeper (every GASCAP_INGEST_SWEEP_PERIOD seconds) takes over the rows it held. Keep
# INTERVAL well under STALE and STALE well under the sweep period: a dead runner's row is then
# re-queued within STALE + PERIOD, under two sweep periods (checked: gascap.E002).
GASCAP_WORKER_HEARTBEAT_INTERVAL = env.float("GASCAP_WORKER_HEARTBEAT_INTERVAL", default=5.0)
GASCAP_WORKER_HEARTBEAT_STALE = env.float("GASCAP_WORKER_HEARTBEAT_STALE", default=30.0)

# --- Logging -----------------------------------------------------------------------------
LOG_LEVEL = env.str("GASCAP_LOG_LEVEL", default="INFO")
# "plain" (local default: one readable line) or "json" (one JSON object a line, for a log
# shipper, with the ids of `ops.log_context`: request, task, notification, fetch, subscription).
GASCAP_LOG_FORMAT = env.str("GASCAP_LOG_FORMAT", default="plain").lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "ops.log_context.LogContextFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d "
            "%(request_id)s %(task_id)s %(notification_id)s %(fetch_id)s %(subscription_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if GASCAP_LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        },
        # Django's default: a 500 mails ADMINS when DEBUG is off (ADMINS empty: no mail).
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own handlers are replaced, so its lines go through the one console
        # handler (one format, one line each) instead of a second, plain, copy.
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.server": {"handlers": [], "level": "INFO"},
        "django.db.backends": {"level": "INFO"},
    },
}

CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# At-least-once delivery: ack after the task ran, requeue when the worker process dies, and
# take one message at a time so a dead worker strands at most one (docs/reliability.md R5).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("default", "ingest", "pge_fetch")
CELERY_TASK_CREATE_MISSING_QUEUES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must not hang a web request when the broker is down: the row is already
# committed and the sweeper re-queues it (docs/reliability.md test 11).
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("GASCAP_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# django-celery-beat's database scheduler that also writes beat's heartbeat (gascap/beat.py).
CELERY_BEAT_SCHEDULER = "gascap.beat:HeartbeatScheduler"
# Beat touches this file every tick (at most 5 s apart); `manage.py beat_health` (beat's health
# check) fails when it is older than the max age or when a schedule is missing.
GASCAP_BEAT_HEARTBEAT_FILE = env.str("GASCAP_BEAT_HEARTBEAT_FILE", default="") or str(
    VAR_DIR / "beat.heartbeat"
)
GASCAP_BEAT_HEARTBEAT_MAX_AGE = env.int("GASCAP_BEAT_HEARTBEAT_MAX_AGE", default=60)
# `migrate` creates the missing beat schedules (post_migrate, gascap/beat.py), so a deploy that
# migrates always has them. The test settings turn it off: tests create schedules themselves.
GASCAP_SCHEDULES_ON_MIGRATE = env.bool("GASCAP_SCHEDULES_ON_MIGRATE", default=True)
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
        # Bounds every synchronous Redis command, a publish included: with 10 s a silent
        # broker (SIGSTOP, blackhole) held each webhook request 10 s (docs/reliability.md test 11,
        # tests/reliability/test_broker_down.py). Redis answers in well under a millisecond;
        # the worker's BRPOP runs on the event loop and is not subject to it.
        "socket_timeout": env.float("GASCAP_BROKER_SOCKET_TIMEOUT", default=1.5),
        # kombu re-tries the *connect* of a publish (Connection.default_channel) for up to the
        # connect timeout, 2 s apart: a cold web worker facing a silent broker took 5 s.
        # One attempt, then the caller logs and the sweeper re-queues (docs/reliability.md R5). The
        # worker's consumer reconnects with its own retry settings (broker_connection_*).
        "max_retries": 0,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_FILESYSTEM_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_FILESYSTEM_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_FILESYSTEM_BROKER_DIR / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "control"):
        (CELERY_FILESYSTEM_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# --- PG&E ----------------------------------------------------------------------------------
# QA and production are configuration, not code (see docs/pge-protocol.md "Hosts and transport"):
# GASCAP_PGE_ENVIRONMENT (production, qa, sandbox) sets PG&E's three URLs; an explicit
# GASCAP_PGE_API_BASE / _TOKEN_URL / _AUTHORIZE_URL overrides its one URL.
GASCAP_SANDBOX_PORT = env.int("GASCAP_SANDBOX_PORT", default=8443)


def pge_environment_urls(default_environment: str) -> tuple[str, str, str, str]:
    """(environment, api base, token URL, consent page URL) from the environment variables."""
    environment = env.str("GASCAP_PGE_ENVIRONMENT", default="") or default_environment
    try:
        endpoints = pge_endpoints(
            environment, sandbox_url=f"https://localhost:{GASCAP_SANDBOX_PORT}"
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"GASCAP_PGE_ENVIRONMENT: {exc}") from None
    return (
        environment.strip().lower(),
        env.str("GASCAP_PGE_API_BASE", default="") or endpoints.api_base,
        env.str("GASCAP_PGE_TOKEN_URL", default="") or endpoints.token_url,
        env.str("GASCAP_PGE_AUTHORIZE_URL", default="") or endpoints.authorize_url,
    )


(
    GASCAP_PGE_ENVIRONMENT,
    GASCAP_PGE_API_BASE,
    GASCAP_PGE_TOKEN_URL,
    GASCAP_PGE_AUTHORIZE_URL,
) = pge_environment_urls("production")
GASCAP_PGE_CA_BUNDLE = env.str("GASCAP_PGE_CA_BUNDLE", default="") or None
GASCAP_PGE_CLIENT_ID = env.str("GASCAP_PGE_CLIENT_ID", default="")
GASCAP_PGE_CLIENT_SECRET = env.str("GASCAP_PGE_CLIENT_SECRET", default="")
GASCAP_PGE_CLIENT_CERT = env.str("GASCAP_PGE_CLIENT_CERT", default="")
GASCAP_PGE_CLIENT_KEY = env.str("GASCAP_PGE_CLIENT_KEY", default="")
GASCAP_PGE_THIRD_PARTY_ID = env.str("GASCAP_PGE_THIRD_PARTY_ID", default="")
GASCAP_PGE_REDIRECT_URI = env.str(
    "GASCAP_PGE_REDIRECT_URI", default="http://localhost:8000/consent/callback/"
)
GASCAP_PGE_LEGACY_CONSENT = env.bool("GASCAP_PGE_LEGACY_CONSENT", default=False)
GASCAP_PGE_CONNECT_TIMEOUT = env.float("GASCAP_PGE_CONNECT_TIMEOUT", default=10.0)
GASCAP_PGE_READ_TIMEOUT = env.float("GASCAP_PGE_READ_TIMEOUT", default=60.0)
# Decoded bytes a fetched document may reach before the download stops (gzip bombs included).
GASCAP_PGE_MAX_BODY_BYTES = env.int("GASCAP_PGE_MAX_BODY_BYTES", default=1024 * 1024 * 1024)
# The system check and the admin banner warn this many days before the client certificate
# (GASCAP_PGE_CLIENT_CERT) expires; PG&E must register a new one before then.
GASCAP_PGE_CERT_WARN_DAYS = env.int("GASCAP_PGE_CERT_WARN_DAYS", default=30)

# --- Notification webhook (shared by ingest and the sandbox) --------------------------------
# The secret path segment PG&E posts to: /pge/notify/<token>/. Several, comma-separated,
# during a rotation. The development default is not a secret: production requires its own.
GASCAP_NOTIFY_TOKENS = env.list("GASCAP_NOTIFY_TOKEN", default=["dev-notify-token"])

# --- Customers: consent flow and token lifecycle (customers/) -----------------------------
# Fernet keys for tokens at rest, comma-separated, newest first; separate from SECRET_KEY.
# Production refuses to start without them; development generates one into the file below.
GASCAP_FIELD_ENCRYPTION_KEYS = env.list("GASCAP_FIELD_ENCRYPTION_KEYS", default=[])
GASCAP_FIELD_ENCRYPTION_DEV_KEY_FILE = env.str(
    "GASCAP_FIELD_ENCRYPTION_DEV_KEY_FILE", default=str(VAR_DIR / "field-encryption.key")
)
# OAuth state lifetime: PG&E's authorization code itself lives about 600 s.
GASCAP_CONSENT_STATE_TTL = env.int("GASCAP_CONSENT_STATE_TTL", default=600)
# Unspent states one browser session may hold; a new one replaces the oldest.
GASCAP_CONSENT_STATES_PER_SESSION = env.int("GASCAP_CONSENT_STATES_PER_SESSION", default=5)
# Consent start/callback requests per client address per window (seconds); 0 = no throttle.
# Every callback may spend PG&E calls: anonymous visitors must not drain the budget.
GASCAP_CONSENT_THROTTLE_REQUESTS = env.int("GASCAP_CONSENT_THROTTLE_REQUESTS", default=20)
GASCAP_CONSENT_THROTTLE_WINDOW = env.int("GASCAP_CONSENT_THROTTLE_WINDOW", default=600)
# Refresh access tokens (3600 s at PG&E) this many seconds before they expire.
GASCAP_TOKEN_REFRESH_SKEW = env.int("GASCAP_TOKEN_REFRESH_SKEW", default=300)
# A forced refresh (after a 403) is skipped when another worker refreshed this recently.
GASCAP_TOKEN_FORCE_REFRESH_MIN_AGE = env.int("GASCAP_TOKEN_FORCE_REFRESH_MIN_AGE", default=10)
# Right after the code exchange PG&E's Authorization resource may not be visible yet.
GASCAP_CONSENT_AUTHORIZATION_RETRIES = env.int("GASCAP_CONSENT_AUTHORIZATION_RETRIES", default=3)
GASCAP_CONSENT_AUTHORIZATION_RETRY_SECONDS = env.float(
    "GASCAP_CONSENT_AUTHORIZATION_RETRY_SECONDS", default=3.0
)

# --- The company's app API (api/) ---------------------------------------------------------
# Origins (scheme://host[:port]) a consent session may send the browser back to, e.g.
# "https://app.example.com". Empty: no consent session can be created.
GASCAP_APP_RETURN_ORIGINS = env.list("GASCAP_APP_RETURN_ORIGINS", default=[])
# Lifetime of a consent session link (seconds).
GASCAP_CONSENT_SESSION_TTL = env.int("GASCAP_CONSENT_SESSION_TTL", default=1800)
# Readings: rows per page (default and most a client may ask for) and the longest time span
# one page covers; the cursor continues after it.
GASCAP_API_READINGS_PAGE_SIZE = env.int("GASCAP_API_READINGS_PAGE_SIZE", default=2000)
GASCAP_API_READINGS_MAX_PAGE_SIZE = env.int("GASCAP_API_READINGS_MAX_PAGE_SIZE", default=10000)
GASCAP_API_READINGS_MAX_PAGE_DAYS = env.int("GASCAP_API_READINGS_MAX_PAGE_DAYS", default=31)
# Longest range one totals request may cover (days).
GASCAP_API_TOTALS_MAX_DAYS = env.int("GASCAP_API_TOTALS_MAX_DAYS", default=3700)

# Days after a customer's last consent was revoked before its readings, rollups and bills are
# deleted by the daily job of ingest/data_retention.py. Unset: keep them.
GASCAP_DATA_RETENTION_AFTER_REVOKE_DAYS = env.int(
    "GASCAP_DATA_RETENTION_AFTER_REVOKE_DAYS", default=None
)

# Months of readings kept before the current one on PostgreSQL, where readings are partitioned
# by month: `manage.py readings_partitions_drop --commit` drops older months (ingest/
# partitions.py; at least 3). Unset: keep every month.
GASCAP_READINGS_RETENTION_MONTHS = env.int("GASCAP_READINGS_RETENTION_MONTHS", default=None)

# --- Webhooks out to the company's app (webhooks/) ---------------------------------------
# Seconds one delivery POST may take; tries before a delivery is FAILED; task runs without an
# outcome before it is POISONED; full-jitter backoff between tries (base, cap in seconds).
GASCAP_WEBHOOK_TIMEOUT = env.float("GASCAP_WEBHOOK_TIMEOUT", default=10.0)
GASCAP_WEBHOOK_MAX_ATTEMPTS = env.int("GASCAP_WEBHOOK_MAX_ATTEMPTS", default=8)
GASCAP_WEBHOOK_POISON_LIMIT = env.int("GASCAP_WEBHOOK_POISON_LIMIT", default=6)
GASCAP_WEBHOOK_BACKOFF_BASE = env.float("GASCAP_WEBHOOK_BACKOFF_BASE", default=10.0)
GASCAP_WEBHOOK_BACKOFF_CAP = env.float("GASCAP_WEBHOOK_BACKOFF_CAP", default=3600.0)
# Plain-http endpoint URLs (local development only; production wants https).
GASCAP_WEBHOOK_ALLOW_HTTP = env.bool("GASCAP_WEBHOOK_ALLOW_HTTP", default=False)

# --- Ingest: notification webhook and pipeline (ingest/) -----------------------------------
# Optional Basic credentials on the webhook, on top of the secret path segment: "user:password"
# pairs, comma-separated (several during a rotation). Empty = path segment only.
GASCAP_NOTIFY_BASIC_CREDENTIALS = env.list("GASCAP_NOTIFY_BASIC_CREDENTIALS", default=[])
# A BatchList is a few hundred bytes per resource: 256 KiB is ample (and nginx caps the same).
GASCAP_NOTIFY_MAX_BODY_BYTES = env.int("GASCAP_NOTIFY_MAX_BODY_BYTES", default=256 * 1024)
# The same body again within this many seconds is recorded as DUPLICATE and starts no work.
GASCAP_NOTIFY_DUPLICATE_WINDOW = env.int("GASCAP_NOTIFY_DUPLICATE_WINDOW", default=3600)
# Most resource URLs one BatchList may name.
GASCAP_NOTIFY_MAX_RESOURCES = env.int("GASCAP_NOTIFY_MAX_RESOURCES", default=500)
# Task runs a row may take before it is POISONED (a run that never records an outcome counts).
GASCAP_INGEST_POISON_LIMIT = env.int("GASCAP_INGEST_POISON_LIMIT", default=6)
# Transient failures retry after a full-jitter delay in [0, min(cap, base * 2**n)] seconds.
GASCAP_INGEST_BACKOFF_BASE = env.float("GASCAP_INGEST_BACKOFF_BASE", default=5.0)
GASCAP_INGEST_BACKOFF_CAP = env.float("GASCAP_INGEST_BACKOFF_CAP", default=600.0)
# PG&E's vendor-wide budget (~1 request/s); 0 turns the shared limiter off.
GASCAP_PGE_RATE_LIMIT_PER_SECOND = env.float("GASCAP_PGE_RATE_LIMIT_PER_SECOND", default=1.0)
GASCAP_PGE_RATE_LIMIT_MAX_WAIT = env.float("GASCAP_PGE_RATE_LIMIT_MAX_WAIT", default=120.0)
# PG&E's call budget per client id (docs/pge-protocol.md): calls per clock hour and per PG&E
# day (which resets at 5 p.m. Pacific); 0 = no cap (calls are still counted).
GASCAP_PGE_BUDGET_PER_HOUR = env.int("GASCAP_PGE_BUDGET_PER_HOUR", default=2000)
GASCAP_PGE_BUDGET_PER_DAY = env.int("GASCAP_PGE_BUDGET_PER_DAY", default=20000)
# Shares of each cap kept for more urgent work: consent callbacks keep RESERVE_CONSENT that
# notified fetches may not use; notified fetches keep RESERVE_NOTIFIED that scheduled work
# (daily requests, gap fills, polls) may not use.
GASCAP_PGE_BUDGET_RESERVE_CONSENT = env.float("GASCAP_PGE_BUDGET_RESERVE_CONSENT", default=0.05)
GASCAP_PGE_BUDGET_RESERVE_NOTIFIED = env.float("GASCAP_PGE_BUDGET_RESERVE_NOTIFIED", default=0.30)
# The sweeper re-queues notifications/fetches left RECEIVED/PROCESSING/PENDING this long.
GASCAP_INGEST_SWEEP_AGE = env.int("GASCAP_INGEST_SWEEP_AGE", default=300)
# Seconds between two sweeps (the beat schedule `ingest: sweep stuck work`, created when
# missing by `migrate` / `ensure_schedules`; an existing schedule keeps the interval it has).
GASCAP_INGEST_SWEEP_PERIOD = env.int("GASCAP_INGEST_SWEEP_PERIOD", default=120)
# Daily data request: "subscription" (one async request per active authorization), "bulk"
# (one Batch/Bulk request with the client token) or "auto": per subscription while its calls
# (request + refresh + fetch per consent) stay within GASCAP_INGEST_SUBSCRIPTION_MODE_MAX_SHARE
# of the daily cap, Bulk beyond.
GASCAP_INGEST_DAILY_REQUEST_MODE = env.str("GASCAP_INGEST_DAILY_REQUEST_MODE", default="auto")
GASCAP_INGEST_SUBSCRIPTION_MODE_MAX_SHARE = env.float(
    "GASCAP_INGEST_SUBSCRIPTION_MODE_MAX_SHARE", default=0.5
)
# Days the gap audit looks back, and days per PG&E request (integrators use <= ~30).
GASCAP_INGEST_GAP_AUDIT_DAYS = env.int("GASCAP_INGEST_GAP_AUDIT_DAYS", default=14)
GASCAP_INGEST_REQUEST_MAX_DAYS = env.int("GASCAP_INGEST_REQUEST_MAX_DAYS", default=30)
# How far back the first request after a consent reaches (capped by what the consent grants).
GASCAP_INGEST_INITIAL_HISTORY_DAYS = env.int("GASCAP_INGEST_INITIAL_HISTORY_DAYS", default=730)
# Pipeline retention (ingest/retention.py, a daily job): notifications, fetches and attempts
# older than this many days are deleted (open work never); 0 keeps them forever.
GASCAP_PIPELINE_RETENTION_DAYS = env.int("GASCAP_PIPELINE_RETENTION_DAYS", default=90)
# Bodies of PROCESSED notifications are emptied after this many days (size and digest kept).
GASCAP_NOTIFICATION_BODY_RETENTION_DAYS = env.int(
    "GASCAP_NOTIFICATION_BODY_RETENTION_DAYS", default=30
)
# Ids per pruning transaction: bounds how long any row lock is held.
GASCAP_PIPELINE_PRUNE_BATCH = env.int("GASCAP_PIPELINE_PRUNE_BATCH", default=5000)

# --- Sandbox (a local PG&E; the app is installed only by local/test settings) -------------
# Seconds the sandbox waits before POSTing a BatchList after an asynchronous request
# (PG&E takes 10-120 s; the sandbox is quicker so the demo and tests are).
GASCAP_SANDBOX_NOTIFY_DELAY = env.float("GASCAP_SANDBOX_NOTIFY_DELAY", default=1.0)
# Days a sandbox Batch request without published-min/max covers.
GASCAP_SANDBOX_DEFAULT_DAYS = env.int("GASCAP_SANDBOX_DEFAULT_DAYS", default=3)
# Scale mode (sandbox/scale.py): this many synthetic consents answered through Bulk, in
# documents of GASCAP_SANDBOX_SCALE_PER_DOCUMENT customers each; 0 = off.
GASCAP_SANDBOX_SCALE_CUSTOMERS = env.int("GASCAP_SANDBOX_SCALE_CUSTOMERS", default=0)
GASCAP_SANDBOX_SCALE_PER_DOCUMENT = env.int("GASCAP_SANDBOX_SCALE_PER_DOCUMENT", default=500)
# Redirect URIs the sandbox accepts besides GASCAP_PGE_REDIRECT_URI (comma-separated).
GASCAP_SANDBOX_EXTRA_REDIRECT_URIS = env.list("GASCAP_SANDBOX_EXTRA_REDIRECT_URIS", default=[])

# --- ESPI reading storage (ingest.readings) --------------------------------------------------
# PostgreSQL work_mem for the one merge statement of a document import (SET LOCAL, that
# transaction only): a 100-customer-year Bulk feed sorts 3.5 M rows, kept in memory with this.
GASCAP_INGEST_WORK_MEM = env.str("GASCAP_INGEST_WORK_MEM", default="128MB")
# PostgreSQL: readings per chunk of a document merged while the rest is parsed
# (ingest.readings_overlap). 0 merges after the parse, as SQLite does. `make bench` (100
# customer-years) with 32768 / 65536 / 131072: import 0.90-0.95 / 0.93 / 0.95x the parse
# floor, peak RSS 133 / 139 / 152 MB (target 150): docs/scale.md §1.4.
GASCAP_INGEST_CHUNK_ROWS = env.int("GASCAP_INGEST_CHUNK_ROWS", default=65536)

# --- Operators' admin and browser security headers (gascap/middleware.py) ----------------
# Content-Security-Policy on every response whose view set none (docs/reliability.md test 57).
# Django's admin needs no inline script; inline styles (status colours, the consent page) do.
GASCAP_CONTENT_SECURITY_POLICY = env.str(
    "GASCAP_CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
)

# --- Operator accounts: OTP for the admin, brute-force lockout (gascap/admin_site.py) -----
# docs/reliability.md R8 / tests 58-59: the admin holds every customer's consent and data.
# The admin app is swapped for gascap's AdminConfig, whose default site (GascapAdminSite)
# requires a verified django-otp device when GASCAP_ADMIN_REQUIRE_OTP is true; every
# existing `@admin.register` still lands on `admin.site`, which is that site.
from datetime import timedelta as _timedelta  # noqa: E402

INSTALLED_APPS = [
    "gascap.apps.GascapAdminConfig" if _app == "django.contrib.admin" else _app
    for _app in INSTALLED_APPS
]
INSTALLED_APPS += ["django_otp", "django_otp.plugins.otp_totp", "axes"]
# OTPMiddleware gives request.user.is_verified(); it must follow AuthenticationMiddleware.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_otp.middleware.OTPMiddleware",
)
# AxesMiddleware turns a locked-out login into a 429 page; axes wants it last.
MIDDLEWARE.append("axes.middleware.AxesMiddleware")
# AxesStandaloneBackend refuses a locked-out username+IP before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Safe default: OTP on. Local settings (make run / make demo) turn it off.
GASCAP_ADMIN_REQUIRE_OTP = env.bool("GASCAP_ADMIN_REQUIRE_OTP", default=True)
# The issuer shown in the operator's authenticator app.
OTP_TOTP_ISSUER = env.str("GASCAP_ADMIN_OTP_ISSUER", default="gascap")
# Never show a TOTP key (a second factor) or its QR code on an admin page.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# Lock a username+IP pair after this many failed logins, for this many seconds; the correct
# password is refused meanwhile. `manage.py axes_reset` unlocks early.
AXES_FAILURE_LIMIT = env.int("GASCAP_ADMIN_LOCKOUT_FAILURES", default=10)
AXES_COOLOFF_TIME = _timedelta(seconds=env.int("GASCAP_ADMIN_LOCKOUT_COOLOFF", default=3600))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# No start-up banner from every process and manage.py command (commands whose output is read,
# e.g. run_sandbox, print their own first line); lockouts are logged regardless.
AXES_VERBOSE = False
# Keep passwords, OTP tokens and CSRF tokens out of axes' stored request data.
AXES_SENSITIVE_PARAMETERS = ["otp_token", "csrfmiddlewaretoken"]
# Behind N trusted proxies that append X-Forwarded-For, the client is the N-th address from
# the right; 0 (default) trusts only REMOTE_ADDR, which a client cannot forge.
GASCAP_ADMIN_PROXY_COUNT = env.int("GASCAP_ADMIN_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "gascap.admin_site.client_ip_for_lockout"

# --- Errors to Sentry (optional; ops/sentry.py) -------------------------------------------
# Unset: nothing is sent anywhere. Events pass a scrubber that removes tokens, OAuth codes,
# Authorization headers, the client secret, the notify token and the Fernet keys.
SENTRY_DSN = env.str("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env.str("SENTRY_ENVIRONMENT", default="production")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
if SENTRY_DSN:
    from ops.sentry import sentry_init

    sentry_init(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )

# --- Prometheus metrics at /metrics (ops/metrics.py, ops/views.py) -------------------------
# Off by default (404). On: a scrape needs a bearer token or an allowed address.
GASCAP_METRICS_ENABLED = env.bool("GASCAP_METRICS_ENABLED", default=False)
GASCAP_METRICS_TOKENS = env.list("GASCAP_METRICS_TOKENS", default=[])
GASCAP_METRICS_ALLOW_IPS = env.list("GASCAP_METRICS_ALLOW_IPS", default=[])
if GASCAP_METRICS_ENABLED:
    # prometheus-client's multiprocess mode: every web worker and Celery process writes its
    # counters under this directory (shared by all of them) and a scrape sums the files. It
    # must be set before prometheus_client is imported, hence here.
    import os as _os

    _os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR",
        env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "metrics")),
    )
    Path(_os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

# --- Alerts to operators (ops/alerts.py; checked by the beat task ops.alerts_check) --------
# Who gets the mail: comma-separated addresses (Django's ADMINS; empty: no mail).
ADMINS = [(a, a) for a in env.list("DJANGO_ADMINS", default=[])]
# How mail leaves: smtp+tls://user:password@host:587, consolemail:// (stderr), ...
globals().update(env.email_url("EMAIL_URL", default="consolemail://"))
SERVER_EMAIL = env.str("DJANGO_SERVER_EMAIL", default="gascap@localhost")
DEFAULT_FROM_EMAIL = SERVER_EMAIL
EMAIL_SUBJECT_PREFIX = "[gascap] "
EMAIL_TIMEOUT = env.int("DJANGO_EMAIL_TIMEOUT", default=20)
# Optional ops webhook (Slack relay, PagerDuty bridge, ...): JSON POST signed the Standard
# Webhooks way with the secret (whsec_<base64> or plain text).
GASCAP_OPS_WEBHOOK_URL = env.str("GASCAP_OPS_WEBHOOK_URL", default="")
GASCAP_OPS_WEBHOOK_SECRET = env.str("GASCAP_OPS_WEBHOOK_SECRET", default="")
# Links in alerts point to the admin under this origin.
GASCAP_OPS_BASE_URL = env.str("GASCAP_OPS_BASE_URL", default="http://localhost:8000")
GASCAP_ALERT_SILENCE_HOURS = env.int("GASCAP_ALERT_SILENCE_HOURS", default=36)
GASCAP_ALERT_PGE_DAY_PERCENT = env.int("GASCAP_ALERT_PGE_DAY_PERCENT", default=80)

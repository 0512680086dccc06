"""Django settings for Arena.

Everything that differs between a laptop and production comes from the
environment (see README "Configuration"). The embedded default needs no
server: SQLite in ``var/`` and Celery's filesystem broker in ``var/broker``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("ARENA_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# Off unless set: a deployment that forgets DEBUG runs as production, and then
# refuses to start without a real SECRET_KEY (below). `make run`, run_arena and
# the test settings (tests/settings.py) turn it on for development.
DEBUG = env_bool("DEBUG", False)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - refused when DEBUG is off
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET if DEBUG else None)
if not SECRET_KEY or (not DEBUG and SECRET_KEY == _DEV_SECRET):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a real secret when DEBUG is off (DEBUG is off unless set; "
        "for development set DEBUG=true, as `make run` does)"
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "arena",
    "votes",
    "ratings",
]

MIDDLEWARE = [
    # First: it turns a database outage anywhere below into a 503 (not a 500).
    "arena.api_errors.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# whitenoise's middleware is sync-only, which under ASGI would put every request
# on a thread of its own: the same middleware, declared async-capable.
MIDDLEWARE = [
    "arena.static_files.AsyncWhiteNoiseMiddleware" if m == "whitenoise.middleware.WhiteNoiseMiddleware" else m
    for m in MIDDLEWARE
]

ROOT_URLCONF = "arena.project.urls"
WSGI_APPLICATION = "arena.project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- database -------------------------------------------------------------
_DEFAULT_SQLITE = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
# Seconds a connection is kept for the next request (0: one per request; unset: 60).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", _DEFAULT_SQLITE), conn_max_age=env_int("DB_CONN_MAX_AGE", 60)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # web, worker and beat share the file: WAL lets readers run beside a writer,
    # IMMEDIATE transactions avoid "database is locked" on lock upgrades.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so worker processes started by tests see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An outage must end a request in seconds with a 503, never hang it
    # (docs/VOTES.md "Database outages"): libpq gives up on a new connection
    # after DB_CONNECT_TIMEOUT s, and arena.pgbackend on any single wait for the
    # server (a query, a fetch, a commit) after DB_IO_TIMEOUT s (0: no bound).
    DATABASES["default"]["ENGINE"] = "arena.pgbackend"
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 3)
DB_IO_TIMEOUT = env_float("DB_IO_TIMEOUT", 10.0)
# The vote path's fixed statements (arena/sql.py) are prepared on the
# PostgreSQL server, once per connection; the ORM's never are. Off (0) behind
# a pooler in transaction mode that cannot keep prepared statements
# (PgBouncer before 1.21, or without max_prepared_statements).
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "arena.pgbackend" and DB_PREPARED_STATEMENTS:
    # psycopg prepares nothing while this is None (Django's default); a
    # threshold no statement reaches leaves it to arena/sql.py's prepare=True.
    DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 2**31 - 1)
# Seconds a client is told to wait (Retry-After) when the database is unreachable.
ARENA_DB_RETRY_AFTER = env_int("ARENA_DB_RETRY_AFTER", 5)
# (The engine is arena.pgbackend by now: the pool must be keyed on it too, or
# it silently never starts and every ASGI request opens a connection.)
if DATABASES["default"]["ENGINE"] == "arena.pgbackend" and env_int("DB_POOL_MAX_SIZE", 10) > 0:
    # Under ASGI each sync view runs on a thread of its own, so a connection
    # kept per thread (CONN_MAX_AGE) is never reused and piles up until
    # PostgreSQL refuses clients: a per-process pool instead (psycopg_pool),
    # which requires CONN_MAX_AGE 0. DB_POOL_MAX_SIZE=0 turns it off.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("DB_POOL_MAX_SIZE", 10),
        # Seconds a request waits for a connection; while PostgreSQL is
        # unreachable the pool has none to give, so this bounds the outage's
        # 503 the way connect_timeout does without a pool.
        "timeout": env_int("DB_POOL_TIMEOUT", 5),
    }
# Threads per web process that run requests' sync work (arena/project/asgi.py):
# middleware, view and queries. A thread waits on the database, so a few more
# than cores; each holds a pooled connection only while its request runs.
WEB_THREADS = env_int("WEB_THREADS", 8)
# A keep-alive connection is closed after this many requests on average
# (0: never), so connections spread again over the web processes
# (arena/project/asgi.py). Streams are never cut.
WEB_KEEPALIVE_REQUESTS = env_int("WEB_KEEPALIVE_REQUESTS", 50)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache (rate limits, debounce flags): shared by every process ----------
REDIS_URL = env_str("REDIS_URL")
# The cache may live in another Redis database than the broker's queue, so
# that clearing the cache never drops queued tasks.
REDIS_CACHE_URL = env_str("REDIS_CACHE_URL", REDIS_URL)
# Seconds any web-side Redis call (cache, rate limits, debounce flag, task
# publish) may wait; after one failure the per-process circuit breaker keeps
# requests off that Redis for ARENA_REDIS_BREAKER_SECONDS (docs/VOTES.md).
ARENA_REDIS_TIMEOUT = env_float("ARENA_REDIS_TIMEOUT", 0.25)
ARENA_REDIS_BREAKER_SECONDS = env_float("ARENA_REDIS_BREAKER_SECONDS", 5.0)
if REDIS_CACHE_URL:
    CACHES = {
        "default": {
            # Django's, with one connection pool and client per process (arena/redis_cache.py).
            "BACKEND": "arena.redis_cache.RedisCache",
            "LOCATION": REDIS_CACHE_URL,
            # One short timeout, no retry: a frozen Redis costs a request at most
            # ARENA_REDIS_TIMEOUT once, then arena/redis_guard.py's breaker skips it.
            "OPTIONS": {"socket_connect_timeout": ARENA_REDIS_TIMEOUT, "socket_timeout": ARENA_REDIS_TIMEOUT},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- celery ---------------------------------------------------------------
# Without REDIS_URL, Celery uses kombu's filesystem transport: a real broker
# (separate worker process, real messages) that needs no server.
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR),
        "data_folder_out": str(_BROKER_DIR),
        "control_folder": str(VAR_DIR / "broker-control"),
        "store_processed": False,
    }
else:
    # ack_emulation off: kombu 5.7's redis transport (the newest release) kills
    # the worker ("'NoneType' object has no attribute 'hostname'" in
    # _connparams, via restore_unacked) whenever the connection drops while
    # it holds an unacknowledged message, ETA or executing: it restores them
    # through a connection already torn down. Without ack emulation the
    # restore is the base transport's, which logs a failure instead of dying.
    # The price: a message a killed worker held is gone rather than restored
    # after the visibility timeout; every task here is idempotent and beat's
    # recompute_if_stale catches up (docs/RATINGS.md#faults).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 2, "ack_emulation": False}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A vote must never wait on a dead broker: one quick retry, then give up
# (the periodic recompute catches up). The vote path itself publishes with
# retry=False on a connection with ARENA_REDIS_TIMEOUT (votes/services.py).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# No task of ours is ever parked in the worker as an ETA/countdown message
# (the debounce waits inside the task): the worker holds as little as
# possible unacknowledged when the broker goes away (docs/RATINGS.md#faults).
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
RATINGS_DEBOUNCE_SECONDS = env_float("RATINGS_DEBOUNCE_SECONDS", 2.0)
# Test hook only (tests/test_e2e_recompute_crash.py): seconds a recompute holds its snapshot uncommitted.
RATINGS_TEST_PAUSE_SECONDS = env_float("RATINGS_TEST_PAUSE_SECONDS", 0.0)
RATINGS_MIN_VOTES = env_int("RATINGS_MIN_VOTES", 30)  # fewer battles: "preliminary"; weighted sampling boosts them
RATINGS_PERIODIC_SECONDS = env_float("RATINGS_PERIODIC_SECONDS", 30.0)
# A category view (language, code, …) is published only with this many counted votes.
RATINGS_MIN_CATEGORY_VOTES = env_int("RATINGS_MIN_CATEGORY_VOTES", 50)
# Ridge penalty on the style coefficients of the style-controlled views.
RATINGS_STYLE_L2 = env_float("RATINGS_STYLE_L2", 0.5)
# Anomalous-voter detection (votes/anomaly.py, docs/VOTES.md): family-wise error
# rate per run, the adjusted p-value above which a flag is lifted, and the
# judged votes a voter needs before being tested.
VOTES_ANOMALY_ALPHA = env_float("VOTES_ANOMALY_ALPHA", 0.01)
VOTES_ANOMALY_RELEASE_ALPHA = env_float("VOTES_ANOMALY_RELEASE_ALPHA", 0.1)
VOTES_ANOMALY_MIN_VOTES = env_int("VOTES_ANOMALY_MIN_VOTES", 20)
CELERY_BEAT_SCHEDULE = {
    "recompute-if-stale": {
        "task": "ratings.recompute_if_stale",
        "schedule": RATINGS_PERIODIC_SECONDS,
    },
    "detect-anomalous-voters": {
        "task": "votes.detect_anomalies",
        "schedule": env_float("VOTES_ANOMALY_PERIODIC_SECONDS", 3600.0),
    },
    "retention": {"task": "ratings.prune", "schedule": env_float("RETENTION_PERIODIC_SECONDS", 3600.0)},
}
# Retention (ratings/retention.py): every snapshot of the last RATINGS_KEEP_ALL_DAYS
# days, then the newest of each day; idempotency records for
# ARENA_IDEMPOTENCY_RETENTION_HOURS (default: the vote window).
RATINGS_KEEP_ALL_DAYS = env_float("RATINGS_KEEP_ALL_DAYS", 30.0)
RETENTION_CHUNK = env_int("RETENTION_CHUNK", 500)

# --- REST framework -------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "arena.schema.ArenaAutoSchema",
    "EXCEPTION_HANDLER": "arena.api_errors.exception_handler",
    # DRF's JSON parser plus a body-size limit (413) and a nesting limit (400 too_deep).
    "DEFAULT_PARSER_CLASSES": [
        "arena.parsers.ArenaJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "arena.parsers.ArenaContentNegotiation",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Arena API",
    "DESCRIPTION": "Anonymous side-by-side battles, votes and Bradley–Terry ratings.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from the installed package, not a CDN: works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- arena ----------------------------------------------------------------
ARENA_SAMPLING_POLICY = env_str("ARENA_SAMPLING_POLICY", "weighted")  # weighted | uniform | active
if ARENA_SAMPLING_POLICY not in ("weighted", "uniform", "active"):
    raise ImproperlyConfigured(f"ARENA_SAMPLING_POLICY is {ARENA_SAMPLING_POLICY!r}; use weighted, uniform or active")
# Abuse resistance (arena/integrity.py, docs/VOTES.md). Rates are "N/<s|m|h|d>";
# empty or 0 turns one off. A person reads two answers before voting, so 30
# votes a minute from one session is already far above human speed.


def _env_rate(name: str, default: str) -> str:
    """Unset → the default; set but empty → "" (the limit is off, as documented)."""
    value = os.environ.get(name)
    return default if value is None else value.strip()


ARENA_RATE_LIMITS = {
    "vote": {
        "voter": _env_rate("ARENA_VOTE_RATE", "30/m"),
        "address": _env_rate("ARENA_VOTE_RATE_PER_ADDRESS", "300/m"),
    },
    "battle": {
        "voter": _env_rate("ARENA_BATTLE_RATE", "60/m"),
        "address": _env_rate("ARENA_BATTLE_RATE_PER_ADDRESS", "600/m"),
    },
}
for _action, _scopes in ARENA_RATE_LIMITS.items():
    for _scope, _rate in _scopes.items():
        if _rate and _rate != "0" and not re.fullmatch(r"\d+/([1-9]\d*)?[smhd]", _rate):
            raise ImproperlyConfigured(f"rate limit {_action}/{_scope} is {_rate!r}; write N/<s|m|h|d>, e.g. 30/m")
# Live battles (arena/live.py).
ARENA_MAX_PROMPT_CHARS = env_int("ARENA_MAX_PROMPT_CHARS", 8000)
ARENA_MAX_TURNS = env_int("ARENA_MAX_TURNS", 5)  # prompts per battle before the vote
ARENA_AUTO_PAUSE_FAILURES = env_int("ARENA_AUTO_PAUSE_FAILURES", 3)  # failed answers in a row; 0 = never pause
ARENA_PENDING_STALE_SECONDS = env_int(
    "ARENA_PENDING_STALE_SECONDS", 300
)  # a turn still pending after this was abandoned
ARENA_STREAM_COALESCE_MS = env_int(
    "ARENA_STREAM_COALESCE_MS", 50
)  # at most one delta event per side per this many ms; 0 = one per chunk
ARENA_STREAM_DB_THREADS = env_int(
    "ARENA_STREAM_DB_THREADS", 8
)  # threads (and DB connections) per web process for stream claims and stores
ARENA_DAILY_VOTE_CAP = env_int("ARENA_DAILY_VOTE_CAP", 1000)  # per voter, rolling 24 h; 0 = no cap
ARENA_VOTE_WINDOW_SECONDS = env_int("ARENA_VOTE_WINDOW_SECONDS", 6 * 3600)  # after the answers completed
ARENA_IDEMPOTENCY_RETENTION_HOURS = env_float("ARENA_IDEMPOTENCY_RETENTION_HOURS", ARENA_VOTE_WINDOW_SECONDS / 3600)
ARENA_TRUSTED_PROXY_COUNT = env_int("ARENA_TRUSTED_PROXY_COUNT", 0)  # reverse proxies setting X-Forwarded-For
# Client addresses are stored only as HMAC-SHA256 under this salt.
ARENA_ADDRESS_SALT = env_str("ARENA_ADDRESS_SALT", "") or f"address-salt:{SECRET_KEY}"
ARENA_LEADERBOARD_CI = env_str("ARENA_LEADERBOARD_CI", "sandwich")
# Intervals shown when ?intervals= is absent: "marginal" (per model, as LMArena) or "simultaneous".
ARENA_LEADERBOARD_INTERVALS = env_str("ARENA_LEADERBOARD_INTERVALS", "marginal")
# Tie model of the published ratings: "half" (a tie is half a win, as LMArena) or "davidson".
RATINGS_TIES = env_str("RATINGS_TIES", "half")

# --- i18n, static ---------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns about a missing root before collectstatic

# Sessions live in the signed cookie itself (the voter's key and id; a staff
# member's login): no database read per request, which was one of the vote
# path's costs (issue #14). The cookie is signed with SECRET_KEY, so it can't
# be forged, only replayed: logging out clears it in the browser, but a copied
# cookie stays valid until SESSION_COOKIE_AGE. arena.sessions also carries a
# database session of an earlier release over into the cookie, once. For
# sessions the server can revoke, SESSION_ENGINE=django.contrib.sessions.backends.db
# (README).
SESSION_ENGINE = env_str("SESSION_ENGINE", "arena.sessions")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)

# --- production behind a TLS proxy; health and metrics (deploy/README.md) ---
# Every switch is on when DEBUG is off, so `manage.py check --deploy` is clean
# with the documented production environment; each can be turned off, e.g.
# SECURE_HSTS_SECONDS=300 while trying HTTPS out (browsers remember HSTS).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
# "HEADER,value": the request came over HTTPS when the proxy set this header to
# this value. Only safe behind a proxy that overwrites the header (nginx does
# in deploy/nginx-arena.conf); "off" when the app terminates TLS itself.
_proxy_ssl = env_str("SECURE_PROXY_SSL_HEADER", "off" if DEBUG else "X-Forwarded-Proto,https")
if _proxy_ssl.lower() in ("off", "none", "0", "false"):
    SECURE_PROXY_SSL_HEADER = None
else:
    _header, _sep, _value = _proxy_ssl.partition(",")
    if not _sep or not _header.strip() or not _value.strip():
        raise ImproperlyConfigured(
            f"SECURE_PROXY_SSL_HEADER is {_proxy_ssl!r}; write HEADER,value, e.g. X-Forwarded-Proto,https"
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _header.strip().upper().replace("-", "_"), _value.strip())
# Probes and scrapers talk to the app directly over plain HTTP on the private
# network; redirecting them to HTTPS would fail every probe.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^metrics/?$"]
# /metrics answers only "Authorization: Bearer <token>"; unset, it is a 404.
ARENA_METRICS_TOKEN = env_str("ARENA_METRICS_TOKEN", "")
# /healthz: every check together must answer within this many seconds.
ARENA_HEALTH_TIMEOUT_SECONDS = env_float("ARENA_HEALTH_TIMEOUT_SECONDS", 2.0)
# Workers write a heartbeat this often; /healthz fails after three missed ones.
ARENA_WORKER_HEARTBEAT_SECONDS = env_float("ARENA_WORKER_HEARTBEAT_SECONDS", 10.0)
# /healthz fails when a counted vote has waited this long for a snapshot.
ARENA_HEALTH_SNAPSHOT_MAX_LAG_SECONDS = env_float("ARENA_HEALTH_SNAPSHOT_MAX_LAG_SECONDS", 600.0)

# LLM-as-judge (votes/judging.py, docs/JUDGES.md). Judges are registered in the
# admin with their own concurrency cap and daily budget; these apply to all.
ARENA_JUDGE_RETRIES = env_int("ARENA_JUDGE_RETRIES", 2)  # more attempts per order after an error or a missing verdict
ARENA_JUDGE_STALE_SECONDS = env_int(
    "ARENA_JUDGE_STALE_SECONDS", 600
)  # a judging running longer belongs to a dead worker
ARENA_JUDGE_SLOT_WAIT_SECONDS = env_float(
    "ARENA_JUDGE_SLOT_WAIT_SECONDS", 30.0
)  # a task waits this long for a free slot
CELERY_BEAT_SCHEDULE["judge-sweep"] = {
    "task": "votes.judge_sweep",
    "schedule": env_float("ARENA_JUDGE_SWEEP_SECONDS", 60.0),
}
CELERY_BEAT_SCHEDULE["judge-boards-if-stale"] = {
    "task": "ratings.recompute_judges",
    "schedule": RATINGS_PERIODIC_SECONDS,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every provider request at INFO: one line per provider request, two per live stream.
    "loggers": {"httpx": {"level": "WARNING"}},
}

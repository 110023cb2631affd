"""Timbre settings: twelve-factor, read from the environment.

Defaults give the embedded mode (SQLite, local file storage, a filesystem broker) so that
`make run` works on a bare machine. Production (`TIMBRE_ENV=production`) refuses to start on
insecure defaults.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.environ.get("TIMBRE_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    return default if value is None else value.lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return default if value is None else int(value)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


TIMBRE_ENV = env("TIMBRE_ENV", "development")
PRODUCTION = TIMBRE_ENV == "production"
INSECURE_SECRET_KEY = "insecure-development-key-do-not-use-in-production"
INSECURE_API_KEY_PEPPER = "insecure-development-pepper-do-not-use-in-production"

SECRET_KEY = env("SECRET_KEY", INSECURE_SECRET_KEY)
# Old keys keep sessions and signed links valid while a new SECRET_KEY rolls out.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

if PRODUCTION:
    problems = []
    if DEBUG:
        problems.append("DEBUG must be off")
    if SECRET_KEY == INSECURE_SECRET_KEY or len(SECRET_KEY) < 32:
        problems.append("SECRET_KEY must be set to a random value of at least 32 characters")
    # Its own secret, so that rotating SECRET_KEY never silently revokes every API key.
    if len(env("API_KEY_PEPPER", "")) < 32:
        problems.append("API_KEY_PEPPER must be set to a random value of at least 32 characters")
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS must list the served host names")
    if not env("WATERMARK_KEYS"):
        problems.append("WATERMARK_KEYS must be set")
    if problems:
        raise ImproperlyConfigured("Refusing to start in production: " + "; ".join(problems))
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # intcomma on the console's numbers
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "tenancy",
    "audit",
    "rollout",
    "voices",
    "consent",
    "synthesis",
    "django_htmx",
    "frontend",
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    # Outermost after the request id, so errors raised by any middleware get the JSON shape.
    "core.middleware.JsonErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "frontend.middleware.ConsoleSecurityHeadersMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# API paths work with or without a trailing slash; no redirects that drop POST bodies.
APPEND_SLASH = False

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

if not env("DATABASE_URL"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # embedded mode keeps its state here
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'timbre.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server's threads and the worker share the file. WAL lets readers run beside the
    # one writer; writers take the lock when their transaction begins (IMMEDIATE) and wait for
    # it up to `timeout` seconds (SQLite's busy timeout) instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "core.cache.PooledClientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", "timbre"),
        }
    }
    # Repeat-prompt audio (synthesis.services.prompt_cache): its own prefix, entries with a TTL.
    CACHES["prompts"] = {
        **CACHES["default"],
        "KEY_PREFIX": CACHES["default"]["KEY_PREFIX"] + "-prompts",
    }
else:
    # Embedded mode serves from one process, so a per-process cache counts correctly.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
    # Files, so that the web process and the worker share them.
    CACHES["prompts"] = {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "prompt-cache"),
        "OPTIONS": {"MAX_ENTRIES": 2000},
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Invitations are mailed when a backend is configured (EMAIL_BACKEND and Django's EMAIL_* for
# the mail relay); by default nothing is sent or printed, since the link is a secret, and the
# inviter is shown it once to pass on. Tests use locmem.
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.dummy.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Timbre <no-reply@localhost>")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)

CONSOLE_URL_PREFIX = "console"
# A console session ends CONSOLE_SESSION_AGE_S (8 hours) after sign-in.
SESSION_COOKIE_AGE = env_int("CONSOLE_SESSION_AGE_S", 8 * 3600)
SESSION_COOKIE_SAMESITE = "Lax"
LOGIN_URL = "frontend:login"
LOGIN_REDIRECT_URL = "frontend:home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}

# --- REST API ----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenancy.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["core.filters.TenantScopedFilterBackend"],
    # JSON only: the browsable API renders forms from unscoped relation choices. Audio
    # endpoints return their own media types.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.negotiation.JsonFallbackNegotiation",
    "UNAUTHENTICATED_USER": None,
    # `format` is an ordinary query parameter here (usage and audit exports).
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Timbre API",
    "DESCRIPTION": "Enterprise brand-voice platform: synthesis, voices, consent, usage, audit.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is served from the sidecar package's static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Tenancy, keys, limits ---------------------------------------------------------------
API_KEY_PEPPER = env("API_KEY_PEPPER", INSECURE_API_KEY_PEPPER)
API_KEY_ENVIRONMENT = env("API_KEY_ENVIRONMENT", "live")
API_KEY_MAX_ROTATION_GRACE = timedelta(days=7)
LAST_USED_WRITE_INTERVAL = timedelta(seconds=env_int("LAST_USED_WRITE_INTERVAL_S", 60))
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
QUOTA_RESERVATION_TTL = timedelta(minutes=env_int("QUOTA_RESERVATION_TTL_MIN", 30))

# --- Object storage ----------------------------------------------------------------------
S3_ENDPOINT = env("S3_ENDPOINT")  # host:port or URL; unset = local files
# The endpoint clients use to download (presigned URLs are signed for this host).
S3_PUBLIC_ENDPOINT = env("S3_PUBLIC_ENDPOINT")
S3_ACCESS_KEY = env("S3_ACCESS_KEY", "")
S3_SECRET_KEY = env("S3_SECRET_KEY", "")
S3_BUCKET = env("S3_BUCKET", "timbre")
S3_REGION = env("S3_REGION", "us-east-1")
S3_SECURE = env_bool("S3_SECURE", False)
LOCAL_STORAGE_ROOT = Path(env("LOCAL_STORAGE_ROOT", str(VAR_DIR / "storage")))
PRESIGNED_URL_TTL = timedelta(seconds=env_int("PRESIGNED_URL_TTL_S", 300))

# --- Celery ------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem"):
    # kombu's filesystem transport with atomic publishing (see core/filesystem_broker.py).
    CELERY_BROKER_TRANSPORT = "core.filesystem_broker:Transport"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    # A key prefix lets several deployments (or test runs) share one Redis safely.
    else {"visibility_timeout": 3600, "global_keyprefix": env("CELERY_BROKER_KEYPREFIX", "")}
)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_SYNTHESIS_TIME_LIMIT = env_int("SYNTHESIS_TIME_LIMIT", 120)
# How long the web process waits on a request's channel (sync: for the result; stream: for the
# whole stream) before it fails the request, 504 `synthesis_timeout`, and refunds it.
SYNTHESIS_SYNC_TIMEOUT_S = env_int("SYNTHESIS_SYNC_TIMEOUT_S", CELERY_SYNTHESIS_TIME_LIMIT + 10)
# A sync request's audio up to this size rides the worker's `end` message to the waiting web
# process (no storage read-back); larger audio is read back from storage. It is stored either way.
SYNTHESIS_INLINE_AUDIO_MAX_BYTES = env_int("SYNTHESIS_INLINE_AUDIO_MAX_BYTES", 4 * 1024 * 1024)
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 200)
# Celery's Django fixup closes database connections only every this many tasks (default: before
# and after every task); config/celery.py closes them by Django's own rules (CONN_MAX_AGE,
# errors) at each task boundary instead.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)

# --- Synthesis and watermarking -----------------------------------------------------------
# The queue synthesis jobs go to (`gpu` workers; a CPU worker serves it where there is no GPU).
SYNTHESIS_QUEUE = env("SYNTHESIS_QUEUE", "gpu")
# Repeat-prompt cache (synthesis.services.prompt_cache): the engine's unmarked output for text a
# tenant asks for again; clips longer than PROMPT_CACHE_MAX_SECONDS are not kept.
PROMPT_CACHE_ENABLED = env_bool("PROMPT_CACHE_ENABLED", True)
PROMPT_CACHE_MAX_SECONDS = env_int("PROMPT_CACHE_MAX_SECONDS", 15)
PROMPT_CACHE_TTL_S = env_int("PROMPT_CACHE_TTL_S", 24 * 3600)
PROMPT_CACHE_MAX_ENTRIES = env_int("PROMPT_CACHE_MAX_ENTRIES", 200)  # per tenant per TTL period
# The speech library reads no environment: these are passed to it by the apps' glue.
SYNTHESIS_ENGINE_CACHE_SIZE = env_int("SYNTHESIS_ENGINE_CACHE_SIZE", 3)  # engines per worker
TIMBRE_ONNX_THREADS = env_int("TIMBRE_ONNX_THREADS", 1)  # per engine; scale with processes
# Hot swap (rollout/engines.py): every worker process keeps the live versions loaded, syncing
# every ENGINE_SYNC_INTERVAL_S (0: no sync, load on demand only), within this memory budget
# (estimated per engine; 0: bounded by SYNTHESIS_ENGINE_CACHE_SIZE only).
ENGINE_SYNC_INTERVAL_S = env_int("ENGINE_SYNC_INTERVAL_S", 10)
ENGINE_MEMORY_BUDGET_MB = env_int("ENGINE_MEMORY_BUDGET_MB", 1024)
TIMBRE_ASR_THREADS = env_int("TIMBRE_ASR_THREADS", 0)  # 0: CTranslate2 chooses
# Remote model artefacts are fetched here, one folder per sha256 (rollout/engines.py).
MODEL_CACHE_DIR = Path(env("MODEL_CACHE_DIR", str(VAR_DIR / "model-cache")))
# A registered model version serves only after its validation job meets these (rollout/services/
# validation.py); the similarity gate applies to custom voices' versions. Uploads up to the size.
MODEL_VALIDATION_MAX_WER = float(env("MODEL_VALIDATION_MAX_WER", "0.2"))
MODEL_VALIDATION_MIN_MOS = float(env("MODEL_VALIDATION_MIN_MOS", "3.0"))
MODEL_VALIDATION_MAX_RTF = float(env("MODEL_VALIDATION_MAX_RTF", "2.0"))
MODEL_VALIDATION_MIN_SIMILARITY = float(env("MODEL_VALIDATION_MIN_SIMILARITY", "0.7"))
MODEL_ARTEFACT_MAX_BYTES = env_int("MODEL_ARTEFACT_MAX_BYTES", 200 * 1024 * 1024)
# Guardrails (rollout/services/guardrails.py): how often beat evaluates the running rollouts.
ROLLOUT_EVALUATE_INTERVAL_S = env_int("ROLLOUT_EVALUATE_INTERVAL_S", 60)
# --- Consent, training data and fine-tuning ---------------------------------------------------
CONSENT_STATEMENT_TTL_S = env_int("CONSENT_STATEMENT_TTL_S", 24 * 3600)  # record it within
CONSENT_ARTEFACT_RETENTION_S = env_int("CONSENT_ARTEFACT_RETENTION_S", 7 * 24 * 3600)
CONSENT_MAX_RECORDING_BYTES = env_int("CONSENT_MAX_RECORDING_BYTES", 20 * 1024 * 1024)
CONSENT_MIN_TRAINING_RECORDINGS = env_int("CONSENT_MIN_TRAINING_RECORDINGS", 3)
CONSENT_VERIFY_TIME_LIMIT_S = env_int("CONSENT_VERIFY_TIME_LIMIT_S", 180)
TRAINING_MAX_RECORDING_BYTES = env_int("TRAINING_MAX_RECORDING_BYTES", 20 * 1024 * 1024)
DATASET_MAX_UPLOAD_BYTES = env_int("DATASET_MAX_UPLOAD_BYTES", 200 * 1024 * 1024)
DATASET_ZIP_MAX_MEMBERS = env_int("DATASET_ZIP_MAX_MEMBERS", 1000)
DATASET_ZIP_MAX_TOTAL_BYTES = env_int("DATASET_ZIP_MAX_TOTAL_BYTES", 1024 * 1024 * 1024)
DATASET_ZIP_MAX_RATIO = float(env("DATASET_ZIP_MAX_RATIO", "100"))
# The queue fine-tunes go to (`gpu` workers; a CPU worker serves it where there is no GPU).
FINE_TUNE_QUEUE = env("FINE_TUNE_QUEUE", "gpu")
FINE_TUNE_MIN_RECORDINGS = env_int("FINE_TUNE_MIN_RECORDINGS", 8)
FINE_TUNE_STEPS = env_int("FINE_TUNE_STEPS", 400)
FINE_TUNE_MAX_STEPS = env_int("FINE_TUNE_MAX_STEPS", 5000)
FINE_TUNE_TIME_LIMIT_S = env_int("FINE_TUNE_TIME_LIMIT_S", 1800)

WEBHOOK_ALLOW_PRIVATE_HOSTS = env_bool("WEBHOOK_ALLOW_PRIVATE_HOSTS", not PRODUCTION)
# "kid:base64secret,kid:base64secret": the first signs new clips; all are tried on detection.
WATERMARK_KEYS = env("WATERMARK_KEYS", "")
WATERMARK_BACKENDS = env_list("WATERMARK_BACKENDS", "builtin,audiowmark")
WATERMARK_STRENGTH = float(env("WATERMARK_STRENGTH", "1.0"))
WATERMARK_AUDIOWMARK_STRENGTH = float(env("WATERMARK_AUDIOWMARK_STRENGTH", "10"))
WATERMARK_AUDIOWMARK_BINARY = env("WATERMARK_AUDIOWMARK_BINARY", "audiowmark")  # name or path
WATERMARK_DETECT_MAX_BYTES = env_int("WATERMARK_DETECT_MAX_BYTES", 25 * 1024 * 1024)
WATERMARK_DETECT_MAX_SECONDS = env_int("WATERMARK_DETECT_MAX_SECONDS", 600)
# Non-file request bodies; uploaded files (multipart) spool to disk above 10 MB and are checked
# against their own limits by the services, with clear errors.
DATA_UPLOAD_MAX_MEMORY_SIZE = WATERMARK_DETECT_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Metrics (core/metrics.py) -------------------------------------------------------------
# GET /metrics; when METRICS_TOKEN is set it needs "Authorization: Bearer <token>".
METRICS_TOKEN = env("METRICS_TOKEN", "")
# Tenant label on metrics: "plan" (the tenant's plan slug) or "id" (raw tenant ids: cardinality
# and privacy cost, so only on request).
METRICS_TENANT_LABEL = env("METRICS_TENANT_LABEL", "plan")
# Workers serve their metrics on this port (0: off, e.g. embedded mode). Prefork children
# record into PROMETHEUS_MULTIPROC_DIR (read by prometheus-client itself).
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0)

"""Keygate settings: one file, read from the environment (and `.env` if present).

Secrets have no production default: with DEBUG off, a missing SECRET_KEY or KEYGATE_PEPPER
stops start-up with a clear message. `make run` writes a `.env` with fresh random secrets on
first run (scripts/bootstrap_env.py), so the quickstart needs no configuration.
"""

from __future__ import annotations

import logging
import re
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = Path(env.str("KEYGATE_ENV_FILE", default=str(BASE_DIR / ".env")))
if _env_file.is_file():
    environ.Env.read_env(_env_file, overwrite=False)


def _bool(name: str, default: bool) -> bool:
    """A strict boolean: anything but true/false/1/0/yes/no/on/off is a configuration error."""
    raw = env.str(name, default="").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def _secret(name: str, dev_default: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG or TESTING:
        return dev_default
    raise ImproperlyConfigured(
        f"{name} is not set. Set it in the environment or in .env "
        f"(`make run` creates a .env with random secrets), or set DEBUG=true for development."
    )


TESTING = "pytest" in sys.modules or env.bool("KEYGATE_TESTING", default=False)
DEBUG = _bool("DEBUG", default=False)
SECRET_KEY = _secret("SECRET_KEY", "django-insecure-development-only-secret-key-do-not-use")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "keys",
    "gateway",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "keys.middleware.SessionTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its lockout page (429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'keygate.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dashboard read while the usage writer writes; a busy timeout instead of
    # "database is locked" under concurrent writers.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
# Prefix of every Redis key and channel Keygate uses, so several deployments can share one Redis.
KEYGATE_REDIS_NAMESPACE = env.str("KEYGATE_REDIS_NAMESPACE", default="keygate")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
if TESTING:
    # Password hashing is not what the tests exercise; keep them fast.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]

# django-axes first: it refuses a locked-out sign-in before any password is hashed.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Tests and development serve static files straight from the apps (no collectstatic needed).
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")
WHITENOISE_USE_FINDERS = DEBUG or TESTING

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")

# Cookies and HTTPS. Behind TLS set KEYGATE_HTTPS=true (check --deploy expects it).
HTTPS = _bool("KEYGATE_HTTPS", default=False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and _bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS and _bool("SECURE_HSTS_PRELOAD", default=False)
if env.str("SECURE_PROXY_SSL_HEADER", default=""):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
# Sessions end 12 h after sign-in however busy (absolute), or after an hour unused (idle; 0
# turns it off). Both are enforced on the server by keys.middleware.SessionTimeoutMiddleware.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
KEYGATE_SESSION_IDLE_TIMEOUT = env.int("KEYGATE_SESSION_IDLE_TIMEOUT", default=3600)
# Preloading is a promise for the whole domain and every subdomain that is hard to take back, and
# anyone may submit a domain whose HSTS header says "preload". It is the domain owner's decision,
# not an application default: set SECURE_HSTS_PRELOAD=true to opt in. Hence W021 is silenced.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Sign-in throttling (django-axes) for the dashboard and the admin: after AXES_FAILURE_LIMIT
# failures for one username from one address, that pair is refused (429) for AXES_COOLOFF_TIME.
# Username *and* address together, so nobody can lock everyone else out by failing on purpose.
AXES_ENABLED = _bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "keys.middleware.login_lockout_response"
# The peer address only: X-Forwarded-For is the client's to forge unless a proxy is configured.
AXES_CLIENT_IP_CALLABLE = "keys.admin.client_ip"
AXES_VERBOSE = False
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "keys.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# OpenAPI for the management REST API (/api/v1/schema/, docs at /api/docs/). Swagger UI's
# files come from drf-spectacular-sidecar, served by Keygate itself: no CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Keygate management API",
    "DESCRIPTION": (
        "Create, list, update, rotate and revoke Keygate keys, and read their usage. "
        "Authenticate with a management key (`Authorization: Bearer sk-kg-…`, made with "
        "`python manage.py keys create --management` or the dashboard) or a dashboard session."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "PREPROCESSING_HOOKS": ["keys.api.schema.only_management_api"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Content-Security-Policy (django-csp 4). Scripts only from Keygate itself: no inline script
# anywhere (data for scripts travels in <script type="application/json">). Inline styles are
# allowed because the Django admin and Swagger UI use a few; they cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Keygate -------------------------------------------------------------------------------
KEYGATE_KEY_PREFIX = env.str("KEYGATE_KEY_PREFIX", default="sk-kg")
# The pepper keys the HMAC used by the in-memory verified-key cache. It is not SECRET_KEY, so
# rotating one does not disturb the other. Rotating it only empties caches; stored keys stay valid.
KEYGATE_PEPPER = _secret("KEYGATE_PEPPER", "development-only-pepper-do-not-use")
# argon2id cost for stored keys; see keys/crypto.py for why OWASP's minimum is right for random keys.
KEYGATE_ARGON2 = {
    "time_cost": env.int("KEYGATE_ARGON2_TIME_COST", default=2),
    "memory_cost_kib": env.int("KEYGATE_ARGON2_MEMORY_KIB", default=19 * 1024),
    "parallelism": env.int("KEYGATE_ARGON2_PARALLELISM", default=1),
}
if TESTING and not env.bool("KEYGATE_TEST_REAL_ARGON2", default=False):
    KEYGATE_ARGON2 = {"time_cost": 1, "memory_cost_kib": 64, "parallelism": 1}

# A callable returning the model names the dashboard offers when creating a key (the
# gateway's configured routes). Optional: when it cannot be imported, common names are offered.
KEYGATE_MODEL_CHOICES = env.str("KEYGATE_MODEL_CHOICES", default="gateway.routing.model_choices")

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
# Anything shaped like a Keygate key — the prefix, a public id, then 8+ more key characters
# (a whole key, a mistyped one, a truncated one) — is masked in every log line, whoever logs it:
# a key pasted into a URL ("Not Found: /keys/sk-kg-…"), an exception message, a library's debug.
_KEY_IN_LOG = re.compile(rf"({re.escape(KEYGATE_KEY_PREFIX)}-[0-9A-Za-z]{{12}})[0-9A-Za-z]{{8,}}")


def _redact_keys(record: logging.LogRecord) -> bool:
    """Log filter: mask key material in the message and the stack trace (keeps the public id)."""
    message = record.getMessage()
    trace = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
    if _KEY_IN_LOG.search(message) or _KEY_IN_LOG.search(trace):
        record.msg = _KEY_IN_LOG.sub(r"\1…[redacted]", message + ("\n" + trace if trace else ""))
        record.args, record.exc_info, record.exc_text = (), None, None
    return True


def _without_traceback(record: logging.LogRecord) -> bool:
    """Log filter: keep the line, drop the stack trace (for requests refused on purpose)."""
    record.exc_info = None
    record.exc_text = None
    return True


_PLAIN_OR_JSON = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_keys": {"()": lambda: _redact_keys},
        # Django logs a refused request (a bad Host header, an oversized form, a forged session)
        # on django.security with the exception's stack trace. It is the client's fault, not a
        # bug: one line that says what was refused is what an operator needs.
        "without_traceback": {"()": lambda: _without_traceback},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "gateway.logfmt.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": _PLAIN_OR_JSON, "filters": ["redact_keys"]},
        "access": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact_keys"]},
        "security": {
            "class": "logging.StreamHandler",
            "formatter": _PLAIN_OR_JSON,
            "filters": ["without_traceback", "redact_keys"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.security": {"handlers": ["security"], "level": LOG_LEVEL, "propagate": False},
        # At DEBUG, Django's template engine logs every missing variable with the page's whole
        # context — which, on the page that shows a new key once, holds that key. Never below INFO.
        "django.template": {
            "handlers": ["console"],
            "level": "INFO" if LOG_LEVEL == "DEBUG" else LOG_LEVEL,
            "propagate": False,
        },
        # One JSON line per proxied request (request id, key's public id, model, status, timings).
        # Set KEYGATE_ACCESS_LOG=WARNING to silence it.
        "keygate.access": {
            "handlers": ["access"],
            "level": env.str("KEYGATE_ACCESS_LOG", default="INFO"),
            "propagate": False,
        },
    },
}

# Gateway (DESIGN §3). Without Redis, a key revoked in another process is refused within
# KEYGATE_STATE_TTL seconds; in the process that revoked it, at once.
KEYGATE_STATE_TTL = env.float("KEYGATE_STATE_TTL", default=1.0)
KEYGATE_NEGATIVE_TTL = env.float("KEYGATE_NEGATIVE_TTL", default=5.0)
# Brute-force guard: failed authentications per client address per minute before that address
# gets 429 for keys this process has not verified already (0 disables).
KEYGATE_AUTH_FAILURES_PER_MINUTE = env.int("KEYGATE_AUTH_FAILURES_PER_MINUTE", default=30)
KEYGATE_ROUTES_REFRESH = env.float("KEYGATE_ROUTES_REFRESH", default=10.0)
# 32 MiB: room for a request carrying a few base64 images (a 20 MB image is ~27 MB encoded).
KEYGATE_MAX_BODY_BYTES = env.int("KEYGATE_MAX_BODY_BYTES", default=32 * 1024 * 1024)
# Dashboard, admin and REST API requests (no uploads): Django would spool any body to disk first.
KEYGATE_MAX_PAGE_BODY_BYTES = env.int("KEYGATE_MAX_PAGE_BODY_BYTES", default=4 * 1024 * 1024)
KEYGATE_MAX_RESPONSE_BYTES = env.int("KEYGATE_MAX_RESPONSE_BYTES", default=64 * 1024 * 1024)

KEYGATE_METRICS_TOKEN = env.str("KEYGATE_METRICS_TOKEN", default="")
KEYGATE_USAGE_RETENTION_DAYS = env.int("KEYGATE_USAGE_RETENTION_DAYS", default=90)

# --- Gateway wire (h-wire, issue #11) -------------------------------------------------------
# CORS for browser apps calling /v1/ directly: off by default; a comma-separated list of
# origins, or "*". KEYGATE_UPSTREAM_MODELS_REFRESH: seconds between background fetches of each
# upstream's /v1/models (listed when the operator named no models; 0 disables).
KEYGATE_CORS_ORIGINS = env.list("KEYGATE_CORS_ORIGINS", default=[])
KEYGATE_UPSTREAM_MODELS_REFRESH = env.float("KEYGATE_UPSTREAM_MODELS_REFRESH", default=300.0)

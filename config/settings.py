"""Keygate settings: one file, read from the environment (and `.env` if present).

Secrets have no production default: with DEBUG off, a missing SECRET_KEY or KEYGATE_PEPPER
stops start-up with a clear message. `make run` writes a `.env` with fresh random secrets on
first run (scripts/bootstrap_env.py), so the quickstart needs no configuration.

Every variable is read through the strict helpers of config/env.py (``env_str``, ``env_bool``,
``env_int``, ``env_float``, ``env_list``, ``env_choice``): a value that is not what the setting
needs — ``SECURE_PROXY_SSL_HEADER=maybe``, ``KEYGATE_STATE_TTL=soon``, a negative size — stops
start-up with ImproperlyConfigured naming the variable, never a silent default or a truthy
string.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_float, env_int, env_list, env_str
from config.logs import FORMATS as _LOG_FORMATS
from config.logs import LEVELS as _LOG_LEVELS
from config.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

_env_file = Path(os.environ.get("KEYGATE_ENV_FILE") or BASE_DIR / ".env")
if _env_file.is_file():
    environ.Env.read_env(_env_file, overwrite=False)


def _secret(name: str, dev_default: str) -> str:
    value = env_str(name)
    if value:
        return value
    if DEBUG or TESTING:
        return dev_default
    raise ImproperlyConfigured(
        f"{name} is not set. Set it in the environment or in .env "
        f"(`make run` creates a .env with random secrets), or set DEBUG=true for development."
    )


TESTING = "pytest" in sys.modules or env_bool("KEYGATE_TESTING", default=False)
DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = _secret("SECRET_KEY", "django-insecure-development-only-secret-key-do-not-use")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", default=[])

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
    "sso",
    "notify",
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
                "sso.context.sso",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

DATABASES = {
    "default": environ.Env.db_url_config(env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'keygate.sqlite3'}")),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the dashboard read while the usage writer writes; a busy timeout instead of
    # "database is locked" under concurrent writers.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            # Write transactions take the lock when they begin, so concurrent ones wait (up to the
            # timeout) instead of failing with "database is locked" when a read turns into a write.
            "transaction_mode": "IMMEDIATE",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
# Prefix of every Redis key and channel Keygate uses, so several deployments can share one Redis.
KEYGATE_REDIS_NAMESPACE = env_str("KEYGATE_REDIS_NAMESPACE", "keygate")
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
if TESTING and not env_bool("KEYGATE_TEST_REAL_ARGON2", default=False):
    # Password hashing is not what the tests exercise (except those that ask for real argon2).
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]

# django-axes first: it refuses a locked-out sign-in before any password is hashed.
# Then Keygate's ModelBackend, which counts the attempt before the password is checked (so the
# limit holds for parallel guesses) and checks it in a slot of the argon2 limiter (keys/signin.py).
# sso.passwords.PasswordBackend is keys.signin.BoundedModelBackend, refusing everyone but the
# break-glass operator when KEYGATE_PASSWORD_LOGIN=false; sso.backend.OIDCBackend signs in
# through the OpenID provider (README, "Single sign-on").
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "sso.passwords.PasswordBackend",
    "sso.backend.OIDCBackend",
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
TIME_ZONE = env_str("TIME_ZONE", "UTC")
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

# Email: password-reset links, each a working credential until used (SECURITY.md, "Email").
# EMAIL_URL configures it — django-environ's email URL: smtp://user:password@host:25,
# smtp+tls://…:587 (STARTTLS), smtp+ssl://…:465 — or EMAIL_BACKEND names a backend. With DEBUG
# off, the console and file backends (which write the link to the log or a file) stop start-up
# unless KEYGATE_ALLOW_CONSOLE_EMAIL=true. With no email configured and DEBUG off, password
# reset is off and its page says to ask an operator: `make run` works offline, logging no token.
_CONSOLE_EMAIL = "django.core.mail.backends.console.EmailBackend"
_LOGGING_EMAIL_BACKENDS = {_CONSOLE_EMAIL, "django.core.mail.backends.filebased.EmailBackend"}
_NO_EMAIL = "django.core.mail.backends.dummy.EmailBackend"
EMAIL_URL = env_str("EMAIL_URL")
if EMAIL_URL:
    try:
        _email = environ.Env.email_url_config(EMAIL_URL)
    except (ImproperlyConfigured, ValueError) as error:
        # The URL may hold a password: name the variable, never echo the value.
        raise ImproperlyConfigured(f"EMAIL_URL is not a valid email URL (smtp://, smtp+tls://, smtp+ssl://): {error}")
    _email.pop("OPTIONS", None)
    EMAIL_BACKEND = _email.pop("EMAIL_BACKEND")
    EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
    EMAIL_PORT = _email["EMAIL_PORT"] or 25
    EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
    EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
    if _email.get("EMAIL_FILE_PATH"):
        EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"]
else:
    EMAIL_BACKEND = env_str("EMAIL_BACKEND") or (
        _CONSOLE_EMAIL if DEBUG else "django.core.mail.backends.locmem.EmailBackend" if TESTING else _NO_EMAIL
    )
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "keygate@localhost")
if EMAIL_BACKEND in _LOGGING_EMAIL_BACKENDS and not DEBUG and not env_bool("KEYGATE_ALLOW_CONSOLE_EMAIL", False):
    raise ImproperlyConfigured(
        f"{EMAIL_BACKEND} writes every email — password-reset links, which sign their holder in — to the "
        "log or a file. With DEBUG=false configure EMAIL_URL (e.g. smtp+tls://user:password@mail.example.com:587), "
        "or set KEYGATE_ALLOW_CONSOLE_EMAIL=true to accept that risk."
    )
# Off when no email is configured (the dummy backend): the reset page explains instead.
KEYGATE_PASSWORD_RESET = EMAIL_BACKEND != _NO_EMAIL

# Notifications (README, "Notifications"; notify/): webhook URLs resolving to loopback, private,
# link-local (cloud metadata) or reserved addresses are refused unless this is true.
KEYGATE_WEBHOOK_ALLOW_PRIVATE = env_bool("KEYGATE_WEBHOOK_ALLOW_PRIVATE", default=False)

# --- Single sign-on: OpenID Connect (README, "Single sign-on"; sso/) ---------------------------
# The address people reach Keygate at (no trailing slash): the OIDC redirect URI and links in
# emails are built on it. Empty: built from each request's Host (fine on one machine).
KEYGATE_PUBLIC_URL = env_str("KEYGATE_PUBLIC_URL").rstrip("/")
if KEYGATE_PUBLIC_URL and not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", KEYGATE_PUBLIC_URL):
    raise ImproperlyConfigured(
        f"KEYGATE_PUBLIC_URL must be an http(s) address such as https://keys.example.com, got {KEYGATE_PUBLIC_URL!r}"
    )
OIDC_ISSUER = env_str("OIDC_ISSUER")
OIDC_ENABLED = bool(OIDC_ISSUER)
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID")
OIDC_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET")
if OIDC_ENABLED and not (OIDC_CLIENT_ID and OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured("OIDC_ISSUER is set: set OIDC_CLIENT_ID and OIDC_CLIENT_SECRET too")
if OIDC_ENABLED and not re.fullmatch(r"https://\S+|http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/\S*)?", OIDC_ISSUER):
    raise ImproperlyConfigured(f"OIDC_ISSUER must be an https:// address (http only on loopback), got {OIDC_ISSUER!r}")
OIDC_SCOPES = env_str("OIDC_SCOPES", "openid email profile").split()
if "openid" not in OIDC_SCOPES:
    raise ImproperlyConfigured("OIDC_SCOPES must include openid")
OIDC_GROUPS_CLAIM = env_str("OIDC_GROUPS_CLAIM", "groups")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME") or (
    re.sub(r"^https?://([^/:]+).*$", r"\1", OIDC_ISSUER) if OIDC_ENABLED else ""
)
OIDC_OPERATOR_GROUPS = env_list("OIDC_OPERATOR_GROUPS", default=[])
try:
    from sso.teams import parse_team_map

    OIDC_TEAM_MAP = parse_team_map(env_str("OIDC_TEAM_MAP"))
except ValueError as error:
    raise ImproperlyConfigured(f"OIDC_TEAM_MAP: {error}") from None
# Join an existing local account with the same email at a first sign-in (only when the provider
# marked the email verified). Off by default: a new account is created.
OIDC_LINK_VERIFIED_EMAIL = env_bool("OIDC_LINK_VERIFIED_EMAIL", default=False)
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT", 10.0, minimum=0.1)
# `sso sync` disables SSO users whose last sign-in is older than this many days when the provider
# cannot be asked about them (no refresh token); 0 = never.
OIDC_SYNC_MAX_AGE_DAYS = env_int("OIDC_SYNC_MAX_AGE_DAYS", 0)
# KEYGATE_PASSWORD_LOGIN=false: no local password works except KEYGATE_BREAK_GLASS_USER's.
KEYGATE_PASSWORD_LOGIN = env_bool("KEYGATE_PASSWORD_LOGIN", default=True)
KEYGATE_BREAK_GLASS_USER = env_str("KEYGATE_BREAK_GLASS_USER")
if not KEYGATE_PASSWORD_LOGIN:
    if not OIDC_ENABLED:
        raise ImproperlyConfigured("KEYGATE_PASSWORD_LOGIN=false needs single sign-on: set OIDC_ISSUER")
    KEYGATE_PASSWORD_RESET = False

# Cookies and HTTPS. Behind TLS set KEYGATE_HTTPS=true (check --deploy expects it).
HTTPS = env_bool("KEYGATE_HTTPS", default=False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS and env_bool("SECURE_HSTS_PRELOAD", default=False)
# Trust X-Forwarded-Proto only when told to (a strict boolean: "false" means false).
if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
# Sessions end 12 h after sign-in however busy (absolute), or after an hour unused (idle; 0
# turns it off). Both are enforced on the server by keys.middleware.SessionTimeoutMiddleware.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600, minimum=60)
KEYGATE_SESSION_IDLE_TIMEOUT = env_int("KEYGATE_SESSION_IDLE_TIMEOUT", 3600)
# Preloading is a promise for the whole domain and every subdomain that is hard to take back, and
# anyone may submit a domain whose HSTS header says "preload". It is the domain owner's decision,
# not an application default: set SECURE_HSTS_PRELOAD=true to opt in. Hence W021 is silenced.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Sign-in throttling (django-axes) for the dashboard and the admin: after AXES_FAILURE_LIMIT
# failures for one username from one address, that pair is refused (429) for AXES_COOLOFF_TIME.
# Username *and* address together, so nobody can lock everyone else out by failing on purpose.
AXES_ENABLED = env_bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "keys.signin.refused_sign_in_response"
# A sign-in refused because argon2 was busy checked no password: not a failure.
AXES_WHITELIST_CALLABLE = "keys.signin.not_counted"
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
        "Create, list, update, rotate, pause, resume and revoke Keygate keys, and read their usage. "
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
    # Deep links put an <a> inside each operation's toggle <button> (axe: nested-interactive).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False, "persistAuthorization": True},
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
KEYGATE_KEY_PREFIX = env_str("KEYGATE_KEY_PREFIX", "sk-kg")
# The pepper keys the HMAC used by the in-memory verified-key cache. It is not SECRET_KEY, so
# rotating one does not disturb the other. Rotating it only empties caches; stored keys stay valid.
KEYGATE_PEPPER = _secret("KEYGATE_PEPPER", "development-only-pepper-do-not-use")
# argon2id cost for stored keys; see keys/crypto.py for why OWASP's minimum is right for random keys.
KEYGATE_ARGON2 = {
    "time_cost": env_int("KEYGATE_ARGON2_TIME_COST", 2, minimum=1),
    "memory_cost_kib": env_int("KEYGATE_ARGON2_MEMORY_KIB", 19 * 1024, minimum=8),
    "parallelism": env_int("KEYGATE_ARGON2_PARALLELISM", 1, minimum=1),
}
if TESTING and not env_bool("KEYGATE_TEST_REAL_ARGON2", default=False):
    KEYGATE_ARGON2 = {"time_cost": 1, "memory_cost_kib": 64, "parallelism": 1}

# A callable returning the model names the dashboard offers when creating a key (the
# gateway's configured routes). Optional: when it cannot be imported, common names are offered.
KEYGATE_MODEL_CHOICES = env_str("KEYGATE_MODEL_CHOICES", "gateway.routing.model_choices")

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", _LOG_LEVELS)
# config/logs.py: every line masks anything shaped like a key. KEYGATE_ACCESS_LOG=WARNING silences
# the gateway's access log (one JSON line per proxied request).
LOGGING = logging_config(
    level=LOG_LEVEL,
    access_level=env_choice("KEYGATE_ACCESS_LOG", "INFO", _LOG_LEVELS),
    log_format=env_choice("LOG_FORMAT", "plain", _LOG_FORMATS),
    key_prefix=KEYGATE_KEY_PREFIX,
)

# Gateway (DESIGN §3). Without Redis, a key revoked in another process is refused within
# KEYGATE_STATE_TTL seconds; in the process that revoked it, at once.
KEYGATE_STATE_TTL = env_float("KEYGATE_STATE_TTL", 1.0)
KEYGATE_NEGATIVE_TTL = env_float("KEYGATE_NEGATIVE_TTL", 5.0)
# Brute-force guard: failed authentications per client address per minute before that address
# gets 429 for keys this process has not verified already (0 disables).
KEYGATE_AUTH_FAILURES_PER_MINUTE = env_int("KEYGATE_AUTH_FAILURES_PER_MINUTE", 30)
# Failed authentications per public id per minute before well-formed keys naming it get 429 (on
# /v1/ and /api/v1/) for the rest of the minute; a key this process verified already is unaffected.
KEYGATE_AUTH_FAILURES_PER_KEY_PER_MINUTE = env_int("KEYGATE_AUTH_FAILURES_PER_KEY_PER_MINUTE", 10)
# The one argon2 limiter per process (keys/costly.py): key verifications and password hashing
# share at most MAX_CONCURRENT slots (default: 4, or fewer cores) within MEMORY_MIB of argon2
# memory (a key verify takes 19 MiB, a password check 100 MiB); QUEUE more wait up to MAX_WAIT
# seconds; anyone else is refused at once (503 on /v1/ and /api/v1/, 429 on the sign-in page).
KEYGATE_ARGON2_LIMITS = {
    "max_concurrent": env_int("KEYGATE_ARGON2_MAX_CONCURRENT", max(1, min(4, os.cpu_count() or 1)), minimum=1),
    "memory_kib": env_int("KEYGATE_ARGON2_MEMORY_MIB", 256, minimum=1) * 1024,
    "max_queued": env_int("KEYGATE_ARGON2_QUEUE", 32),
    "max_wait": env_float("KEYGATE_ARGON2_MAX_WAIT", 2.0),
}
KEYGATE_ROUTES_REFRESH = env_float("KEYGATE_ROUTES_REFRESH", 10.0, minimum=0.1)
# Failover (README "Failover and load balancing"): the declarative file, and each deployment's
# circuit breaker — BREAKER_FAILURES failures within BREAKER_WINDOW seconds open it for
# BREAKER_COOLDOWN seconds, then one probe request decides. KEYGATE_ROUTER_SEED makes the
# weighted choice between deployments reproducible (tests, benchmarks).
KEYGATE_CONFIG = env_str("KEYGATE_CONFIG", "")
KEYGATE_BREAKER_FAILURES = env_int("KEYGATE_BREAKER_FAILURES", 5, minimum=1)
KEYGATE_BREAKER_WINDOW = env_float("KEYGATE_BREAKER_WINDOW", 30.0, minimum=0.1)
KEYGATE_BREAKER_COOLDOWN = env_float("KEYGATE_BREAKER_COOLDOWN", 30.0, minimum=0.1)
KEYGATE_ROUTER_SEED = env_str("KEYGATE_ROUTER_SEED", "")
# 32 MiB: room for a request carrying a few base64 images (a 20 MB image is ~27 MB encoded).
KEYGATE_MAX_BODY_BYTES = env_int("KEYGATE_MAX_BODY_BYTES", 32 * 1024 * 1024, minimum=1)
# Dashboard, admin and REST API requests (no uploads): Django would spool any body to disk first.
KEYGATE_MAX_PAGE_BODY_BYTES = env_int("KEYGATE_MAX_PAGE_BODY_BYTES", 4 * 1024 * 1024, minimum=1)
KEYGATE_MAX_RESPONSE_BYTES = env_int("KEYGATE_MAX_RESPONSE_BYTES", 64 * 1024 * 1024, minimum=1)

KEYGATE_METRICS_TOKEN = env_str("KEYGATE_METRICS_TOKEN")
# Environment variables a provider may read its credential from, besides KEYGATE_UPSTREAM_* and
# OPENAI_API_KEY / ANTHROPIC_API_KEY (comma-separated). Keygate's own secrets are refused even
# when listed (gateway.models.credential_env_refusal, SECURITY.md "Provider credentials").
KEYGATE_UPSTREAM_ENV_ALLOWED = env_list("KEYGATE_UPSTREAM_ENV_ALLOWED", default=[])
KEYGATE_USAGE_RETENTION_DAYS = env_int("KEYGATE_USAGE_RETENTION_DAYS", 90, minimum=1)

# Leaked keys (SECURITY.md, "Leaked keys"): GitHub secret scanning and the public report endpoint.
# GitHub's partner batches are signed; the signing keys are fetched from this URL (cached by
# identifier, re-fetched at most once a minute) — point it elsewhere for tests or air-gapped mirrors.
KEYGATE_GITHUB_SCANNING_KEYS_URL = env_str(
    "KEYGATE_GITHUB_SCANNING_KEYS_URL", "https://api.github.com/meta/public_keys/secret_scanning"
)
# Organisation webhooks (secret_scanning_alert): the webhook's secret, and a token that may read
# secret-scanning alerts, used only against KEYGATE_GITHUB_API_URL (never a URL from a payload).
KEYGATE_GITHUB_WEBHOOK_SECRET = env_str("KEYGATE_GITHUB_WEBHOOK_SECRET", "")
KEYGATE_GITHUB_TOKEN = env_str("KEYGATE_GITHUB_TOKEN", "")
KEYGATE_GITHUB_API_URL = env_str("KEYGATE_GITHUB_API_URL", "https://api.github.com").rstrip("/")
# POST /security/report-leak: reports per client address per minute (counted before any work).
KEYGATE_LEAK_REPORTS_PER_MINUTE = env_int("KEYGATE_LEAK_REPORTS_PER_MINUTE", 10)
# Largest body the /security/ endpoints read (a GitHub batch of 1,000 tokens is ~250 KB).
KEYGATE_SECURITY_MAX_BODY_BYTES = env_int("KEYGATE_SECURITY_MAX_BODY_BYTES", 1024 * 1024)

# CORS for browser apps calling /v1/ directly: off by default; a comma-separated list of
# origins, or "*". KEYGATE_UPSTREAM_MODELS_REFRESH: seconds between background fetches of each
# upstream's /v1/models (listed when the operator named no models; 0 disables).
KEYGATE_CORS_ORIGINS = env_list("KEYGATE_CORS_ORIGINS", default=[])
KEYGATE_UPSTREAM_MODELS_REFRESH = env_float("KEYGATE_UPSTREAM_MODELS_REFRESH", 300.0)

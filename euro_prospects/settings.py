"""Settings for Euro Prospects: every knob is an environment variable.

Development defaults are safe and need no set-up (SQLite, console email, local
Redis). A malformed value, or a missing secret in production (DEBUG off), stops
start-up with a message naming the variable to set. docs/configuration.md lists
them all. Read top to bottom: the site, apps, database and caches, email,
security, operations, then the articles, the newsletter, the API and Celery.
"""

import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from euro_prospects.email_url import email_settings
from euro_prospects.env import (
    MAKE_A_KEY,
    envbool,
    envfloat,
    envint,
    envlist,
    example_values,
    secret_key,
)
from euro_prospects.observability import logging_settings
from euro_prospects.security import parse_proxy_networks

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = envbool("DEBUG", "true")

# Signs sessions and readers' links; production refuses a missing, short or published one.
SECRET_KEY = secret_key(debug=DEBUG)

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is empty. With DEBUG off, set ALLOWED_HOSTS to the site's host names, comma-separated, "
        "e.g. ALLOWED_HOSTS=europrospects.example"
    )
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

SITE_URL = os.getenv("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
if not SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"SITE_URL must start with http:// or https://, got {SITE_URL!r}")

INSTALLED_APPS = [
    "euro_prospects.apps.NewsroomAdminConfig",  # django.contrib.admin with the newsroom site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "simple_history",
    "django_prose_editor",
    "django.contrib.sitemaps",
    "articles",
    "newsletter",
    "anymail",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
]

MIDDLEWARE = [
    "euro_prospects.observability.RequestIdMiddleware",
    "euro_prospects.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "euro_prospects.twofactor.StaffTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "euro_prospects.urls"
WSGI_APPLICATION = "euro_prospects.wsgi.application"

# The public site is Jinja2 (euro_prospects/jinja2.py says why), first so a reader's page is found
# at once; the admin and emails are Django templates; no name is in both (test_templates.py).
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "jinja2"],
        "APP_DIRS": True,
        "OPTIONS": {
            "environment": "euro_prospects.jinja2.environment",
            # Django advises Jinja2 globals over context processors; these stay processors
            # because every page's layout shows them and, unlike globals, they stay out of
            # a page rendered without a request (the 500 page).
            "context_processors": [
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "articles.context_processors.site_navigation",
            ],
        },
    },
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
            ],
        },
    },
]

# Database: SQLite file by default, anything dj-database-url reads through DATABASE_URL.
DATABASE_URL = os.getenv("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", "60"))}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# The hottest hand-written statements are prepared once per connection
# (euro_prospects.db.prepared_cursor); switch off behind a pooler that cannot
# keep prepared statements (PgBouncer in transaction mode before 1.21).
DB_PREPARED_STATEMENTS = envbool("DB_PREPARED_STATEMENTS", "true")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.getenv("REDIS_URL", "redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL must start with redis://, rediss:// or unix://, got {REDIS_URL!r}")
# The cache (pages, rate-limit counters) may live in a Redis of its own, which can then
# evict (allkeys-lru) while the broker's Redis keeps noeviction: a full cache must never
# make the broker refuse tasks.
CACHE_REDIS_URL = os.getenv("CACHE_REDIS_URL", REDIS_URL)
if not CACHE_REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"CACHE_REDIS_URL must start with redis://, rediss:// or unix://, got {CACHE_REDIS_URL!r}"
    )
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_REDIS_URL,
        "KEY_PREFIX": os.getenv("CACHE_KEY_PREFIX", "ep"),
        "TIMEOUT": envint("CACHE_TIMEOUT", "300"),
    }
}

# Public pages for anonymous readers are cached whole in Redis (articles/cache.py)
# and invalidated on every change; browsers may keep them PAGE_BROWSER_MAX_AGE seconds.
PAGE_CACHE_ENABLED = envbool("PAGE_CACHE", "true")
PAGE_CACHE_TIMEOUT = envint("PAGE_CACHE_TIMEOUT", "600")
PAGE_BROWSER_MAX_AGE = envint("PAGE_BROWSER_MAX_AGE", "60")
# After a change one request re-renders a page; the others get the previous version, or,
# for a page never rendered before, wait at most this many seconds for that render.
PAGE_RENDER_WAIT = envfloat("PAGE_RENDER_WAIT", "5")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.getenv("TIME_ZONE", "Europe/Brussels")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.getenv("MEDIA_ROOT", str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Email
EMAIL_URL = os.getenv("EMAIL_URL", "console://" if DEBUG else "")
if not EMAIL_URL:
    raise ImproperlyConfigured("EMAIL_URL is not set. With DEBUG off, set EMAIL_URL, e.g. smtp://mail.example:587")
globals().update(email_settings(EMAIL_URL))
DEFAULT_FROM_EMAIL = os.getenv("DEFAULT_FROM_EMAIL", "Euro Prospects <newsletter@localhost>")
SERVER_EMAIL = os.getenv("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
# A system email (a confirmation, a notice to editors…) that meets a server or network that
# is down, or a "try again later", is tried again: after EMAIL_RETRY_DELAY seconds, then twice
# as long each time (at most half CELERY_VISIBILITY_TIMEOUT), EMAIL_RETRIES times.
EMAIL_RETRIES = envint("EMAIL_RETRIES", "12", minimum=0)
EMAIL_RETRY_DELAY = envfloat("EMAIL_RETRY_DELAY", "30", minimum=0)

# Security. Defaults are production-safe when DEBUG is off; `manage.py check
# --deploy` passes with them. docs/deploy.md explains each one.
# Behind a TLS-terminating proxy (nginx) that sets X-Forwarded-Proto: trust it,
# and only then, or anyone could claim to be on HTTPS.
TRUST_X_FORWARDED_PROTO = envbool("TRUST_X_FORWARDED_PROTO", "false")
if TRUST_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Proxies (addresses or CIDR ranges) whose X-Forwarded-For / X-Real-IP name the
# client: euro_prospects.security.client_ip, the one source of a client's address.
TRUSTED_PROXIES = envlist("TRUSTED_PROXIES", "")
try:
    parse_proxy_networks(",".join(TRUSTED_PROXIES))
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES: {exc}") from None
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "false" if DEBUG else "true")
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "0" if DEBUG else str(365 * 24 * 3600))
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", "false" if DEBUG else "true")
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", "false" if DEBUG else "true")
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", "false" if DEBUG else "true")
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", "false" if DEBUG else "true")
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = envint("SESSION_COOKIE_AGE", str(12 * 3600))
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = os.getenv("REFERRER_POLICY", "strict-origin-when-cross-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# The admin lives at /ADMIN_URL (default admin/); moving it hides it from scanners.
ADMIN_URL = os.getenv("ADMIN_URL", "admin/").strip().strip("/") + "/"
if ADMIN_URL == "/":
    raise ImproperlyConfigured("ADMIN_URL must not be empty, e.g. ADMIN_URL=office/")

# Content-Security-Policy (django-csp): no inline scripts or styles, except
# those carrying the per-response nonce (`{{ request.csp_nonce }}`).
CSP_IMG_SRC = envlist("CSP_IMG_SRC", "")
CSP_REPORT_URI = os.getenv("CSP_REPORT_URI", "")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:", *CSP_IMG_SRC],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        **({"report-uri": [CSP_REPORT_URI]} if CSP_REPORT_URI else {}),
    },
}

# Brute-force protection for every login (django-axes): AXES_FAILURE_LIMIT failures for one
# user name from one address lock that pair out for AXES_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = envbool("AXES_ENABLED", "true")
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = timedelta(minutes=envint("AXES_COOLOFF_MINUTES", "30"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
# Behind nginx the client address comes from X-Forwarded-For, read only when the
# peer is one of TRUSTED_PROXIES.
AXES_CLIENT_IP_CALLABLE = "euro_prospects.security.client_ip"

# Two-factor sign-in (django-otp, TOTP) for superusers, editors and staff in the
# STAFF_2FA_GROUPS, whenever REQUIRE_STAFF_2FA is on. On by default in production.
REQUIRE_STAFF_2FA = envbool("REQUIRE_STAFF_2FA", "false" if DEBUG else "true")
STAFF_2FA_GROUPS = envlist("STAFF_2FA_GROUPS", "")
OTP_TOTP_ISSUER = os.getenv("OTP_TOTP_ISSUER", "Euro Prospects")

# Uploaded images (euro_prospects.images): size and pixel caps.
IMAGE_MAX_BYTES = envint("IMAGE_MAX_BYTES", str(10 * 1024 * 1024))
IMAGE_MAX_PIXELS = envint("IMAGE_MAX_PIXELS", str(40_000_000))

# Prometheus metrics at METRICS_PATH; with METRICS_TOKEN set, scrapes send "Authorization: Bearer
# <token>". Under gunicorn and Celery set PROMETHEUS_MULTIPROC_DIR (docs/deploy.md).
METRICS_PATH = os.getenv("METRICS_PATH", "metrics").strip().strip("/")
METRICS_TOKEN = os.getenv("METRICS_TOKEN", "")
if not DEBUG and METRICS_TOKEN in example_values("METRICS_TOKEN"):
    raise ImproperlyConfigured(
        "METRICS_TOKEN is the example value from deploy/, which anyone can read. "
        f"Set another random string, e.g. {MAKE_A_KEY}, or leave it empty"
    )
METRICS_QUEUES = envlist("METRICS_QUEUES", "celery")
# /healthz (euro_prospects/health.py): workers write a heartbeat every HEALTH_HEARTBEAT_INTERVAL s, are
# down once it is older than HEALTH_HEARTBEAT_MAX_AGE; a web process reuses its answer HEALTH_CACHE_SECONDS.
HEALTH_HEARTBEAT_INTERVAL = envfloat("HEALTH_HEARTBEAT_INTERVAL", "10")
HEALTH_HEARTBEAT_MAX_AGE = envfloat("HEALTH_HEARTBEAT_MAX_AGE", "45")
HEALTH_CACHE_SECONDS = envfloat("HEALTH_CACHE_SECONDS", "2")
if HEALTH_HEARTBEAT_MAX_AGE <= HEALTH_HEARTBEAT_INTERVAL:
    raise ImproperlyConfigured(
        f"HEALTH_HEARTBEAT_MAX_AGE ({HEALTH_HEARTBEAT_MAX_AGE}) must exceed HEALTH_HEARTBEAT_INTERVAL "
        f"({HEALTH_HEARTBEAT_INTERVAL}), or live workers would look down"
    )
# Load balancers and Prometheus probe these over plain HTTP on the inside.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", rf"^{re.escape(METRICS_PATH)}$"]

# Error reports go to Sentry when SENTRY_DSN is set, and nowhere otherwise.
SENTRY_DSN = os.getenv("SENTRY_DSN", "")
if SENTRY_DSN:
    from euro_prospects.observability import init_sentry

    init_sentry(
        dsn=SENTRY_DSN,
        environment=os.getenv("SENTRY_ENVIRONMENT", "development" if DEBUG else "production"),
        traces_sample_rate=envfloat("SENTRY_TRACES_SAMPLE_RATE", "0"),
    )

LOG_LEVEL = os.getenv("LOG_LEVEL", "INFO").upper()
# json: one JSON object per line (production default, for a log collector);
# plain: human-readable lines (development default). Both carry the request id.
LOG_FORMAT = os.getenv("LOG_FORMAT", "plain" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, got {LOG_FORMAT!r}")
LOGGING = logging_settings(level=LOG_LEVEL, log_format=LOG_FORMAT)

# Articles CMS: the contributor form's limits.
WRITE_RATE_LIMIT = envint("WRITE_RATE_LIMIT", "5")
WRITE_RATE_WINDOW = envint("WRITE_RATE_WINDOW", "3600")
# Days a shared preview link works (articles/previews.py); editors can revoke one sooner.
PREVIEW_LINK_DAYS = envint("PREVIEW_LINK_DAYS", "7", minimum=1)

# Newsletter subscriptions: confirmation link age, consent wording version, re-sends, rate limits, bounces.
NEWSLETTER_CONFIRM_MAX_AGE = envint("NEWSLETTER_CONFIRM_MAX_AGE", str(7 * 24 * 3600))
NEWSLETTER_UNSUBSCRIBE_MAILTO = os.getenv("NEWSLETTER_UNSUBSCRIBE_MAILTO", "unsubscribe@localhost")
NEWSLETTER_CONSENT_VERSION = os.getenv("NEWSLETTER_CONSENT_VERSION", "2026-01")
NEWSLETTER_CONFIRM_RESEND_INTERVAL = envint("NEWSLETTER_CONFIRM_RESEND_INTERVAL", "900")
NEWSLETTER_RATE_LIMIT_WINDOW = envint("NEWSLETTER_RATE_LIMIT_WINDOW", "3600")
NEWSLETTER_RATE_LIMIT_PER_IP = envint("NEWSLETTER_RATE_LIMIT_PER_IP", "30")
NEWSLETTER_RATE_LIMIT_PER_ADDRESS = envint("NEWSLETTER_RATE_LIMIT_PER_ADDRESS", "5")
NEWSLETTER_SOFT_BOUNCE_THRESHOLD = envint("NEWSLETTER_SOFT_BOUNCE_THRESHOLD", "3")
# Subscriber imports started in the admin run in a worker, with their own time limit (seconds).
NEWSLETTER_IMPORT_TIME_LIMIT = envint("NEWSLETTER_IMPORT_TIME_LIMIT", "3600")
# django-anymail tracking webhooks authenticate with basic auth "user:password" (ANYMAIL_WEBHOOK_SECRET)
# or the provider's signing key (Mailgun, Unisender Go, MailerSend, Mandrill, Resend; docs/deploy.md).
ANYMAIL_WEBHOOK_KEYS = {
    "MAILGUN_WEBHOOK_SIGNING_KEY": os.getenv("ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY", ""),
    "UNISENDER_GO_API_KEY": os.getenv("ANYMAIL_UNISENDER_GO_API_KEY", ""),
    "MAILERSEND_SIGNING_SECRET": os.getenv("ANYMAIL_MAILERSEND_SIGNING_SECRET", ""),
    "MANDRILL_WEBHOOK_KEY": os.getenv("ANYMAIL_MANDRILL_WEBHOOK_KEY", ""),
    "RESEND_SIGNING_SECRET": os.getenv("ANYMAIL_RESEND_SIGNING_SECRET", ""),
}
ANYMAIL = {
    "WEBHOOK_SECRET": os.getenv("ANYMAIL_WEBHOOK_SECRET", "") or None,
    **{name: value for name, value in ANYMAIL_WEBHOOK_KEYS.items() if value},
}

# Newsletter sending engine (docs/newsletter.md).
NEWSLETTER_BATCH_SIZE = envint("NEWSLETTER_BATCH_SIZE", "500")
NEWSLETTER_SEND_CONCURRENCY = envint("NEWSLETTER_SEND_CONCURRENCY", "2")
NEWSLETTER_CONNECTIONS_PER_BATCH = envint("NEWSLETTER_CONNECTIONS_PER_BATCH", "1")
NEWSLETTER_LEASE_SECONDS = envint("NEWSLETTER_LEASE_SECONDS", "90")
NEWSLETTER_RECOVERY_INTERVAL = envfloat("NEWSLETTER_RECOVERY_INTERVAL", "30")
NEWSLETTER_MAX_ATTEMPTS = envint("NEWSLETTER_MAX_ATTEMPTS", "6")
NEWSLETTER_RETRY_BASE_SECONDS = envfloat("NEWSLETTER_RETRY_BASE_SECONDS", "60")
NEWSLETTER_RETRY_MAX_SECONDS = envfloat("NEWSLETTER_RETRY_MAX_SECONDS", "3600")
NEWSLETTER_RATE_PER_SECOND = envint("NEWSLETTER_RATE_PER_SECOND", "0")
NEWSLETTER_RATE_PER_HOUR = envint("NEWSLETTER_RATE_PER_HOUR", "0")
NEWSLETTER_LEDGER_SYNCHRONOUS_COMMIT = envbool("NEWSLETTER_LEDGER_SYNCHRONOUS_COMMIT", "true")
NEWSLETTER_DATABASE_WAIT_SECONDS = envfloat("NEWSLETTER_DATABASE_WAIT_SECONDS", "60")
# Consecutive identical refusals that say nothing about the mailbox (e.g. "550 rejected")
# after which a campaign pauses for an editor; 0 never pauses on a run of them.
NEWSLETTER_PAUSE_AFTER = envint("NEWSLETTER_PAUSE_AFTER", "20", minimum=0)
NEWSLETTER_EMAIL_EXCERPT = envbool("NEWSLETTER_EMAIL_EXCERPT", "false")
NEWSLETTER_EMAIL_EXCERPT_WORDS = envint("NEWSLETTER_EMAIL_EXCERPT_WORDS", "120")
# ESP batch sending (anymail://ESP): readers per API call, and the merge-field syntax with {} for the
# field name; unset: the ESP's default (transports/esp.py ESP_MERGE_FIELDS); "off": one call per reader.
NEWSLETTER_ESP_BATCH_SIZE = envint("NEWSLETTER_ESP_BATCH_SIZE", "100", minimum=1)
NEWSLETTER_ESP_MERGE_FIELD: str | None = os.getenv("NEWSLETTER_ESP_MERGE_FIELD", "").strip() or None
if NEWSLETTER_ESP_MERGE_FIELD and NEWSLETTER_ESP_MERGE_FIELD != "off" and "{}" not in NEWSLETTER_ESP_MERGE_FIELD:
    raise ImproperlyConfigured(
        "NEWSLETTER_ESP_MERGE_FIELD must contain {} where the field name goes (e.g. %recipient.{}%), "
        f"or be off; got {NEWSLETTER_ESP_MERGE_FIELD!r}"
    )
# Ledger compaction (newsletter/compaction.py): a finished campaign older than this many
# days keeps its counts and loses its per-reader rows; 0 keeps every row for ever.
NEWSLETTER_LEDGER_RETENTION_DAYS = envint("NEWSLETTER_LEDGER_RETENTION_DAYS", "90", minimum=0)
NEWSLETTER_LEDGER_COMPACT_BATCH = envint("NEWSLETTER_LEDGER_COMPACT_BATCH", "5000", minimum=1)
# Digests: beat looks this often (seconds) for a daily or weekly digest whose send time
# (site settings) has come; a digest starts once per period however often it looks.
NEWSLETTER_DIGEST_CHECK_INTERVAL = envfloat("NEWSLETTER_DIGEST_CHECK_INTERVAL", "300")

# Engagement figures (newsletter/engagement/, docs/engagement.md): tracked links through
# /r/<token>/, opens only when asked for, raw events rolled up after a retention period.
NEWSLETTER_CLICK_TRACKING = envbool("NEWSLETTER_CLICK_TRACKING", "true")
NEWSLETTER_TRACK_OPENS = envbool("NEWSLETTER_TRACK_OPENS", "false")
NEWSLETTER_PER_READER_STATS = envbool("NEWSLETTER_PER_READER_STATS", "false")
ANALYTICS_RETENTION_DAYS = envint("ANALYTICS_RETENTION_DAYS", "30", minimum=1)
NEWSLETTER_SCANNER_GRACE_SECONDS = envint("NEWSLETTER_SCANNER_GRACE_SECONDS", "30", minimum=0)
NEWSLETTER_SCANNER_BURST_SECONDS = envint("NEWSLETTER_SCANNER_BURST_SECONDS", "10", minimum=1)
NEWSLETTER_SCANNER_BURST_SHARE = envfloat("NEWSLETTER_SCANNER_BURST_SHARE", "0.5", minimum=0.01, maximum=1)
NEWSLETTER_ENGAGEMENT_FLUSH_INTERVAL = envfloat("NEWSLETTER_ENGAGEMENT_FLUSH_INTERVAL", "15")

# API (Django REST framework): /api/v1/, the OpenAPI schema at /api/schema/, docs at /api/docs/.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "PAGE_SIZE": envint("API_PAGE_SIZE", "20"),
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiSchema",
    "EXCEPTION_HANDLER": "api.errors.json_exception_handler",
}
# API tokens (django-rest-knox, api/tokens.py): stored as SHA-512 digests, sent as
# "Authorization: Token KEY", valid for API_TOKEN_TTL seconds after they are made.
API_TOKEN_TTL = envint("API_TOKEN_TTL", str(30 * 24 * 3600), minimum=1, unit="second")
REST_KNOX = {
    "TOKEN_TTL": timedelta(seconds=API_TOKEN_TTL),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Euro Prospects API",
    "DESCRIPTION": "Published articles, topics and authors for everyone; writing and publishing for staff.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Celery: broker on Redis. Tasks are idempotent (they take ids and re-read rows),
# so they acknowledge late and go back to the queue when a worker dies.
CELERY_BROKER_URL = os.getenv("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", "240")
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", "300")
# A message taken by a worker that dies reappears after this many seconds. It
# must exceed the longest task (the hard time limit) so a slow but live task is
# never delivered twice; crash recovery does not wait for it (NEWSLETTER_RECOVERY_INTERVAL).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", "900"),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", "false")
CELERY_TASK_EAGER_PROPAGATES = True

# Periodic tasks (Celery beat), all of them.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "articles-publish-due": {
        "task": "articles.tasks.publish_due_articles",
        "schedule": 30.0,
        "options": {"expires": 25},
    },
    "newsletter-compact-ledger": {
        "task": "newsletter.tasks.compact_ledger",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    "newsletter-recover-campaigns": {
        "task": "newsletter.tasks.recover_campaigns",
        "schedule": NEWSLETTER_RECOVERY_INTERVAL,
    },
    "newsletter-send-digests": {
        "task": "newsletter.tasks.send_due_digests",
        "schedule": NEWSLETTER_DIGEST_CHECK_INTERVAL,
        "options": {"expires": NEWSLETTER_DIGEST_CHECK_INTERVAL},
    },
    "newsletter-flush-engagement": {
        "task": "newsletter.engagement.tasks.flush_engagement_events",
        "schedule": NEWSLETTER_ENGAGEMENT_FLUSH_INTERVAL,
        "options": {"expires": NEWSLETTER_ENGAGEMENT_FLUSH_INTERVAL},
    },
    "newsletter-roll-up-engagement": {
        "task": "newsletter.engagement.tasks.roll_up_engagement",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
}

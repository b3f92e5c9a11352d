"""Django settings, read from the environment (see :mod:`reirrad.web`).

The data folder (``REIRRAD_DATA``) holds everything the service writes: the SQLite database
(unless ``DATABASE_URL`` names another), the content-addressed file store, collected static
files and the secret key, generated once. Nothing is served from it directly: stored files
go out only through views that check the user's department.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

from reirrad.web import default_data_dir


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


DATA_DIR = Path(os.environ.get("REIRRAD_DATA") or default_data_dir()).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
STORE_DIR = DATA_DIR / "store"
# The DICOM node (``reirrad serve`` starts it when REIRRAD_DICOM_PORT is set; docs/dicom-node.md)
DICOM_SPOOL_DIR = DATA_DIR / "dicom-spool"
DICOM_PORT = int(os.environ["REIRRAD_DICOM_PORT"]) if os.environ.get("REIRRAD_DICOM_PORT") else None
DICOM_HOST = os.environ.get("REIRRAD_DICOM_HOST", "127.0.0.1")
DICOM_AE_TITLE = os.environ.get("REIRRAD_DICOM_AE_TITLE", "REIRRAD")
#: allowed calling AEs, comma-separated ``AE`` or ``AE@host``; empty: any (a warning at start)
DICOM_ALLOW = [a for a in os.environ.get("REIRRAD_DICOM_ALLOW", "").split(",") if a.strip()]
#: the department whose patients the received objects are matched against
DICOM_DEPARTMENT = os.environ.get("REIRRAD_DICOM_DEPARTMENT", "")
DICOM_IDLE_SECONDS = float(os.environ.get("REIRRAD_DICOM_IDLE_S", "30"))


def _secret_key(data_dir: Path) -> str:
    """``REIRRAD_SECRET_KEY``, else the key in the data folder, generated on first use.

    The file is created exclusively (mode 0600) so two processes starting at once cannot
    write two different keys; the loser reads the winner's.
    """
    if os.environ.get("REIRRAD_SECRET_KEY"):
        return os.environ["REIRRAD_SECRET_KEY"]
    path = data_dir / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if len(key) >= 50:
            return key
        raise RuntimeError(f"{path}: the secret key is empty or short; delete the file") from None
    key = secrets.token_urlsafe(64)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key(DATA_DIR)
DEBUG = _flag("REIRRAD_DEBUG")
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("REIRRAD_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "reirrad.web.registry",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "reirrad.web.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "reirrad.web.urls"
WSGI_APPLICATION = "reirrad.web.wsgi.application"

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

# --- database: SQLite in the data folder unless DATABASE_URL names one (PostgreSQL) ---
_SQLITE_DEFAULT = f"sqlite:///{DATA_DIR / 'reirrad.sqlite3'}"
DATABASES = {"default": dj_database_url.config(default=_SQLITE_DEFAULT, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write at once: WAL lets readers go on while one
    # writes, IMMEDIATE transactions take the write lock up front (no deadlock on upgrade),
    # and a writer waits up to 20 s for the lock instead of failing.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- background jobs: a database-backed queue (django-tasks), run by `db_worker` ---
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

# --- authentication ---
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "registry:patients"
LOGOUT_REDIRECT_URL = "login"
#: Failed logins of one user name (or one address) within the window before refusing more.
LOGIN_FAILURE_LIMIT = int(os.environ.get("REIRRAD_LOGIN_FAILURE_LIMIT", "5"))
LOGIN_FAILURE_WINDOW_S = 15 * 60

# --- security headers and cookies (HTTPS-only cookies and HSTS when served over TLS) ---
HTTPS = _flag("REIRRAD_HTTPS")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 8 * 3600
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if HTTPS:
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
#: Content-Security-Policy of every page; the stored HTML report (self-contained: inline
#: styles, embedded images) gets its own in the view that serves it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

# --- static files: collected into the data folder, served by whitenoise ---
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # filled by collectstatic (reirrad serve)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

#: Upload limits (bytes): one request, and the part kept in memory before spooling to disk.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
#: A DICOM folder is many files (a CT series: hundreds); reirrad.web.registry.ingest limits them.
DATA_UPLOAD_MAX_NUMBER_FILES = 10_000
#: Uploads larger than the in-memory part spool into the store's temporary folder (not the
#: system's): a web server killed mid-upload leaves them where the store's sweep and
#: consistency check (``reirrad check-store``) find them.
FILE_UPLOAD_TEMP_DIR = STORE_DIR / "tmp"
FILE_UPLOAD_TEMP_DIR.mkdir(parents=True, exist_ok=True)

#: A running assessment's lease: the worker renews its heartbeat every HEARTBEAT seconds; a
#: worker (``python -m reirrad.web worker``) marks one whose heartbeat is older than LEASE
#: seconds failed (its worker died: kill -9, power loss) at start and every LEASE seconds.
ASSESSMENT_HEARTBEAT_S = float(os.environ.get("REIRRAD_HEARTBEAT_S", "10"))
ASSESSMENT_LEASE_S = float(os.environ.get("REIRRAD_LEASE_S", "60"))
#: Temporary files in the store older than this (seconds since last written) are debris of a
#: killed process; a live upload or run writes its file continuously.
STORE_TEMP_MAX_AGE_S = float(os.environ.get("REIRRAD_TEMP_MAX_AGE_S", "3600"))

#: Write the report's PDF (needs headless Chromium); "auto": when Chromium is installed.
REPORT_PDF = os.environ.get("REIRRAD_REPORT_PDF", "auto")

#: The planning system results are sent back to (``AE@host:port``; empty: sending is off),
#: and this node's AE title when it calls (docs/dicom-node.md).
DICOM_SEND_TO = os.environ.get("REIRRAD_DICOM_SEND_TO", "")
DICOM_AE_TITLE = os.environ.get("REIRRAD_DICOM_AE_TITLE", "REIRRAD")
#: The PACS prior courses are retrieved from (``AE@host:port``; empty: off).
DICOM_PACS = os.environ.get("REIRRAD_DICOM_PACS", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("REIRRAD_LOG_LEVEL", "WARNING")},
}

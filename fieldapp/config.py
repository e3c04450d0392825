"""Configuration: safe defaults for a laptop, everything overridable from the environment."""

import os
from datetime import timedelta


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def from_environment() -> dict:
    """The settings an operator sets per deployment, read when the app is built."""
    return {
        # None: SQLite in the instance folder.
        "SQLALCHEMY_DATABASE_URI": os.environ.get("DATABASE_URL"),
        "REDIS_URL": os.environ.get("REDIS_URL"),
        # None: generated once into the instance folder.
        "SECRET_KEY": os.environ.get("SECRET_KEY"),
        # Behind HTTPS (production) cookies are Secure and HSTS is sent; plain http on a
        # laptop would otherwise lose its session cookie.
        "HTTPS": _flag("FIELDAPP_HTTPS"),
        "VAPID_SUBJECT": os.environ.get("VAPID_SUBJECT", "mailto:ops@fieldapp.example.cn"),
        "EXTRA_MODULES": [m for m in os.environ.get("FIELDAPP_EXTRA_MODULES", "").split(",") if m],
        "FILE_STORAGE": os.environ.get("FIELDAPP_FILES"),
        # Files in an S3-compatible bucket instead of FIELDAPP_FILES (fieldapp/sync/storage.py).
        # Credentials: boto3's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a role, …).
        "FILE_S3_BUCKET": os.environ.get("FIELDAPP_S3_BUCKET"),
        "FILE_S3_ENDPOINT": os.environ.get("FIELDAPP_S3_ENDPOINT"),  # unset: AWS S3
        "FILE_S3_REGION": os.environ.get("FIELDAPP_S3_REGION"),
        "FILE_S3_PREFIX": os.environ.get("FIELDAPP_S3_PREFIX", ""),
        "FILE_S3_ADDRESSING": os.environ.get("FIELDAPP_S3_ADDRESSING"),  # path / virtual / auto
        # A release label (e.g. the git commit) mixed into the service worker's version, so
        # a deploy that changes only server code still tells phones to reload.
        "RELEASE": os.environ.get("FIELDAPP_RELEASE", ""),
        # How many reverse proxies stand in front (their X-Forwarded-For/-Proto are trusted):
        # the login throttle needs the phone's address, not the proxy's.
        "PROXIES": int(os.environ.get("FIELDAPP_PROXIES", "0") or 0),
    }


class Config:
    """Defaults; ``from_environment()`` and then ``create_app(test_config)`` override them."""

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # A week of shifts plus a day off: the phone stays signed in from Monday to Monday.
    REMEMBER_COOKIE_DURATION = timedelta(days=8)
    PERMANENT_SESSION_LIFETIME = timedelta(days=8)

    WTF_CSRF_TIME_LIMIT = None  # a form opened at 07:00 must still post at 19:00

    # A pooled connection the database dropped (a restart, a failover) is replaced before use
    # rather than failing the phone's next request with a 500: fieldapp.pool looks at its
    # socket at checkout, which costs no round trip (pool_pre_ping costs one per request).
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": False}

    # Login throttling (per account and per address, counted in the database so every worker
    # of a multi-process deployment sees the same counts).
    LOGIN_MAX_FAILURES_PER_ACCOUNT = 5
    LOGIN_MAX_FAILURES_PER_ADDRESS = 20
    LOGIN_FAILURE_WINDOW = timedelta(minutes=15)
    LOGIN_LOCKOUT = timedelta(minutes=30)

    BABEL_DEFAULT_LOCALE = "zh_CN"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    LANGUAGES = ("zh_CN", "en")
    MAX_CONTENT_LENGTH = 16 * 1024 * 1024

"""Configuration classes: each reads the environment when it is instantiated, nothing else."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
DEFAULT_SECRET_KEY = "dev-not-secret-change-me"


def database_url(raw: str | None) -> str:
    """Return the SQLAlchemy URL for an admin-written DATABASE_URL, served by psycopg2."""
    if not raw:
        return f"sqlite:///{BASE_DIR / 'instance' / 'lprserver.db'}"
    for prefix in ("postgresql://", "postgres://"):
        if raw.startswith(prefix):
            # SQLAlchemy 2.1 would pick psycopg 3 for a bare postgresql:// URL.
            return "postgresql+psycopg2://" + raw[len(prefix):]
    return raw


def _int(env, name: str, default: int) -> int:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None


class Config:
    """Settings shared by every environment (SPEC §7)."""

    DEBUG = False
    TESTING = False
    DEFAULT_INGEST_AUTH = "open"
    DEFAULT_LIVE_RELAY_URL = "http://127.0.0.1:5000/internal/live"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # Operators keep a page open all day: a form token lives as long as the session.
    WTF_CSRF_TIME_LIMIT = None

    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        self.SECRET_KEY = env.get("SECRET_KEY") or DEFAULT_SECRET_KEY
        self.SQLALCHEMY_DATABASE_URI = database_url(env.get("DATABASE_URL"))
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.IMAGE_STORAGE_PATH = env.get("IMAGE_STORAGE_PATH") or str(
            BASE_DIR / "storage" / "images"
        )
        self.LOG_LEVEL = env.get("LOG_LEVEL", "INFO").upper()
        self.ASYNC_MODE = env.get("ASYNC_MODE", "gevent")
        self.INGEST_HOST = env.get("INGEST_HOST", "0.0.0.0")
        self.INGEST_PORT = _int(env, "INGEST_PORT", 8765)
        self.INGEST_AUTH = env.get("INGEST_AUTH", self.DEFAULT_INGEST_AUTH)
        self.INGEST_MAX_MESSAGE_BYTES = _int(env, "INGEST_MAX_MESSAGE_BYTES", 4 * 1024 * 1024)
        self.INGEST_MAX_INFLIGHT = _int(env, "INGEST_MAX_INFLIGHT", 32)
        self.IMAGE_MAX_BYTES = _int(env, "IMAGE_MAX_BYTES", 2 * 1024 * 1024)
        self.IMAGE_MAX_PIXELS = _int(env, "IMAGE_MAX_PIXELS", 40_000_000)
        self.RETENTION_DAYS = _int(env, "RETENTION_DAYS", 0)
        self.TIMEZONE = env.get("TIMEZONE", "Asia/Bangkok")
        # Live updates (SPEC §3): where the daemon posts events; "" or "off" turns the relay off.
        self.LIVE_RELAY_URL = env.get("LIVE_RELAY_URL", self.DEFAULT_LIVE_RELAY_URL)
        self.LIVE_RELAY_QUEUE = _int(env, "LIVE_RELAY_QUEUE", 1000)
        self.LIVE_STATS_SECONDS = _int(env, "LIVE_STATS_SECONDS", 15)
        self.LOGIN_FAILURES_PER_MINUTE = _int(env, "LOGIN_FAILURES_PER_MINUTE", 5)
        self.SESSION_IDLE_HOURS = _int(env, "SESSION_IDLE_HOURS", 12)
        self.SQLALCHEMY_ENGINE_OPTIONS.update(self._pool_options())
        self.check()

    def _pool_options(self) -> dict:
        if self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            return {}
        # Every in-flight read may hold a connection; leave room for the rest.
        return {"pool_size": self.INGEST_MAX_INFLIGHT + 4, "max_overflow": 8, "pool_timeout": 30}

    def check(self) -> None:
        """Refuse settings the daemon and web app cannot run with."""
        if self.ASYNC_MODE not in ("gevent", "eventlet", "threading"):
            raise ValueError(f"ASYNC_MODE must be gevent, eventlet or threading, not {self.ASYNC_MODE!r}")
        if self.INGEST_AUTH not in ("token", "open"):
            raise ValueError(f"INGEST_AUTH must be token or open, not {self.INGEST_AUTH!r}")


class DevelopmentConfig(Config):
    DEBUG = True


class TestingConfig(Config):
    TESTING = True
    # Tests that want live updates point the daemon at their own web app.
    DEFAULT_LIVE_RELAY_URL = ""
    WTF_CSRF_ENABLED = True


class ProductionConfig(Config):
    DEFAULT_INGEST_AUTH = "token"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True

    def check(self) -> None:
        super().check()
        if self.SECRET_KEY == DEFAULT_SECRET_KEY or len(self.SECRET_KEY) < 32:
            raise RuntimeError(
                "Production refuses to start without a SECRET_KEY of 32 characters or more: "
                "set one in the environment file (setup.sh install generates it)."
            )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_env(name: str | None = None, environ=None) -> Config:
    """Return the configuration named by FLASK_CONFIG (default: development)."""
    env = os.environ if environ is None else environ
    name = name or env.get("FLASK_CONFIG") or "development"
    if name not in CONFIGS:
        raise ValueError(f"FLASK_CONFIG must be one of {', '.join(CONFIGS)}, not {name!r}")
    return CONFIGS[name](env)

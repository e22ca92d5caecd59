"""Configuration classes: each reads the environment when it is instantiated, nothing else."""

import math
import os
import re
import secrets
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
DEFAULT_SECRET_KEY = "dev-not-secret-change-me"
GENERATED_KEY_FILE = BASE_DIR / "instance" / "secret_key"
MIN_KEY_BITS = 80  # the least a 32-hex-digit random key ever showed in 20,000 draws was 92 bits


def secret_key_weakness(key: str | None) -> str | None:
    """Say why a SECRET_KEY is too weak for production (README "Configure"), or None if it is not.

    Its characters' Shannon entropy over the key's length estimates how random it is: a key of one
    repeated letter has none; 64 random hex digits, as setup.sh writes them, about 250 bits."""
    if not key or key == DEFAULT_SECRET_KEY:
        return "is not set"
    if len(key) < 32:
        return "is shorter than 32 characters"
    counts = Counter(key)
    bits = -sum(n * math.log2(n / len(key)) for n in counts.values())
    # Six: 32 random hex digits show fewer than 10 different ones once in 10,000 keys, fewer than 6
    # once in 3 * 10^12.
    if bits < MIN_KEY_BITS or len(counts) < 6:
        return "has too little randomness (too few different characters)"
    if any(key == (key[:size] * (len(key) // size + 1))[:len(key)] for size in range(1, len(key) // 2 + 1)):
        return "repeats a shorter pattern"
    steps = sum(abs(ord(b) - ord(a)) == 1 for a, b in zip(key, key[1:], strict=False))
    if steps > len(key) // 2:
        return "runs through the alphabet"
    return None


def generated_secret_key(path: Path = GENERATED_KEY_FILE) -> str:
    """Return the key kept in `path`, made on first use (development without SECRET_KEY, README "Configure").

    The daemon and the web app start together and must sign with the same key: the first one to
    link its file into place wins, and both read that one."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


def database_url(raw: str | None) -> str:
    """Return the SQLAlchemy URL for an admin-written DATABASE_URL, served by psycopg2."""
    if not raw:
        return f"sqlite:///{BASE_DIR / 'instance' / 'lprserver.db'}"
    for prefix in ("postgresql://", "postgres://"):
        if raw.startswith(prefix):
            # SQLAlchemy 2.1 would pick psycopg 3 for a bare postgresql:// URL.
            return "postgresql+psycopg2://" + raw[len(prefix):]
    return raw


def map_tile_url_problem(url: str) -> str | None:
    """Say what is wrong with a MAP_TILE_URL (README "Configure"), or None when it is empty or good: an
    http(s) Leaflet template with {z}, {x} and {y}, whose host is a name (or `{s}.` and a name)."""
    if not url:
        return None
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest:
        return "must start with https:// or http://"
    missing = [part for part in ("{z}", "{x}", "{y}") if part not in url]
    if missing:
        return f"must hold {', '.join(missing)}"
    host = rest.split("/", 1)[0].removeprefix("{s}.")
    if not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?", host):
        return "must name its server plainly (only a leading {s}. may vary)"
    return None


LIVE_QUEUE_SCHEMES = ("redis", "rediss", "amqp", "amqps", "kafka")


def live_message_queue_problem(url: str) -> str | None:
    """Say what is wrong with a LIVE_MESSAGE_QUEUE (README "Several web workers or hosts"), or None when it
    is empty or names a queue python-socketio can use. Never repeats the URL: it may hold a password."""
    if not url:
        return None
    scheme, separator, _ = url.partition("://")
    if not separator or scheme.lower() not in LIVE_QUEUE_SCHEMES:
        return ("must be empty (one web worker) or start with redis://, rediss://, amqp://, amqps:// or "
                "kafka://, e.g. redis://127.0.0.1:6379/0")
    return None


def _float(env, name: str, default: float) -> float:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {value!r}") from None


def _flag(env, name: str, default: bool) -> bool:
    value = (env.get(name) or "").strip().lower()
    if not value:
        return default
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(f"{name} must be on or off, not {value!r}")
    return value in ("1", "true", "yes", "on")


def _int(env, name: str, default: int, minimum: int | None = None) -> int:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {number}")
    return number


class Config:
    """Settings shared by every environment (README "Configure")."""

    DEBUG = False
    TESTING = False
    SESSION_COOKIE_SECURE = False
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
        self.SECRET_KEY = env.get("SECRET_KEY") or self.default_secret_key()
        self.SQLALCHEMY_DATABASE_URI = database_url(env.get("DATABASE_URL"))
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.IMAGE_STORAGE_PATH = env.get("IMAGE_STORAGE_PATH") or str(
            BASE_DIR / "storage" / "images"
        )
        # SPEC §14 "Images on an object store": filesystem (IMAGE_STORAGE_PATH) or s3 (a bucket of an
        # S3-compatible store). boto3 reads its keys itself (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
        # AWS_DEFAULT_REGION): they are never settings of ours, so never in a log line or a worker's message.
        self.IMAGE_STORE = (env.get("IMAGE_STORE") or "filesystem").strip().lower()
        self.S3_ENDPOINT_URL = (env.get("S3_ENDPOINT_URL") or "").strip().rstrip("/")
        self.S3_BUCKET = (env.get("S3_BUCKET") or "").strip()
        # Seconds to connect and to wait for each answer; with one retry a dead store answers in seconds.
        self.S3_TIMEOUT = _float(env, "S3_TIMEOUT", 3.0)
        self.LOG_LEVEL = env.get("LOG_LEVEL", "INFO").upper()
        self.ASYNC_MODE = env.get("ASYNC_MODE", "gevent")
        self.INGEST_HOST = env.get("INGEST_HOST", "0.0.0.0")
        self.INGEST_PORT = _int(env, "INGEST_PORT", 8765)
        # SPEC §14: SO_REUSEPORT, so that several daemons on one host share INGEST_PORT (PostgreSQL only).
        self.INGEST_REUSE_PORT = _flag(env, "INGEST_REUSE_PORT", False)
        self.INGEST_AUTH = env.get("INGEST_AUTH", self.DEFAULT_INGEST_AUTH)
        self.INGEST_MAX_MESSAGE_BYTES = _int(env, "INGEST_MAX_MESSAGE_BYTES", 4 * 1024 * 1024)
        self.INGEST_MAX_INFLIGHT = _int(env, "INGEST_MAX_INFLIGHT", 32)
        self.INGEST_MAX_INFLIGHT_PER_CONNECTION = _int(env, "INGEST_MAX_INFLIGHT_PER_CONNECTION", 8)
        # Connection limits of the daemon's port (README "Sending reads", ingest/connections.py).
        self.INGEST_IDLE_SECONDS = _float(env, "INGEST_IDLE_SECONDS", 120.0)
        self.INGEST_HANDSHAKE_SECONDS = _float(env, "INGEST_HANDSHAKE_SECONDS", 10.0)
        self.INGEST_MAX_CONNECTIONS_PER_ADDRESS = _int(env, "INGEST_MAX_CONNECTIONS_PER_ADDRESS", 256,
                                                       minimum=1)
        # Open mode: cameras one address may create (first reads of unknown ids), per minute.
        self.INGEST_NEW_CAMERAS_PER_MINUTE = _int(env, "INGEST_NEW_CAMERAS_PER_MINUTE", 60, minimum=1)
        # Group commit: writers storing the reads waiting at that moment, up to a batch each.
        self.INGEST_WRITERS = _int(env, "INGEST_WRITERS", 2, minimum=1)
        self.INGEST_BATCH_MAX = _int(env, "INGEST_BATCH_MAX", 64, minimum=1)
        # Batches stored (images, rows, commit) by helper processes, one per writer, not by the daemon.
        self.INGEST_STORE_WORKERS = _flag(env, "INGEST_STORE_WORKERS", True)
        self.IMAGE_MAX_BYTES = _int(env, "IMAGE_MAX_BYTES", 2 * 1024 * 1024)
        # HTTP ingest (POST /api/records) has the same message cap as the daemon.
        self.MAX_CONTENT_LENGTH = self.INGEST_MAX_MESSAGE_BYTES
        self.IMAGE_MAX_PIXELS = _int(env, "IMAGE_MAX_PIXELS", 40_000_000)
        # How a batch's images are made durable: one syncfs per batch, or an fsync per file (images.py).
        self.IMAGE_SYNC = env.get("IMAGE_SYNC", "batch")
        self.RETENTION_DAYS = _int(env, "RETENTION_DAYS", 0)
        # SPEC §15 retention by kind (README "Privacy (PDPA) retention"): a read's image may go sooner
        # than the read, a blacklist hit may stay longer (or go sooner); both default to RETENTION_DAYS.
        # The audit log has its own; 0 keeps forever.
        self.IMAGE_RETENTION_DAYS = _int(env, "IMAGE_RETENTION_DAYS", self.RETENTION_DAYS)
        self.HIT_RETENTION_DAYS = _int(env, "HIT_RETENTION_DAYS", self.RETENTION_DAYS)
        self.AUDIT_RETENTION_DAYS = _int(env, "AUDIT_RETENTION_DAYS", 365)
        self.TIMEZONE = env.get("TIMEZONE", "Asia/Bangkok")
        # SPEC §10 "Review": reads under this confidence (0-100) wait on /review; 0 sends none there.
        self.REVIEW_CONFIDENCE = _float(env, "REVIEW_CONFIDENCE", 80.0)
        # SPEC §10 "Visits": how often the daemon looks for open visits past their group's max stay.
        self.OVERSTAY_CHECK_SECONDS = _float(env, "OVERSTAY_CHECK_SECONDS", 30.0)
        # SPEC §11 alerts: repeats folded into one alert, silent cameras, the channels, the sender.
        self.ALERT_REPEAT_SECONDS = _int(env, "ALERT_REPEAT_SECONDS", 60, minimum=0)
        self.CAMERA_OFFLINE_MINUTES = _float(env, "CAMERA_OFFLINE_MINUTES", 10.0)
        self.CAMERA_OFFLINE_CHECK_SECONDS = _float(env, "CAMERA_OFFLINE_CHECK_SECONDS", 30.0)
        self.SMTP_URL = env.get("SMTP_URL", "")
        self.SMTP_FROM = env.get("SMTP_FROM", "")
        self.LINE_CHANNEL_TOKEN = env.get("LINE_CHANNEL_TOKEN", "")
        self.LINE_API_URL = (env.get("LINE_API_URL") or "https://api.line.me").rstrip("/")
        self.MQTT_URL = env.get("MQTT_URL", "")
        self.MQTT_TOPIC_PREFIX = (env.get("MQTT_TOPIC_PREFIX") or "lprserver").strip("/")
        self.PUBLIC_URL = (env.get("PUBLIC_URL") or "").rstrip("/")
        # SPEC §12 "Map": a Leaflet tile template; empty draws the cameras on a plain background.
        self.MAP_TILE_URL = (env.get("MAP_TILE_URL") or "").strip()
        self.MAP_TILE_ATTRIBUTION = (env.get("MAP_TILE_ATTRIBUTION") or "").strip()
        self.DEFAULT_LANGUAGE = env.get("DEFAULT_LANGUAGE", "th")
        # SPEC §12 "Reports": a .ttf with Thai for the PDF reports; empty = Sarabun or fonts-thai-tlwg.
        self.REPORT_FONT = (env.get("REPORT_FONT") or "").strip()
        # SPEC §12 "Dates": `be` shows Buddhist-era years to people (pages, alert messages); the API: ISO.
        self.DATE_ERA = env.get("DATE_ERA", "ce")
        self.ALERT_WORKER = _flag(env, "ALERT_WORKER", True)
        self.ALERT_TIMEOUT = _float(env, "ALERT_TIMEOUT", 10.0)
        self.ALERT_MAX_ATTEMPTS = _int(env, "ALERT_MAX_ATTEMPTS", 10, minimum=1)
        self.ALERT_RETRY_BASE = _float(env, "ALERT_RETRY_BASE", 5.0)
        self.ALERT_POLL_INTERVAL = _float(env, "ALERT_POLL_INTERVAL", 0.5)
        self.ALERT_BATCH = _int(env, "ALERT_BATCH", 50, minimum=1)  # deliveries sent at once per round
        # How long the signed image link in a LINE message works (SPEC §11 "Delivery").
        self.ALERT_IMAGE_LINK_HOURS = _float(env, "ALERT_IMAGE_LINK_HOURS", 24.0)
        # Webhooks: the ingest daemon's delivery worker (off the ingest path).
        self.WEBHOOK_WORKER = env.get("WEBHOOK_WORKER", "1") not in ("0", "false", "no")
        self.WEBHOOK_TIMEOUT = _float(env, "WEBHOOK_TIMEOUT", 5.0)
        self.WEBHOOK_MAX_ATTEMPTS = _int(env, "WEBHOOK_MAX_ATTEMPTS", 8)
        self.WEBHOOK_RETRY_BASE = _float(env, "WEBHOOK_RETRY_BASE", 10.0)
        self.WEBHOOK_POLL_INTERVAL = _float(env, "WEBHOOK_POLL_INTERVAL", 1.0)
        # Rate limits (Flask-Limiter): storage and the limit of the API token endpoints.
        self.RATELIMIT_STORAGE_URI = env.get("RATELIMIT_STORAGE_URI", "memory://")
        self.RATELIMIT_TOKENS = env.get("RATELIMIT_TOKENS", "30 per minute")
        # How many reverse proxies (nginx: 1) stand in front and set X-Forwarded-For.
        self.TRUSTED_PROXIES = _int(env, "TRUSTED_PROXIES", 0)
        # Operations (README.md): retention, health, metrics, nginx.
        self.IMAGE_DISK_BUDGET_GB = _float(env, "IMAGE_DISK_BUDGET_GB", 0.0)
        self.RETENTION_BATCH_SIZE = _int(env, "RETENTION_BATCH_SIZE", 500)
        self.IMAGE_ACCEL_REDIRECT = env.get("IMAGE_ACCEL_REDIRECT", "")
        self.METRICS_TOKEN = env.get("METRICS_TOKEN", "")
        self.HEARTBEAT_FILE = env.get("HEARTBEAT_FILE") or str(BASE_DIR / "instance" / "ingest.heartbeat")
        self.HEARTBEAT_INTERVAL = _float(env, "HEARTBEAT_INTERVAL", 5.0)
        self.HEARTBEAT_MAX_AGE = _float(env, "HEARTBEAT_MAX_AGE", 30.0)
        self.HEALTH_MIN_FREE_MB = _int(env, "HEALTH_MIN_FREE_MB", 500)
        # Off for a plain-HTTP install (setup.sh writes it), or browsers never send the cookie back.
        self.SESSION_COOKIE_SECURE = _flag(env, "SESSION_COOKIE_SECURE", type(self).SESSION_COOKIE_SECURE)
        # README "Live updates": where the daemon posts events; "" or "off" turns the relay off.
        self.LIVE_RELAY_URL = env.get("LIVE_RELAY_URL", self.DEFAULT_LIVE_RELAY_URL)
        self.LIVE_RELAY_QUEUE = _int(env, "LIVE_RELAY_QUEUE", 1000)
        self.LIVE_STATS_SECONDS = _int(env, "LIVE_STATS_SECONDS", 15)
        # SPEC §14 (README "Several web workers or hosts"): the message queue that carries live events between
        # web workers; empty keeps them in the one web process. Several gunicorn workers need it.
        self.LIVE_MESSAGE_QUEUE = (env.get("LIVE_MESSAGE_QUEUE") or "").strip()
        self.LIVE_MESSAGE_CHANNEL = (env.get("LIVE_MESSAGE_CHANNEL") or "lprserver-live").strip()
        self.WEB_WORKERS = _int(env, "WEB_WORKERS", 1, minimum=1)
        self.LOGIN_FAILURES_PER_MINUTE = _int(env, "LOGIN_FAILURES_PER_MINUTE", 5)
        self.SESSION_IDLE_HOURS = _int(env, "SESSION_IDLE_HOURS", 12)
        self.SQLALCHEMY_ENGINE_OPTIONS.update(self._pool_options())
        self.check()

    def default_secret_key(self) -> str:
        """The key without SECRET_KEY: one generated into instance/ on first start, then kept."""
        return generated_secret_key()

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
        if self.RETENTION_DAYS < 0 or self.IMAGE_DISK_BUDGET_GB < 0 or self.RETENTION_BATCH_SIZE < 1:
            raise ValueError("RETENTION_DAYS and IMAGE_DISK_BUDGET_GB must be 0 or more, "
                             "RETENTION_BATCH_SIZE 1 or more")
        for name in ("IMAGE_RETENTION_DAYS", "HIT_RETENTION_DAYS", "AUDIT_RETENTION_DAYS"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 (keep forever) or more, not {getattr(self, name)}")
        if self.IMAGE_ACCEL_REDIRECT and not self.IMAGE_ACCEL_REDIRECT.startswith("/"):
            raise ValueError("IMAGE_ACCEL_REDIRECT must be an nginx location such as /_images/, or empty")
        if self.INGEST_REUSE_PORT and self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):
            # SQLite takes one writer at a time and its lock waits stop a daemon's event loop: a second
            # daemon adds waits, not reads per second (README "Several ingest daemons").
            raise ValueError("INGEST_REUSE_PORT=1 (several ingest daemons) needs PostgreSQL: set "
                             "DATABASE_URL to a postgresql:// address, or run one daemon on SQLite")
        if self.INGEST_IDLE_SECONDS <= 0 or self.INGEST_HANDSHAKE_SECONDS <= 0:
            raise ValueError("INGEST_IDLE_SECONDS and INGEST_HANDSHAKE_SECONDS must be more than 0")
        if self.DATE_ERA not in ("ce", "be"):
            raise ValueError(f"DATE_ERA must be ce or be, not {self.DATE_ERA!r}")
        if self.DEFAULT_LANGUAGE not in ("th", "en"):
            raise ValueError(f"DEFAULT_LANGUAGE must be th or en, not {self.DEFAULT_LANGUAGE!r}")
        if self.PUBLIC_URL and not self.PUBLIC_URL.startswith(("http://", "https://")):
            raise ValueError("PUBLIC_URL must start with http:// or https://, e.g. https://lpr.example.org")
        if self.MQTT_URL and not self.MQTT_URL.startswith(("mqtt://", "mqtts://")):
            raise ValueError("MQTT_URL must start with mqtt:// or mqtts://, e.g. mqtt://user:pass@broker:1883")
        if self.SMTP_URL and not self.SMTP_URL.startswith(("smtp://", "smtps://")):
            raise ValueError("SMTP_URL must start with smtp:// or smtps://, e.g. smtp://user:pass@host:587")
        # A camera's last_seen moves at most every few seconds (camera_offline.py): under a minute, a
        # camera that just read could look silent again.
        if self.CAMERA_OFFLINE_MINUTES < 0 or 0 < self.CAMERA_OFFLINE_MINUTES < 1:
            raise ValueError("CAMERA_OFFLINE_MINUTES must be 0 (off) or at least 1")
        if self.IMAGE_SYNC not in ("batch", "file"):
            raise ValueError(f"IMAGE_SYNC must be batch or file, not {self.IMAGE_SYNC!r}")
        self.check_image_store()
        if self.REPORT_FONT and not os.path.isfile(self.REPORT_FONT):
            raise ValueError(f"REPORT_FONT {self.REPORT_FONT} is not a file: give a TrueType font with Thai "
                             "(.ttf), or leave it empty for fonts-thai-tlwg")
        problem = live_message_queue_problem(self.LIVE_MESSAGE_QUEUE)
        if problem:
            raise ValueError(f"LIVE_MESSAGE_QUEUE {problem}")
        if not re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", self.LIVE_MESSAGE_CHANNEL):
            raise ValueError("LIVE_MESSAGE_CHANNEL must be 1-64 letters, digits or . _ : -")
        if self.WEB_WORKERS > 1 and not self.LIVE_MESSAGE_QUEUE:
            raise ValueError(f"WEB_WORKERS={self.WEB_WORKERS} needs LIVE_MESSAGE_QUEUE (e.g. "
                             "redis://127.0.0.1:6379/0): without it each worker's browsers would see only "
                             "the live events that reached that worker")
        problem = map_tile_url_problem(self.MAP_TILE_URL)
        if problem:
            raise ValueError(f"MAP_TILE_URL {problem}, e.g. https://tiles.example.org/{{z}}/{{x}}/{{y}}.png")


    def check_image_store(self) -> None:
        """Refuse object store settings that cannot work (README "Images on an object store")."""
        if self.IMAGE_STORE not in ("filesystem", "s3"):
            raise ValueError(f"IMAGE_STORE must be filesystem or s3, not {self.IMAGE_STORE!r}")
        endpoint = re.compile(r"https?://[^\s/?#@]+(/[^\s?#]*)?")
        if self.S3_ENDPOINT_URL and not endpoint.fullmatch(self.S3_ENDPOINT_URL):
            raise ValueError("S3_ENDPOINT_URL must be an http:// or https:// address such as "
                             "http://127.0.0.1:9000 (no credentials in it), or empty for AWS")
        if not 0 < self.S3_TIMEOUT <= 60:
            raise ValueError(f"S3_TIMEOUT must be more than 0 and at most 60 seconds, not {self.S3_TIMEOUT}")
        if self.IMAGE_STORE != "s3":
            return
        if not self.S3_BUCKET:
            raise ValueError("IMAGE_STORE=s3 needs S3_BUCKET, the name of an existing bucket")
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", self.S3_BUCKET):
            raise ValueError(f"S3_BUCKET {self.S3_BUCKET!r} is not a bucket name (3-63 of a-z 0-9 . -, "
                             "starting and ending with a letter or digit)")
        if self.IMAGE_DISK_BUDGET_GB > 0:
            raise ValueError("IMAGE_DISK_BUDGET_GB is for the filesystem store; with IMAGE_STORE=s3 set it "
                             "to 0 and give the bucket a quota or lifecycle rule instead")
        if self.IMAGE_ACCEL_REDIRECT:
            raise ValueError("IMAGE_ACCEL_REDIRECT serves files from a folder; with IMAGE_STORE=s3 leave it "
                             "empty (the web app streams the objects)")


class DevelopmentConfig(Config):
    DEBUG = True


class TestingConfig(Config):
    TESTING = True
    # Tests that want live updates point the daemon at their own web app.
    DEFAULT_LIVE_RELAY_URL = ""
    WTF_CSRF_ENABLED = True

    def default_secret_key(self) -> str:
        return secrets.token_hex(32)  # tests that start both processes pass one SECRET_KEY to both


class ProductionConfig(Config):
    DEFAULT_INGEST_AUTH = "token"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True

    def default_secret_key(self) -> str:
        return ""  # refused by check(): production keys come from the settings file

    def check(self) -> None:
        super().check()
        weakness = secret_key_weakness(self.SECRET_KEY)
        if weakness:
            raise RuntimeError(
                f"Production refuses to start: SECRET_KEY {weakness}. Set a random one of 32 characters "
                "or more in the settings file (setup.sh install generates it; `openssl rand -hex 32`)."
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

"""Shared fixtures: a real database (SQLite or a throwaway PostgreSQL), the app, the real daemon."""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from config import TestingConfig, database_url
from lprserver import create_app
from lprserver.database import upgrade_database
from lprserver.extensions import db
from lprserver.i18n import compile_catalogues
from lprserver.models import ApiToken
from lprserver.tokens import generate_token, hash_token
from lprserver.users import save_user

from .pgcluster import ThrowawayPostgres
from .processes import Daemon

# Children before their parents: SQLite deletes table by table with its foreign keys on.
TABLES = ("alert_attempts", "alert_deliveries", "alert_rules", "channel_settings",
          "webhook_deliveries", "webhooks", "alerts", "visits", "blacklist_detections", "health_reports", "audit_log",
          "api_tokens", "lpr_record_keys", "lpr_records", "blacklist_plates", "known_plates", "known_groups", "cameras", "web_sessions",
          "report_schedules", "analytics_hours", "analytics_days", "analytics_plate_days",
          "analytics_province_days", "analytics_day_gaps", "analytics_camera_days", "analytics_hour_totals",
          "users")


def pytest_configure(config):
    # The pages' catalogues as they are in the working tree (setup.sh compiles them too).
    compile_catalogues()


def pytest_addoption(parser):
    parser.addoption("--db", choices=["sqlite", "postgresql"],
                     default=os.environ.get("LPR_TEST_DB", "sqlite"),
                     help="database the suite runs against (PostgreSQL is started by the suite)")


# Fixtures through which a test reaches the database chosen with --db.
DATABASE_FIXTURES = {"database", "postgres", "db_kind"}


def pytest_collection_modifyitems(config, items):
    """On the PostgreSQL run, leave out the tests that never reach a database: they ran on SQLite
    (setup.sh test runs SQLite first) and would only repeat themselves. LPR_TEST_EVERY_DB=1 keeps them."""
    if config.getoption("--db") != "postgresql" or os.environ.get("LPR_TEST_EVERY_DB") == "1":
        return
    keep, drop = [], []
    for item in items:
        (keep if DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def db_kind(request) -> str:
    return request.config.getoption("--db")


@pytest.fixture(scope="session")
def postgres(db_kind, tmp_path_factory):
    """A throwaway PostgreSQL server for the session (only with --db postgresql)."""
    if db_kind != "postgresql":
        pytest.skip("needs --db postgresql")
    # Not under pytest's own temp folder: that one is private to root, and the
    # server runs as the postgres user.
    cluster = ThrowawayPostgres(tempfile.mkdtemp(prefix="lpr-test-pg-"), fsync=False)
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def database(db_kind, tmp_path_factory, request) -> str:
    """The URL of a migrated test database of the kind chosen with --db."""
    if db_kind == "postgresql":
        url = request.getfixturevalue("postgres").url()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'lpr.db'}"
    upgrade_database(database_url(url))
    return url


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("images")


@pytest.fixture(scope="session")
def base_env(database, image_root) -> dict:
    """The environment the app and the daemon run with in tests."""
    return {
        "FLASK_CONFIG": "testing",
        "DATABASE_URL": database,
        "IMAGE_STORAGE_PATH": str(image_root),
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "INGEST_AUTH": "open",
        "LOG_LEVEL": "INFO",
        # The session's daemons deliver no webhooks: a webhook test drives its own DeliveryWorker, and a
        # daemon's worker (retrying after 10 s) sometimes took its delivery first.
        "WEBHOOK_WORKER": "0",
        # Nor alerts or offline checks: an alert test starts its own daemon or sender.
        "ALERT_WORKER": "0",
        "CAMERA_OFFLINE_MINUTES": "0",
        # Pages in English unless a test asks for Thai (SPEC §13's own default, th, is tested in test_i18n.py).
        "DEFAULT_LANGUAGE": "en",
    }


def clean_database(url: str, attempts: int = 5) -> None:
    """Empty every table, keeping the schema.

    The session's web apps and daemons keep running between tests (live stats, heartbeats, webhook
    worker); a query of theirs that locks two tables in the other order can make PostgreSQL pick the
    TRUNCATE as a deadlock's victim. It is then simply run again."""
    engine = create_engine(database_url(url))
    try:
        for attempt in range(1, attempts + 1):
            try:
                with engine.begin() as conn:
                    if engine.dialect.name == "postgresql":
                        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
                    else:
                        for table in TABLES:
                            conn.execute(text(f"DELETE FROM {table}"))
                return
            except OperationalError as exc:
                if getattr(exc.orig, "pgcode", None) != "40P01" or attempt == attempts:  # deadlock_detected
                    raise
                time.sleep(0.1 * attempt)
    finally:
        engine.dispose()


@pytest.fixture
def clean(database, image_root):
    """Start a test with an empty database and an empty image store."""
    clean_database(database)
    for child in image_root.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    yield


@pytest.fixture
def app(base_env, clean):
    app = create_app(TestingConfig(base_env))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


class FreshContextClient(FlaskClient):
    """A test client whose every request gets its own app context, as under a real server.

    The `app` fixture keeps an app context open for the whole test; without this,
    requests would share its `g`, where Flask-Login caches the signed-in user, so a
    second request would silently run as the first one's user.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = FreshContextClient
    return app.test_client()


@pytest.fixture
def api_token(app):
    """A read-write API token of an admin user."""
    user, _ = save_user(db.session, "admin", "admin", "correct horse battery staple")
    db.session.flush()
    token = generate_token("lpr")
    db.session.add(ApiToken(user_id=user.id, name="tests", token_hash=hash_token(token), scope="read-write"))
    db.session.commit()
    return token


@pytest.fixture
def make_token(app):
    """Return a factory: make_token(role, scope) -> a Bearer token of a new user with that role."""
    made = []

    def make(role: str = "viewer", scope: str = "read-write", username: str | None = None) -> str:
        user, _ = save_user(db.session, username or f"{role}{len(made)}", role, "correct horse battery staple")
        db.session.flush()
        token = generate_token("lpr")
        db.session.add(ApiToken(user_id=user.id, name="tests", token_hash=hash_token(token), scope=scope))
        db.session.commit()
        made.append(token)
        return token

    return make


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session", params=["gevent", "eventlet"])
def daemon(request, base_env, tmp_path_factory):
    """The ingest daemon in each async mode, open to any camera."""
    env = {**base_env, "ASYNC_MODE": request.param}
    proc = Daemon(env, tmp_path_factory.mktemp("daemon") / f"{request.param}.log").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def token_daemon(base_env, tmp_path_factory):
    """The ingest daemon with INGEST_AUTH=token."""
    env = {**base_env, "INGEST_AUTH": "token", "ASYNC_MODE": "gevent"}
    proc = Daemon(env, tmp_path_factory.mktemp("daemon") / "token.log").start()
    yield proc
    proc.stop()


# --- Web app fixtures (issue 3): the real web app, a relaying daemon, Chromium; see tests/webserver.py ---
from .webserver import browser, browser_page, live_daemon, users, webapp  # noqa: E402,F401

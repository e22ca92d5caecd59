"""LPR Server: the Flask application factory."""

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .extensions import babel, csrf, db, limiter, login_manager, socketio
from .i18n import TRANSLATIONS, select_language
from .live_queue import client_manager
from .logs import configure_logging
from .url_ids import CameraIdConverter, PlateConverter, RowId

ROOT = Path(__file__).resolve().parents[2]


def create_app(config, async_mode: str | None = None, live_queue: bool = False) -> Flask:
    """Create the web app from a configuration object (see config.py).

    `live_queue`: the web app's servers (wsgi.py, run.py) join LIVE_MESSAGE_QUEUE when it is set (SPEC §14,
    live_queue.py), and refuse to start when it does not answer; the daemon and the CLI never do."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.from_object(config)
    _prepare_sqlite_folder(app)
    configure_logging(app.config["LOG_LEVEL"])

    if app.config.get("TRUSTED_PROXIES"):
        # Behind nginx: take the client address (rate limits, audit) from X-Forwarded-For.
        count = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    app.url_map.converters["id"] = RowId  # every <id:...> in a route: a row id a column can hold
    app.url_map.converters["camera"] = CameraIdConverter
    app.url_map.converters["plate"] = PlateConverter
    db.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    # client_manager always given: init_app keeps its options from one app to the next.
    socketio.init_app(app, async_mode=async_mode or _web_async_mode(app),
                      client_manager=client_manager(app.config) if live_queue else None)
    babel.init_app(app, locale_selector=select_language, default_translation_directories=str(TRANSLATIONS),
                   default_timezone=app.config["TIMEZONE"])

    from . import account, api, auth, commands, monitoring, web

    auth.init_app(app)
    commands.init_app(app)
    api.init_app(app)
    app.register_blueprint(account.bp)
    monitoring.init_app(app)
    web.init_app(app)
    return app


def _prepare_sqlite_folder(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def _web_async_mode(app: Flask) -> str:
    # Entry points that patched an async library say so; anything else (tests,
    # the flask CLI) gets plain threads.
    mode = app.config["ASYNC_MODE"]
    return mode if mode == "gevent" and _gevent_patched() else "threading"


def _gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return monkey.is_module_patched("socket")

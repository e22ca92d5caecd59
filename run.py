"""Run the web app for development on 127.0.0.1:5000 (production uses gunicorn, see wsgi.py)."""

import os

from dotenv import load_dotenv

load_dotenv()
if os.environ.get("ASYNC_MODE", "gevent") == "gevent":
    from gevent import monkey

    monkey.patch_all()
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()

from config import config_from_env  # noqa: E402  (after monkey-patching, by design)
from lprserver import create_app  # noqa: E402
from lprserver.extensions import socketio  # noqa: E402

if __name__ == "__main__":
    app = create_app(config_from_env(), live_queue=True)
    host = os.environ.get("WEB_HOST", "127.0.0.1")
    port = int(os.environ.get("WEB_PORT", "5000"))
    socketio.run(app, host=host, port=port, debug=False, use_reloader=False, log_output=False,
                 allow_unsafe_werkzeug=True)

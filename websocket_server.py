"""Run the ingest daemon: patch the async library first, then build and serve the ingest server."""

import os

from dotenv import load_dotenv

load_dotenv()
ASYNC_MODE = os.environ.get("ASYNC_MODE", "gevent")

if ASYNC_MODE == "eventlet":
    import eventlet

    eventlet.monkey_patch()
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()
elif ASYNC_MODE == "gevent":
    from gevent import monkey

    monkey.patch_all()
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
else:
    raise SystemExit(f"ASYNC_MODE for the ingest daemon must be gevent or eventlet, not {ASYNC_MODE!r}")

from config import config_from_env  # noqa: E402  (after monkey-patching, by design)
from lprserver import create_app  # noqa: E402
from lprserver.ingest import unmask  # noqa: E402
from lprserver.ingest.server import serve  # noqa: E402

unmask.install(ASYNC_MODE)

if __name__ == "__main__":
    serve(create_app(config_from_env()), ASYNC_MODE)

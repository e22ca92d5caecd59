"""The web app for gunicorn: `gunicorn -k gevent -w 1 wsgi:app` (more workers with LIVE_MESSAGE_QUEUE set:
README "Several web workers or hosts")."""

from dotenv import load_dotenv

from config import config_from_env
from lprserver import create_app

load_dotenv()


def _green_psycopg() -> None:
    # gunicorn's gevent worker has monkey-patched the standard library by now, but
    # not psycopg2's C code: without this a slow query would stall every socket.
    from gevent import monkey

    if monkey.is_module_patched("socket"):
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()


_green_psycopg()
app = create_app(config_from_env(), live_queue=True)

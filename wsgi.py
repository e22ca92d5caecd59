"""The web app for gunicorn: `gunicorn -k gevent -w 1 wsgi:app`."""

from dotenv import load_dotenv

from config import config_from_env
from lprserver import create_app

load_dotenv()
app = create_app(config_from_env())

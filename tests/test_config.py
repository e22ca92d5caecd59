import pytest

from config import DEFAULT_SECRET_KEY, ProductionConfig, config_from_env, database_url


def test_bare_postgresql_url_is_served_by_psycopg2():
    assert database_url("postgresql://lpr:secret@localhost/lpr") == "postgresql+psycopg2://lpr:secret@localhost/lpr"
    assert database_url("postgres://lpr@db/lpr") == "postgresql+psycopg2://lpr@db/lpr"


def test_default_database_is_a_sqlite_file_under_instance():
    url = database_url(None)
    assert url.startswith("sqlite:///") and url.endswith("instance/lprserver.db")


@pytest.mark.parametrize("secret", [None, "", DEFAULT_SECRET_KEY, "short"])
def test_production_refuses_a_default_or_weak_secret_key(secret):
    env = {"SECRET_KEY": secret} if secret is not None else {}
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        ProductionConfig(env)


def test_production_defaults_to_camera_tokens():
    config = ProductionConfig({"SECRET_KEY": "8f0c2a9d4e6b17f3a5c9e2d8b4f6a1c7e3d9b5f2a8c4e6d1b7f3a9c5e2d8b4f6"})
    assert config.INGEST_AUTH == "token"
    assert config.SESSION_COOKIE_SECURE is True


def test_development_defaults():
    config = config_from_env(environ={})
    assert config.INGEST_PORT == 8765
    assert config.INGEST_MAX_MESSAGE_BYTES == 4 * 1024 * 1024
    assert config.IMAGE_MAX_BYTES == 2 * 1024 * 1024
    assert config.TIMEZONE == "Asia/Bangkok"
    assert config.ASYNC_MODE == "gevent"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLASK_CONFIG": "staging"}, "FLASK_CONFIG"),
        ({"INGEST_PORT": "eighty"}, "INGEST_PORT"),
        ({"ASYNC_MODE": "asyncio"}, "ASYNC_MODE"),
        ({"INGEST_AUTH": "maybe"}, "INGEST_AUTH"),
        ({"INGEST_WRITERS": "0"}, "INGEST_WRITERS must be at least 1"),
        ({"INGEST_BATCH_MAX": "-5"}, "INGEST_BATCH_MAX must be at least 1"),
        ({"INGEST_STORE_WORKERS": "sometimes"}, "INGEST_STORE_WORKERS"),
        ({"IMAGE_SYNC": "never"}, "IMAGE_SYNC must be batch or file"),
        ({"MQTT_URL": "tcp://broker:1883"}, "MQTT_URL must start with mqtt://"),
        ({"SMTP_URL": "mail.example.org:587"}, "SMTP_URL must start with smtp://"),
        ({"DEFAULT_LANGUAGE": "de"}, "DEFAULT_LANGUAGE must be th or en"),
        ({"PUBLIC_URL": "lpr.example.org"}, "PUBLIC_URL must start with http"),
        ({"ALERT_MAX_ATTEMPTS": "0"}, "ALERT_MAX_ATTEMPTS"),
        ({"CAMERA_OFFLINE_MINUTES": "0.1"}, "CAMERA_OFFLINE_MINUTES must be 0 \\(off\\) or at least 1"),
    ],
)
def test_bad_settings_are_refused_with_their_name(env, message):
    with pytest.raises(ValueError, match=message):
        config_from_env(environ=env)

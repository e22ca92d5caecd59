"""Alembic environment: the models' metadata, and the database of DATABASE_URL."""

import os
from logging.config import fileConfig

from alembic import context
from dotenv import load_dotenv
from sqlalchemy import create_engine

from config import database_url
from lprserver import models  # noqa: F401  (registers the tables)
from lprserver.extensions import db
from lprserver.partitions import is_partition_name

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = db.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    load_dotenv()
    return database_url(os.environ.get("DATABASE_URL"))


def _include_object(obj, name, type_, reflected, compare_to) -> bool:
    # lpr_records' monthly partitions (SPEC §14) are made by the app, not declared by the models.
    if type_ == "table" and reflected and compare_to is None and is_partition_name(name):
        return False
    # Indexes that exist on one dialect only (the pg_trgm index) are not drift elsewhere.
    dialect = getattr(obj, "info", {}).get("dialect")
    return dialect is None or dialect == context.get_bind().dialect.name


def _options(url: str) -> dict:
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    return {
        "render_as_batch": url.startswith("sqlite"),
        "compare_type": True,
        "include_object": _include_object,
    }


def run_migrations_offline() -> None:
    url = _url()
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, **_options(url))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = _url()
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, **_options(url))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

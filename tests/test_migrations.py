"""The first migration gives exactly the schema the models declare, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from config import database_url
from lprserver import models  # noqa: F401
from lprserver.commands import upgrade_database
from lprserver.extensions import db


def _include_object(dialect):
    def include(obj, name, type_, reflected, compare_to):
        wanted = getattr(obj, "info", {}).get("dialect")
        return wanted is None or wanted == dialect
    return include


def assert_no_drift(url: str) -> None:
    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "include_object": _include_object(engine.dialect.name)})
        diff = compare_metadata(context, db.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert diff == []
    assert set(db.metadata.tables) <= tables


def test_upgrade_head_on_an_empty_sqlite_file_matches_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade_database(url)
    assert_no_drift(url)


def test_upgrade_head_on_an_empty_postgresql_matches_the_models(postgres):
    engine = create_engine(database_url(postgres.url("postgres")), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS drift_check")
        conn.exec_driver_sql("CREATE DATABASE drift_check")
    engine.dispose()
    url = postgres.url("drift_check")
    upgrade_database(database_url(url))
    assert_no_drift(url)
    engine = create_engine(database_url(url))
    with engine.connect() as conn:
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("lpr_records")}
    engine.dispose()
    assert "ix_lpr_records_plate_trgm" in indexes


def test_upgrade_head_twice_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    upgrade_database(url)
    upgrade_database(url)
    assert_no_drift(url)

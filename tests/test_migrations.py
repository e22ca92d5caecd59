"""The first migration gives exactly the schema the models declare, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from config import database_url
from lprserver import models  # noqa: F401
from lprserver.database import upgrade_database
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


def test_the_alembic_console_script_migrates_from_the_repository_root_and_elsewhere(tmp_path):
    # As README "Upgrade" says admins run it: `.venv/bin/alembic upgrade head` in the checkout, with the
    # settings in the environment; and from another folder with -c pointing at the checkout's alembic.ini.
    import os
    import subprocess
    import sys
    from pathlib import Path

    from .processes import ROOT

    alembic = Path(sys.executable).parent / "alembic"
    for cwd, args, name in ((ROOT, [], "root.db"), (tmp_path, ["-c", str(ROOT / "alembic.ini")], "elsewhere.db")):
        url = f"sqlite:///{tmp_path / name}"
        env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": ""}
        done = subprocess.run([str(alembic), *args, "upgrade", "head"], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert_no_drift(url)
